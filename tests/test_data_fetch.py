"""Resolution, download and checksums, against a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import shutil
import tarfile
import tempfile
import threading
import zipfile
from pathlib import Path

import pytest

from dlnd.cli import main
from dlnd.data import checksums, resolve
from dlnd.data.catalog import DATASETS, Archive, DataFile, Dataset, Layout
from dlnd.data.fetch import resolve_dataset
from dlnd.errors import UserError


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path, monkeypatch):
    """Downloads off and a cache of this test's own."""
    monkeypatch.setenv("DLND_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


class _Server:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 and records every request path."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the name http.server calls)
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("DLND_OFFLINE")


def _dataset(
    files: tuple[DataFile, ...] = (), archives: tuple[Archive, ...] = (), folder: str = "toy"
) -> Dataset:
    return Dataset(
        name="toy",
        folder=folder,
        description="test data",
        licence="CC0",
        citation="none",
        homepage="http://127.0.0.1/",
        layouts=(Layout("all", files=files, archives=archives),),
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "dlnd"


def test_download_is_verified_cached_and_not_repeated(tmp_path, online):
    body = os.urandom(300_000)
    with _Server({"/toy.bin": body}) as server:
        data_file = DataFile(
            "toy.bin",
            sha256=_sha(body),
            size=len(body),
            urls=(server.url + "/missing.bin", server.url + "/toy.bin"),
        )
        dataset = _dataset((data_file,))
        folder = resolve_dataset(dataset)
        assert folder == _cache(tmp_path) / "toy"
        assert (folder / "toy.bin").read_bytes() == body
        assert server.requests == ["/missing.bin", "/toy.bin"]  # the first mirror 404s
        assert resolve_dataset(dataset) == folder
        assert len(server.requests) == 2  # the second resolve found the cached copy
    assert not list(folder.glob("*.part"))


def test_download_with_wrong_checksum_is_deleted(tmp_path, online):
    with _Server({"/toy.bin": b"tampered bytes"}) as server:
        dataset = _dataset(
            (DataFile("toy.bin", sha256=_sha(b"the real bytes"), urls=(server.url + "/toy.bin",)),)
        )
        with pytest.raises(UserError, match="wrong checksum.*was deleted"):
            resolve_dataset(dataset)
    folder = _cache(tmp_path) / "toy"
    assert list(folder.iterdir()) == []  # neither the file nor a .part is left


def test_md5_only_file_is_verified_with_md5(tmp_path, online):
    body = b"published with an md5 only"
    with _Server({"/f.gz": body}) as server:
        good = _dataset(
            (DataFile("f.gz", md5=hashlib.md5(body).hexdigest(), urls=(server.url + "/f.gz",)),)
        )
        assert (resolve_dataset(good) / "f.gz").read_bytes() == body
        bad = _dataset((DataFile("g.gz", md5="0" * 32, urls=(server.url + "/f.gz",)),))
        with pytest.raises(UserError, match="md5"):
            resolve_dataset(bad)


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_archive_download_is_unpacked_verified_and_removed(tmp_path, online):
    pos, neg = b"good film\n", b"bad film\n"
    archive = _tar_bytes({"pack/a.txt": pos, "pack/b.txt": neg, "pack/extra": b"x"})
    with _Server({"/pack.tar.gz": archive}) as server:
        dataset = _dataset(
            files=(DataFile("a.txt", sha256=_sha(pos)), DataFile("b.txt", sha256=_sha(neg))),
            archives=(
                Archive(
                    "pack.tar.gz",
                    (server.url + "/pack.tar.gz",),
                    strip="pack/",
                    keep=("a.txt", "b.txt"),
                ),
            ),
        )
        folder = resolve_dataset(dataset)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt"]


def test_archive_with_a_bad_member_leaves_nothing_behind(tmp_path, online):
    archive = _tar_bytes({"a.txt": b"not what the catalogue says"})
    with _Server({"/pack.tar.gz": archive}) as server:
        dataset = _dataset(
            files=(DataFile("a.txt", sha256=_sha(b"expected")),),
            archives=(Archive("pack.tar.gz", (server.url + "/pack.tar.gz",)),),
        )
        with pytest.raises(UserError, match="checksum mismatch"):
            resolve_dataset(dataset)
    assert list((_cache(tmp_path) / "toy").iterdir()) == []


def test_unreachable_server_gives_the_missing_file_message(tmp_path, online):
    with _Server({}) as server:
        url = server.url + "/toy.bin"
    # the server is shut down: connections to its port are refused
    dataset = _dataset((DataFile("toy.bin", sha256="0" * 64, urls=(url,)),))
    with pytest.raises(UserError, match="the download failed") as err:
        resolve_dataset(dataset)
    assert url in str(err.value)


def test_offline_error_names_file_path_and_url(tmp_path):
    with pytest.raises(UserError) as err:
        resolve("fashion-mnist")
    message = str(err.value)
    expected_path = _cache(tmp_path) / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    assert "train-images-idx3-ubyte.gz" in message
    assert str(expected_path) in message
    assert (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
        "train-images-idx3-ubyte.gz" in message
    )
    assert "DLND_OFFLINE=1" in message


def test_offline_error_for_an_archive_names_url_and_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DLND_DATA", raising=False)
    with pytest.raises(UserError) as err:
        resolve("hymenoptera", data_dir=tmp_path / "mine")
    message = str(err.value)
    assert "https://download.pytorch.org/tutorial/hymenoptera_data.zip" in message
    assert str(tmp_path / "mine" / "hymenoptera") in message


def _copy_intro(shared: Path, dest: Path) -> Path:
    shutil.copytree(shared / "intro", dest / "intro")
    return dest


def test_checksum_mismatch_in_a_data_folder_is_an_error(tmp_path, shared_data):
    root = _copy_intro(shared_data, tmp_path / "data")
    assert resolve("intro", data_dir=root) == root / "intro"
    target = root / "intro" / "student_data.csv"
    text = target.read_text()
    target.write_text(text.replace("380", "381", 1))  # same size, one digit changed
    with pytest.raises(UserError, match=f"checksum mismatch for {target}"):
        resolve("intro", data_dir=root)
    assert target.exists()  # a user's own file is reported, never deleted


def test_data_dir_may_name_the_data_set_folder(tmp_path, shared_data):
    root = _copy_intro(shared_data, tmp_path)
    assert resolve("intro", data_dir=root / "intro") == root / "intro"


def test_dlnd_data_env_is_used_after_data_dir(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("DLND_DATA", str(shared_data))
    assert resolve("anna") == shared_data / "text"
    assert resolve("anna", data_dir=tmp_path / "empty") == shared_data / "text"


def test_verified_digest_is_cached_until_the_file_changes(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 1000)
    calls = []
    real_hash = checksums.hash_file
    monkeypatch.setattr(
        checksums, "hash_file", lambda p, algorithm: calls.append(p) or real_hash(p, algorithm)
    )
    first = checksums.file_digest(path, "sha256")
    assert checksums.file_digest(path, "sha256") == first
    assert len(calls) == 1
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(1, 1))  # same size, different mtime: must be hashed again
    assert checksums.file_digest(path, "sha256") == _sha(b"b" * 1000) != first
    assert len(calls) == 2


def test_catalogue_matches_the_offline_copy(shared_data):
    sums = {}
    for line in (shared_data / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.removeprefix("./")] = digest
    listed = {f"{d.folder}/{f.path}": f for d in DATASETS.values() for f in d.all_files}
    for name, digest in sums.items():
        assert name in listed, f"{name} of the offline copy is not in the catalogue"
        assert listed[name].sha256 == digest
        assert listed[name].size == (shared_data / name).stat().st_size


def test_cli_verify_reports_a_mismatch_with_exit_status_1(tmp_path, shared_data, capsys):
    root = _copy_intro(shared_data, tmp_path / "data")
    assert main(["data", "verify", "intro", "--data-dir", str(root)]) == 0
    (root / "intro" / "gradient_descent_data.csv").write_text("0,0,0\n")
    assert main(["data", "verify", "intro", "--data-dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "gradient_descent_data.csv  MISMATCH" in out
    assert "student_data.csv           ok" in out


def test_cli_list_fetch_and_errors(tmp_path, shared_data, capsys, monkeypatch):
    monkeypatch.setenv("DLND_DATA", str(shared_data))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in DATASETS:
        assert name in out
    assert "missing" in out  # fashion-mnist has no offline copy
    assert main(["data", "fetch", "mnist"]) == 0
    assert capsys.readouterr().out.strip() == str(shared_data / "mnist")
    assert main(["data", "fetch", "fashion-mnist"]) == 2
    assert "DLND_OFFLINE=1" in capsys.readouterr().err
    assert main(["data", "verify", "no-such-set"]) == 2
    assert "unknown data set 'no-such-set'" in capsys.readouterr().err


def test_every_catalogue_url_is_https():
    """Probe: one catalogue URL was plain http."""
    for dataset in DATASETS.values():
        assert dataset.homepage.startswith("https://"), dataset.name
        for layout in dataset.layouts:
            urls = [u for f in layout.files for u in f.urls]
            urls += [u for a in layout.archives for u in a.urls]
            assert all(u.startswith("https://") for u in urls), (dataset.name, urls)


def test_a_plain_http_url_is_refused_unless_local():
    with pytest.raises(ValueError, match="must use https"):
        DataFile("x.bin", sha256="0" * 64, urls=("http://example.org/x.bin",))
    with pytest.raises(ValueError, match="must use https"):
        Archive("x.zip", ("ftp://example.org/x.zip",))
    DataFile("x.bin", sha256="0" * 64, urls=("http://127.0.0.1:8000/x.bin",))


def test_everything_taken_from_a_catalogue_archive_is_checksummed():
    """Probe: downloaded archives were not checksummed, and image folders were checked only
    by file counts. An archive without a checksum of its own is allowed only when every
    member kept from it is a checksummed file or lies in a folder with a content digest."""
    for dataset in DATASETS.values():
        for layout in dataset.layouts:
            files = {f.path for f in layout.files}
            for archive in layout.archives:
                if archive.sha256:
                    continue
                if archive.keep:
                    assert set(archive.keep) <= files, (dataset.name, archive.filename)
                else:
                    assert layout.image_digests, (dataset.name, archive.filename)
                    assert set(layout.image_digests) == set(layout.image_counts)


def test_the_image_folders_match_their_content_digests(shared_data):
    from dlnd.data.fetch import count_status

    layout = DATASETS["hymenoptera"].layouts[0]
    for sub, count in layout.image_counts.items():
        status = count_status(shared_data / "hymenoptera" / sub, count, layout.image_digests[sub])
        assert status == ("ok", count), sub


def _image_dataset(folder_files: dict[str, bytes], archive_url: str = "") -> Dataset:
    from dlnd.data.checksums import folder_digest

    reference = Path(tempfile.mkdtemp())
    for name, data in folder_files.items():
        (reference / "pics").mkdir(exist_ok=True)
        (reference / "pics" / name).write_bytes(data)
    archives = (Archive("pics.zip", (archive_url,)),) if archive_url else ()
    return Dataset(
        name="toy",
        folder="toy",
        description="test images",
        licence="CC0",
        citation="none",
        homepage="https://127.0.0.1/",
        layouts=(
            Layout(
                "image folder",
                image_counts={"pics": len(folder_files)},
                image_digests={"pics": folder_digest(reference / "pics")},
                archives=archives,
            ),
        ),
    )


def test_an_image_folder_with_a_changed_file_is_refused(tmp_path):
    dataset = _image_dataset({"a.jpg": b"first", "b.jpg": b"second"})
    data = tmp_path / "data" / "toy" / "pics"
    data.mkdir(parents=True)
    (data / "a.jpg").write_bytes(b"first")
    (data / "b.jpg").write_bytes(b"second")
    assert resolve_dataset(dataset, tmp_path / "data") == data.parent
    (data / "b.jpg").write_bytes(b"second, but edited")
    with pytest.raises(UserError, match="differs from what toy has there"):
        resolve_dataset(dataset, tmp_path / "data")


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_a_downloaded_image_archive_is_checked_before_it_is_used(tmp_path, online):
    pictures = {"a.jpg": b"first", "b.jpg": b"second"}
    good = _zip_bytes({f"pics/{n}": d for n, d in pictures.items()})
    tampered = _zip_bytes({"pics/a.jpg": b"first", "pics/b.jpg": b"not the published one"})
    extra = _zip_bytes({**{f"pics/{n}": d for n, d in pictures.items()}, "run-me.sh": b"!"})
    with _Server({"/good.zip": good, "/tampered.zip": tampered, "/extra.zip": extra}) as server:
        for name, message in (("tampered", "differs from what"), ("extra", "'run-me.sh'")):
            dataset = _image_dataset(pictures, f"{server.url}/{name}.zip")
            with pytest.raises(UserError, match=message):
                resolve_dataset(dataset)
            assert list((_cache(tmp_path) / "toy").iterdir()) == []  # nothing was moved in
        folder = resolve_dataset(_image_dataset(pictures, f"{server.url}/good.zip"))
        assert sorted(p.name for p in (folder / "pics").iterdir()) == ["a.jpg", "b.jpg"]


def test_an_archive_with_its_own_checksum_is_checked_before_unpacking(tmp_path, online):
    archive = _tar_bytes({"a.txt": b"payload"})
    with _Server({"/pack.tar.gz": archive}) as server:
        dataset = _dataset(
            files=(DataFile("a.txt", sha256=_sha(b"payload")),),
            archives=(Archive("pack.tar.gz", (server.url + "/pack.tar.gz",), sha256="0" * 64),),
        )
        with pytest.raises(UserError, match="wrong checksum"):
            resolve_dataset(dataset)
        good = _dataset(
            files=(DataFile("a.txt", sha256=_sha(b"payload")),),
            archives=(
                Archive("pack.tar.gz", (server.url + "/pack.tar.gz",), sha256=_sha(archive)),
            ),
        )
        assert (resolve_dataset(good) / "a.txt").read_bytes() == b"payload"
