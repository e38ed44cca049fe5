"""Atomic file writes: a reader never sees a half-written file.

Each writer writes a temporary file in the destination's directory, flushes it to disk and
renames it over the destination (``os.replace`` is atomic on POSIX and Windows).

The temporary file is created with mode 0666 and the process's umask applied by the kernel,
the mode a plain ``open()`` gives; reading the umask would mean setting it, which races with
other threads creating files at the same moment.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def _create_temporary(path: Path) -> Path:
    """A new, empty file next to ``path`` with a random name (never an existing file)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and then move ``tmp_path`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
