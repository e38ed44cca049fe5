"""Safe archive extraction: unsafe members are refused before anything is written."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from dlnd.data.archives import safe_extract
from dlnd.errors import UserError


def _tar(path: Path, members: list[tarfile.TarInfo], payload: bytes = b"data") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            if info.isfile():
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                tar.addfile(info)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_safe_tar_is_unpacked_with_strip_and_keep(tmp_path):
    archive = _tar(
        tmp_path / "ok.tar.gz",
        [_file("top/a.txt"), _file("top/sub/b.txt"), _file("top/skip.txt"), _file("other/c.txt")],
    )
    written = safe_extract(archive, tmp_path / "out", strip="top/", keep=("a.txt", "sub/b.txt"))
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "a.txt",
        "sub/b.txt",
    ]
    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"data"
    assert not (tmp_path / "out" / "skip.txt").exists()


@pytest.mark.parametrize(
    "bad",
    [
        _file("../escape.txt"),
        _file("inner/../../escape.txt"),
        _file("/tmp/absolute.txt"),
        _link("inner/link", "/etc/passwd", tarfile.SYMTYPE),
        _link("inner/hard", "inner/first.txt", tarfile.LNKTYPE),
        _link("inner/dev", "", tarfile.CHRTYPE),
        _link("inner/fifo", "", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "device", "fifo"],
)
def test_unsafe_tar_member_refuses_the_whole_archive(tmp_path, bad):
    archive = _tar(tmp_path / "bad.tar.gz", [_file("inner/first.txt"), bad])
    out = tmp_path / "out"
    with pytest.raises(UserError, match="refusing to unpack bad.tar.gz"):
        safe_extract(archive, out)
    assert not out.exists() or not any(out.rglob("*"))  # nothing written, not even the safe file
    assert not (tmp_path / "escape.txt").exists()


def test_zip_with_dotdot_or_symlink_is_refused(tmp_path):
    dotdot = tmp_path / "dotdot.zip"
    with zipfile.ZipFile(dotdot, "w") as zf:
        zf.writestr("fine.txt", "x")
        zf.writestr("../escape.txt", "x")
    with pytest.raises(UserError, match="outside the target"):
        safe_extract(dotdot, tmp_path / "out")

    symlink = tmp_path / "symlink.zip"
    with zipfile.ZipFile(symlink, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UserError, match="is a link"):
        safe_extract(symlink, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_safe_zip_is_unpacked(tmp_path):
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/x.csv", "a,b\n1,2\n")
        zf.writestr("__MACOSX/data/._x.csv", "junk")
    safe_extract(archive, tmp_path / "out", strip="data/")
    assert (tmp_path / "out" / "x.csv").read_text() == "a,b\n1,2\n"
    assert not (tmp_path / "out" / "__MACOSX").exists()


def test_not_an_archive_is_a_user_error(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"<html>not found</html>")
    with pytest.raises(UserError, match="neither a tar nor a zip"):
        safe_extract(junk, tmp_path / "out")


def _zip_of_zeros(path: Path, megabytes: int) -> Path:
    """A zip of one file of zeros: about 1 KB per megabyte, the classic decompression bomb."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(megabytes):
            member.write(b"\0" * (1 << 20))
    return path


def test_an_archive_that_expands_enormously_is_stopped_and_removed(tmp_path):
    """Probe: a 1 MB zip wrote 1.07 GB (no size or ratio cap)."""
    bomb = _zip_of_zeros(tmp_path / "bomb.zip", 256)
    assert bomb.stat().st_size < 300_000
    out = tmp_path / "out"
    with pytest.raises(UserError, match="expands to more than 50 times its size"):
        safe_extract(bomb, out)
    assert not out.exists()


def test_a_tar_bomb_is_stopped_too(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(UserError, match="decompression bomb"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_archive_within_the_ratio_is_unpacked(tmp_path):
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("numbers.txt", " ".join(str(i) for i in range(20_000)))  # about 3x
    assert len(safe_extract(archive, tmp_path / "out")) == 1


@pytest.mark.parametrize(
    "name",
    ["a" * 300 + ".txt", "dir/" + "b" * 256, "escape\x1b[31m.txt", "line\nbreak.txt"],
    ids=["long-name", "long-part", "terminal-escape", "newline"],
)
def test_members_with_odd_names_are_refused_before_writing(tmp_path, name):
    """Probe: a 300-character member name raised a raw OSError and left the files before it."""
    archive = tmp_path / "odd.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("first.txt", "x")
        zf.writestr(name, "x")
    with pytest.raises(UserError, match="control character or a name part over 255 bytes"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "members",
    [
        [("first.txt", "x"), ("a", "a file"), ("a/b.txt", "inside a file?")],
        [("first.txt", "x"), ("same.txt", "one"), ("same.txt", "two")],
    ],
    ids=["file-then-folder", "duplicate"],
)
@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
def test_a_member_that_cannot_be_written_removes_what_was_written(tmp_path, members):
    """Probe: a file and a folder of the same name raised a raw OSError (FileExistsError)
    and left the first files behind."""
    archive = tmp_path / "clash.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in members:
            zf.writestr(name, text)
    (tmp_path / "out").mkdir()
    with pytest.raises(UserError, match=r"could not unpack clash.zip: writing member"):
        safe_extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
