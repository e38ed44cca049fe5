"""Find a data set on disk, or download it, and never hand out a file with a wrong checksum.

Resolution order for a data set's folder (``<root>/<dataset.folder>``):

1. ``data_dir`` given by the caller (``--data-dir``); it may be a data root or the data set's
   folder itself;
2. ``$DLND_DATA``;
3. the user cache, ``$XDG_CACHE_HOME/dlnd`` or ``~/.cache/dlnd``;
4. a download into the user cache: streamed to a ``.part`` file with a progress bar, checked
   against the catalogue's checksum, then renamed into place (a reader never sees half a
   file); archives are unpacked safely (see :mod:`dlnd.data.archives`).

A folder counts as holding the data set when every file of one of its layouts is there; those
files are then verified, and a mismatch is a :class:`UserError`, never a silent fallback. With
``DLND_OFFLINE=1`` (or when the network is unreachable) the error names the missing file, the
exact path to put it at and the URL to get it from.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from dlnd.data.archives import safe_extract
from dlnd.data.catalog import Archive, DataFile, Dataset, Layout, get_dataset
from dlnd.data.checksums import (
    file_digest,
    folder_digest,
    forget,
    forget_under,
    user_cache_root,
)
from dlnd.errors import UserError

DOWNLOAD_TIMEOUT_S = 60


def offline() -> bool:
    """True when ``$DLND_OFFLINE`` forbids downloads (``1``, ``true`` or ``yes``)."""
    return os.environ.get("DLND_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


def data_roots(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """``(origin, root)`` pairs in resolution order: ``--data-dir``, ``$DLND_DATA``, cache."""
    roots = []
    if data_dir:
        roots.append(("--data-dir", Path(data_dir).expanduser()))
    if os.environ.get("DLND_DATA"):
        roots.append(("$DLND_DATA", Path(os.environ["DLND_DATA"]).expanduser()))
    roots.append(("user cache", user_cache_root()))
    return roots


def candidate_folders(dataset: Dataset, data_dir: str | Path | None = None) -> list[Path]:
    """Folders that may hold ``dataset``, in resolution order."""
    folders = []
    for origin, root in data_roots(data_dir):
        folders.append(root / dataset.folder)
        if origin == "--data-dir":
            folders.append(root)  # --data-dir may name the data set's own folder
    return folders


def layout_present(folder: Path, layout: Layout) -> bool:
    """Whether every file and image folder of ``layout`` exists in ``folder`` (no hashing)."""
    return all((folder / f.path).is_file() for f in layout.files) and all(
        (folder / sub).is_dir() for sub in layout.image_counts
    )


def find_present(
    dataset: Dataset, data_dir: str | Path | None = None
) -> tuple[Path, Layout] | None:
    """The first folder holding a complete layout of ``dataset``, not yet verified."""
    for folder in candidate_folders(dataset, data_dir):
        for layout in dataset.layouts:
            if layout_present(folder, layout):
                return folder, layout
    return None


def file_status(path: Path, expected: DataFile) -> str:
    """``"ok"``, ``"MISMATCH"`` or ``"missing"`` for one catalogue file at ``path``."""
    if not path.is_file():
        return "missing"
    if expected.size is not None and path.stat().st_size != expected.size:
        return "MISMATCH"
    algorithm, digest = expected.checksum
    return "ok" if file_digest(path, algorithm) == digest else "MISMATCH"


def count_status(folder: Path, expected: int, digest: str | None = None) -> tuple[str, int]:
    """``("ok" | "MISMATCH" | "missing", files found)`` for an image folder: the number of
    files, then (when ``digest`` is given) the SHA-256 of its content."""
    if not folder.is_dir():
        return "missing", 0
    found = sum(1 for p in folder.iterdir() if p.is_file())
    if found != expected or (digest is not None and folder_digest(folder) != digest):
        return "MISMATCH", found
    return "ok", found


def verify_layout(
    dataset: Dataset, folder: Path, layout: Layout, present_only: bool = False
) -> None:
    """Raise :class:`UserError` unless every file and image folder of ``layout`` in
    ``folder`` is intact (with ``present_only``, those that are there)."""
    for f in layout.files:
        path = folder / f.path
        if present_only and not path.exists():
            continue
        if file_status(path, f) != "ok":
            algorithm, digest = f.checksum
            source = f" (or get it from {f.urls[0]})" if f.urls else ""
            raise UserError(
                f"checksum mismatch for {path}: its {algorithm} is not the published {digest}, so "
                "the file is damaged or a different version; delete it and run "
                f"'dlnd data fetch {dataset.name}'{source}."
            )
    for sub, expected in layout.image_counts.items():
        if present_only and not (folder / sub).exists():
            continue
        status, found = count_status(folder / sub, expected, layout.image_digests.get(sub))
        if status != "ok":
            what = f"holds {found} files but" if found != expected else "differs from what"
            raise UserError(
                f"{folder / sub} {what} {dataset.name} has there; replace the folder with a "
                f"fresh copy (run 'dlnd data fetch {dataset.name}')."
            )


def verify_unpacked(dataset: Dataset, staging: Path, layout: Layout) -> None:
    """Check what an archive put in ``staging``: every file is one the catalogue checksums
    (a file of ``layout`` or inside one of its image folders), and each is intact."""
    covered_files = {f.path for f in layout.files}
    covered_folders = tuple(f"{sub}/" for sub in layout.image_counts)
    for path in staging.rglob("*"):
        relative = path.relative_to(staging).as_posix()
        if (
            path.is_file()
            and relative not in covered_files
            and not relative.startswith(covered_folders)
        ):
            raise UserError(
                f"the download of {dataset.name} holds {relative!r}, which the catalogue has no "
                "checksum for; it was not used. Report this if it persists."
            )
    verify_layout(dataset, staging, layout, present_only=True)


def resolve(name: str, data_dir: str | Path | None = None) -> Path:
    """The verified folder of catalogue data set ``name``, downloading it if needed.

    ``data_dir`` (a data root, or the data set's folder) is tried first, then ``$DLND_DATA``,
    then the user cache; when none holds the data it is downloaded into the user cache.
    """
    return resolve_dataset(get_dataset(name), data_dir)


def resolve_dataset(dataset: Dataset, data_dir: str | Path | None = None) -> Path:
    """:func:`resolve` for a :class:`Dataset` object (catalogue entry or a custom one)."""
    found = find_present(dataset, data_dir)
    if found is not None:
        folder, layout = found
        verify_layout(dataset, folder, layout)
        return folder
    return download(dataset, data_dir)


def download_layout(dataset: Dataset) -> Layout:
    """The layout a download produces: the first one with download sources."""
    for layout in dataset.layouts:
        if layout.downloadable:
            return layout
    raise UserError(f"{dataset.name} cannot be downloaded; put a copy under $DLND_DATA.")


def missing_message(dataset: Dataset, data_dir: str | Path | None, reason: str) -> str:
    """One sentence: which file is missing, where to put it, where to get it, and why."""
    layout = download_layout(dataset)
    folder = (Path(data_dir) if data_dir else user_cache_root()) / dataset.folder
    if layout.archives:
        archive = layout.archives[0]
        what = ", ".join(archive.keep) if archive.keep else "its contents"
        where = (
            f"download {archive.urls[0]} and unpack {what}"
            + (f" (without the leading {archive.strip})" if archive.strip else "")
            + f" into {folder}/"
        )
        first = layout.files[0].path if layout.files else next(iter(layout.image_counts))
    else:
        missing = [f for f in layout.files if not (folder / f.path).is_file()] or list(layout.files)
        first = missing[0].path
        more = f" (and {len(missing) - 1} more files from there)" if len(missing) > 1 else ""
        where = f"download {missing[0].urls[0]} and put it at {folder / first}{more}"
    return (
        f"data set {dataset.name} is missing ({dataset.folder}/{first} not found under "
        f"{', '.join(str(r) for _, r in data_roots(data_dir))}) and {reason}: {where}, or set "
        f"DLND_DATA to a folder that holds {dataset.folder}/."
    )


def download(dataset: Dataset, data_dir: str | Path | None = None) -> Path:
    """Download ``dataset`` into the user cache, verify it and return its folder."""
    if offline():
        raise UserError(missing_message(dataset, data_dir, "downloads are off (DLND_OFFLINE=1)"))
    layout = download_layout(dataset)
    folder = user_cache_root() / dataset.folder
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for f in layout.files:
            if file_status(folder / f.path, f) != "ok" and f.urls:
                fetch_file(f.urls, folder / f.path, f)
        for archive in layout.archives:
            fetch_archive(
                archive, folder, lambda staging: verify_unpacked(dataset, staging, layout)
            )
    except (urllib.error.URLError, OSError) as err:
        reason = f"the download failed ({getattr(err, 'reason', err)})"
        raise UserError(missing_message(dataset, data_dir, reason)) from None
    try:
        verify_layout(dataset, folder, layout)
    except UserError:
        _remove_layout(folder, layout)
        raise
    return folder


def _remove_layout(folder: Path, layout: Layout) -> None:
    """Delete what a failed download left behind, so a bad file is never used later."""
    for f in layout.files:
        (folder / f.path).unlink(missing_ok=True)
        forget(folder / f.path)
    for sub in layout.image_counts:
        shutil.rmtree(folder / sub, ignore_errors=True)


def fetch_file(urls: tuple[str, ...], dest: Path, expected: DataFile | None = None) -> None:
    """Download the first of ``urls`` that answers to ``dest``, checked against ``expected``.

    The bytes go to ``dest``'s folder as a hidden ``.part`` file which is renamed over ``dest``
    only after its checksum matches; on a mismatch the file is deleted and a :class:`UserError`
    raised. Network errors from the last URL propagate as :class:`urllib.error.URLError`.
    """
    last_error: Exception | None = None
    for url in urls:
        try:
            part = _stream(url, dest)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            last_error = err
            continue
        if expected is not None and file_status(part, expected) != "ok":
            forget(part)
            part.unlink(missing_ok=True)
            algorithm, digest = expected.checksum
            raise UserError(
                f"the download of {url} has the wrong checksum (expected {algorithm} {digest}) "
                "and was deleted; try again later, and report it if it persists."
            )
        os.replace(part, dest)
        forget(part)
        return
    assert last_error is not None
    raise last_error


def _stream(url: str, dest: Path) -> Path:
    """Copy ``url`` into a new ``.part`` file next to ``dest`` with a progress bar."""
    request = urllib.request.Request(url, headers={"User-Agent": "dlnd"})
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    part = Path(name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=None) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return part


def fetch_archive(
    archive: Archive, folder: Path, verify: Callable[[Path], None] = lambda staging: None
) -> None:
    """Download ``archive`` and unpack it safely into ``folder``; the archive is then deleted.

    The archive is checked against its own SHA-256 when the catalogue has one, unpacked into
    a staging folder next to ``folder``, checked there with ``verify(staging)`` (the catalogue
    checksums of what it holds), and only then moved into place, entry by entry: a failed
    download, unpack or check leaves ``folder`` untouched.
    """
    archive_path = folder / archive.filename
    expected = DataFile(archive.filename, sha256=archive.sha256) if archive.sha256 else None
    fetch_file(archive.urls, archive_path, expected)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder))
    try:
        safe_extract(archive_path, staging, strip=archive.strip, keep=archive.keep)
        verify(staging)
        for entry in staging.iterdir():
            target = folder / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        forget_under(staging)
        archive_path.unlink(missing_ok=True)
