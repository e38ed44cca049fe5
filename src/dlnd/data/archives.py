"""Safe unpacking of downloaded tar and zip archives.

An archive from the network is untrusted: a member named ``/etc/passwd`` or ``../../.bashrc``
would write outside the target folder, and a symbolic link, hard link or device node could make
a later member (or a later reader) touch something else. Every member is checked before anything
is written, and the whole archive is refused if one member is unsafe. Regular files are copied
out byte by byte; nothing is delegated to ``tarfile.extract``, so no owner, mode or link
metadata from the archive is ever applied.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO

from dlnd.errors import UserError


def member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path of an archive member, or a :class:`UserError` if it escapes."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(name).drive or ".." in posix.parts:
        raise UserError(
            f"refusing to unpack {archive.name}: member {name!r} points outside the target "
            "folder (absolute path or '..'); the archive is damaged or malicious, delete it."
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
    ``..``, or is a link, device or other special file. Returns the files written.
    """
    archive = Path(archive)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = list(_zip_members(zf, archive))
            return _copy_out(members, dest, strip, keep, zf.open)
    if not tarfile.is_tarfile(archive):
        raise UserError(
            f"{archive} is neither a tar nor a zip archive; delete it and download it again."
        )
    with tarfile.open(archive) as tar:
        members = list(_tar_members(tar, archive))
        return _copy_out(members, dest, strip, keep, tar.extractfile)


def _copy_out(
    members: list[Member],
    dest: Path,
    strip: str,
    keep: tuple[str, ...],
    open_member: Callable[[str], IO[bytes]],
) -> list[Path]:
    written = []
    for name, path, is_dir in members:
        relative = _selected(path, strip, keep)
        if relative is None or is_dir:
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_member(name) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
        written.append(target)
    return written
