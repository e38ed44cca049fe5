"""Safe unpacking of downloaded tar and zip archives.

An archive from the network is untrusted: a member named ``/etc/passwd`` or ``../../.bashrc``
would write outside the target folder, and a symbolic link, hard link or device node could make
a later member (or a later reader) touch something else. Every member is checked before anything
is written, and the whole archive is refused if one member is unsafe. Regular files are copied
out byte by byte; nothing is delegated to ``tarfile.extract``, so no owner, mode or link
metadata from the archive is ever applied.

A small archive can also expand enormously (a 1 MB zip of zeros holds a gigabyte): the bytes
written are counted as they are written (headers can lie) and unpacking stops past
:data:`MAX_RATIO` times the archive's size or :data:`MAX_UNPACKED_BYTES`. Whatever stops an
unpack (a limit, a member name the file system refuses, a full disk) removes every file it
wrote, so a folder never holds half an archive.
"""

from __future__ import annotations

import contextlib
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO

from dlnd.errors import UserError

# The data sets' archives expand at most ~8x (text and CSV); zip bombs reach 1000x and more.
MAX_RATIO = 50
MAX_UNPACKED_BYTES = 4 * 1024**3
# Longest file or folder name most file systems take (in bytes, UTF-8).
MAX_NAME_BYTES = 255
COPY_CHUNK = 1 << 20


def member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path of an archive member, or a :class:`UserError` if it escapes the
    target folder or is a name no file system should be asked to create."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(name).drive or ".." in posix.parts:
        raise UserError(
            f"refusing to unpack {archive.name}: member {name!r} points outside the target "
            "folder (absolute path or '..'); the archive is damaged or malicious, delete it."
        )
    odd = any(ord(c) < 32 or c == "\x7f" for c in name) or any(
        len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in posix.parts
    )
    if odd:
        raise UserError(
            f"refusing to unpack {archive.name}: member {name[:80]!r} has a control character "
            f"or a name part over {MAX_NAME_BYTES} bytes; the archive is damaged, delete it."
        )
    return posix


def _refuse_kind(name: str, kind: str, archive: Path) -> None:
    raise UserError(
        f"refusing to unpack {archive.name}: member {name!r} is a {kind}, and only regular "
        "files and folders are allowed; the archive is damaged or malicious, delete it."
    )


Member = tuple[str, PurePosixPath, bool]  # (name in the archive, relative path, is a folder)


def _tar_members(tar: tarfile.TarFile, archive: Path) -> Iterator[Member]:
    """Every member of ``tar``, refusing unsafe ones."""
    for member in tar.getmembers():
        path = member_path(member.name, archive)
        if member.issym() or member.islnk():
            _refuse_kind(member.name, "link", archive)
        if not (member.isfile() or member.isdir()):
            _refuse_kind(member.name, "device or special file", archive)
        yield member.name, path, member.isdir()


def _zip_members(zf: zipfile.ZipFile, archive: Path) -> Iterator[Member]:
    for info in zf.infolist():
        path = member_path(info.filename, archive)
        # The file type bits of the Unix mode, when the zip was made on Unix (0 otherwise).
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            _refuse_kind(info.filename, "link", archive)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            _refuse_kind(info.filename, "device or special file", archive)
        yield info.filename, path, info.is_dir()


def _selected(path: PurePosixPath, strip: str, keep: tuple[str, ...]) -> PurePosixPath | None:
    """``path`` with the ``strip`` prefix removed, or ``None`` if it is not wanted."""
    prefix = PurePosixPath(strip) if strip else None
    if prefix is not None:
        if path == prefix or prefix not in path.parents:
            return None
        path = path.relative_to(prefix)
    if keep and str(path) not in keep:
        return None
    return path


def safe_extract(
    archive: Path, dest: Path, strip: str = "", keep: tuple[str, ...] = ()
) -> list[Path]:
    """Unpack the regular files of a ``.tar[.gz]`` or ``.zip`` ``archive`` into ``dest``.

    ``strip`` drops a leading folder; ``keep`` (paths after stripping) limits what is written.
    Raises :class:`UserError` before writing anything if any member is absolute, contains
    ``..``, has an odd name, or is a link, device or other special file; and, removing what
    it wrote, if the archive expands past its limits or a file cannot be written. Returns
    the files written.
    """
    archive = Path(archive)
    budget = min(MAX_UNPACKED_BYTES, MAX_RATIO * max(archive.stat().st_size, 1))
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = list(_zip_members(zf, archive))
            return _copy_out(members, dest, strip, keep, zf.open, archive, budget)
    if not tarfile.is_tarfile(archive):
        raise UserError(
            f"{archive} is neither a tar nor a zip archive; delete it and download it again."
        )
    with tarfile.open(archive) as tar:
        members = list(_tar_members(tar, archive))
        return _copy_out(members, dest, strip, keep, tar.extractfile, archive, budget)


def _copy_out(
    members: list[Member],
    dest: Path,
    strip: str,
    keep: tuple[str, ...],
    open_member: Callable[[str], IO[bytes]],
    archive: Path,
    budget: int,
) -> list[Path]:
    """Copy the selected members under ``dest``, at most ``budget`` bytes in all; on any
    failure every file written (and folder made) is removed again."""
    written: list[Path] = []
    made: list[Path] = []  # folders created, outermost first
    name = ""
    try:
        for name, path, is_dir in members:
            relative = _selected(path, strip, keep)
            if relative is None or is_dir:
                continue
            target = dest / relative
            made += [p for p in reversed(target.parents) if not p.exists()]
            target.parent.mkdir(parents=True, exist_ok=True)
            written.append(target)
            with open_member(name) as source, open(target, "xb") as out:
                budget -= _copy_limited(source, out, budget, archive)
    except OSError as err:
        _remove(written, made)
        raise UserError(
            f"could not unpack {archive.name}: writing member {name[:80]!r} failed "
            f"({err.strerror or err}); the archive is damaged or the disk is full."
        ) from None
    except BaseException:
        _remove(written, made)
        raise
    return written


def _copy_limited(source: IO[bytes], out: IO[bytes], budget: int, archive: Path) -> int:
    """Copy ``source`` to ``out``; a :class:`UserError` past ``budget`` bytes. Returns the
    bytes copied."""
    copied = 0
    while chunk := source.read(COPY_CHUNK):
        copied += len(chunk)
        if copied > budget:
            raise UserError(
                f"refusing to unpack {archive.name}: it expands to more than {MAX_RATIO} times "
                f"its size (or {MAX_UNPACKED_BYTES / 1024**3:g} GiB); it is damaged or a "
                "decompression bomb, delete it."
            )
        out.write(chunk)
    return copied


def _remove(files: list[Path], folders: list[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)
    for folder in reversed(folders):  # innermost first
        with contextlib.suppress(OSError):
            folder.rmdir()
