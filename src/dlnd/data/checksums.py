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


def forget_under(folder: Path) -> None:
    """Drop every remembered digest of a file or folder below ``folder`` (a staging folder
    whose files were moved elsewhere)."""
    prefix = str(Path(folder).resolve()) + "/"
    cache = _load_cache()
    kept = {key: entry for key, entry in cache.items() if not key.startswith(prefix)}
    if len(kept) != len(cache):
        _save_cache(kept)


def folder_digest(folder: Path) -> str:
    """SHA-256 of a folder's content: of the sorted lines ``relative/path <sha256 of file>``
    over every file below it. Any added, removed, renamed or changed file changes it.

    Remembered like a file's digest, under the folder's path with a stamp made of every
    file's name, size and modification time.
    """
    folder = Path(folder).resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stamp = hashlib.sha256(
        "".join(
            f"{p.relative_to(folder).as_posix()}\0{p.stat().st_size}\0{p.stat().st_mtime_ns}\n"
            for p in files
        ).encode()
    ).hexdigest()
    key = f"{folder}/"
    entry = _load_cache().get(key, {})
    if entry.get("stamp") == stamp and "tree_sha256" in entry:
        return entry["tree_sha256"]
    listing = "".join(
        f"{p.relative_to(folder).as_posix()} {hash_file(p, 'sha256')}\n" for p in files
    )
    digest = hashlib.sha256(listing.encode()).hexdigest()
    _remember(key, {"stamp": stamp, "tree_sha256": digest})
    return digest
