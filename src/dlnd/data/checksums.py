"""File checksums with a small cache of files already verified.

Hashing a 170 MB archive on every run would be wasteful, so once a file's digest is computed it
is remembered in ``<user cache>/verified.json`` under its absolute path together with its size
and modification time (in nanoseconds). A later lookup trusts the remembered digest only while
both are unchanged; any edit, replacement or truncation of the file changes one of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from dlnd.io import atomic_write_text

CHUNK_BYTES = 1 << 20


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/dlnd``, or ``~/.cache/dlnd`` when that variable is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlnd"


def _cache_file() -> Path:
    return user_cache_root() / "verified.json"


def _load_cache() -> dict[str, dict]:
    try:
        return json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict[str, dict]) -> None:
    # A cache that cannot be written (read-only home) only costs a re-hash next time.
    with contextlib.suppress(OSError):
        atomic_write_text(_cache_file(), json.dumps(cache, indent=0, sort_keys=True))


def hash_file(path: Path, algorithm: str) -> str:
    """Hex digest of ``path`` with ``algorithm`` (``"sha256"`` or ``"md5"``), read in chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)  # MD5 only checks integrity here
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_digest(path: Path, algorithm: str) -> str:
    """Digest of ``path``, from the cache when the file's size and mtime are unchanged."""
    path = Path(path).resolve()
    stat = path.stat()
    key = str(path)
    cache = _load_cache()
    entry = cache.get(key, {})
    if entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        if algorithm in entry:
            return entry[algorithm]
    else:
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    entry[algorithm] = hash_file(path, algorithm)
    _remember(key, entry)
    return entry[algorithm]


def _remember(key: str, entry: dict) -> None:
    """Store one verified entry (re-reading the cache so concurrent writers lose little)."""
    cache = _load_cache()
    cache[key] = entry
    _save_cache(cache)


def forget(path: Path) -> None:
    """Drop ``path`` from the cache (after deleting or replacing the file)."""
    key = str(Path(path).resolve())
    cache = _load_cache()
    if cache.pop(key, None) is not None:
        _save_cache(cache)
