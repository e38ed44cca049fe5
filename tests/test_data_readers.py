"""Readers: IDX, CSV tables, text, MNIST split, CIFAR-10 archives, ImageFolder listings."""

from __future__ import annotations

import csv
import gzip
import io
import struct
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from dlnd.data import readers
from dlnd.data.readers import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    image_folder_files,
    load_cifar10,
    load_mnist,
    load_mr_sentiment,
    parse_cifar_records,
    read_cifar_binary_archive,
    read_cifar_jpeg_archive,
    read_idx,
    read_mnist_folder,
    read_table,
    read_text,
    stratified_split,
)
from dlnd.errors import UserError

IDX_CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("DLND_OFFLINE", "1")


def write_idx(path: Path, array: np.ndarray, compress: bool) -> Path:
    """The IDX encoding written independently of the reader: header by hand, values big-endian."""
    big = array.astype(array.dtype.newbyteorder(">"))
    header = bytes([0, 0, IDX_CODES[big.dtype], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + big.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(list(IDX_CODES)),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
        elements={"allow_nan": False},
    ),
    compress=st.booleans(),
)
def test_read_idx_round_trips_any_shape_and_type(tmp_path, array, compress):
    out = read_idx(write_idx(tmp_path / "x.idx", array, compress))
    assert out.shape == array.shape
    assert out.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(out, array)
    out.flat[:1] = 0  # writable, native-order copy


def test_read_idx_on_a_known_file(tmp_path):
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    (tmp_path / "tiny").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "tiny"), [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"PK\x03\x04rest", "not an IDX file"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 9]), "not an IDX file"),  # unknown type byte
        (bytes([0, 0, 0x08, 0]), "not an IDX file"),  # zero dimensions
        (bytes([0, 0, 0x08, 3, 0, 0]), "truncated"),
        (bytes([0, 0, 0x08, 1, 0, 0, 0, 4, 1, 2, 3]), "declares shape"),  # one value short
    ],
)
def test_read_idx_rejects_bad_files_with_a_sentence(tmp_path, raw, message):
    (tmp_path / "bad").write_bytes(raw)
    with pytest.raises(UserError, match=message):
        read_idx(tmp_path / "bad")


def test_read_idx_damaged_gzip(tmp_path):
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00" * 100)[:-6])
    with pytest.raises(UserError, match="damaged gzip"):
        read_idx(tmp_path / "bad.gz")


_words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
)


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    n_rows=st.integers(1, 6),
    kinds=st.lists(st.booleans(), min_size=1, max_size=4),
)
def test_read_table_parses_numbers_and_strings(tmp_path, data, n_rows, kinds):
    columns = {}
    for i, numeric in enumerate(kinds):
        if numeric:
            values = data.draw(
                st.lists(
                    st.floats(allow_nan=False, allow_infinity=False, width=64),
                    min_size=n_rows,
                    max_size=n_rows,
                )
            )
        else:
            values = data.draw(
                st.lists(_words.filter(_not_a_number), min_size=n_rows, max_size=n_rows)
            )
        columns[f"col{i}"] = values
    path = tmp_path / "t.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values()))
    table = read_table(path)
    assert list(table) == list(columns)
    for name, values in columns.items():
        if isinstance(values[0], float):
            assert table[name].dtype == np.float64
            np.testing.assert_array_equal(table[name], values)  # repr() of a float round-trips
        else:
            assert table[name].tolist() == values


def test_read_table_ragged_row_and_header_less_file(tmp_path):
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(UserError, match="line 3 of .* has 1 fields but the table has 2 columns"):
        read_table(tmp_path / "ragged.csv")
    (tmp_path / "plain.csv").write_text("0.5,-1,1\n0.25,2,0\n")
    table = read_table(tmp_path / "plain.csv", columns=["x1", "x2", "y"])
    np.testing.assert_array_equal(table["x2"], [-1.0, 2.0])


def test_read_table_on_bike_sharing(shared_data):
    table = read_table(shared_data / "bike-sharing" / "hour.csv")
    assert len(table["cnt"]) == 17379
    assert table["dteday"][0] == "2011-01-01"
    np.testing.assert_array_equal(table["cnt"], table["casual"] + table["registered"])


def test_read_text_names_the_encoding_problem(tmp_path):
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(UserError, match="not valid utf-8"):
        read_text(tmp_path / "latin.txt")
    assert read_text(tmp_path / "latin.txt", encoding="latin-1") == "café"


def test_mr_sentiment_has_5331_sentences_per_class(shared_data):
    sentences, labels = load_mr_sentiment(shared_data)
    assert len(sentences) == len(labels) == 10662
    assert labels.sum() == 5331
    assert all(s and "\n" not in s for s in sentences)


@settings(max_examples=40, deadline=None)
@given(labels=st.lists(st.integers(0, 4), min_size=5, max_size=200), data=st.data())
def test_stratified_split_is_exact_disjoint_and_proportional(labels, data):
    labels = np.array(labels)
    test_size = data.draw(st.integers(0, len(labels)))
    train, test = stratified_split(labels, test_size, seed=3)
    assert len(test) == test_size
    assert sorted(np.concatenate([train, test])) == list(range(len(labels)))
    for cls in np.unique(labels):
        share = test_size * np.mean(labels == cls)
        assert abs(np.sum(labels[test] == cls) - share) < 1 + 1e-9


def test_load_mnist_offline_split_is_stratified_and_deterministic(shared_data):
    split = load_mnist(shared_data, seed=0)
    assert split.train_images.shape == (8000, 28, 28) and split.train_images.dtype == np.uint8
    assert split.test_images.shape == (2000, 28, 28)
    assert split.train_labels.dtype == np.int64
    assert "8,000 train / 2,000 test" in split.source and "seed 0" in split.source
    all_labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(
        np.bincount(split.train_labels) + np.bincount(split.test_labels), np.bincount(all_labels)
    )
    assert np.all(np.abs(np.bincount(split.test_labels) - np.bincount(all_labels) / 5) <= 1)
    again = load_mnist(shared_data, seed=0)
    np.testing.assert_array_equal(again.test_images, split.test_images)
    other = load_mnist(shared_data, seed=1)
    assert not np.array_equal(other.test_images, split.test_images)
    # train and test share no image (the 10,000 test digits are all distinct byte strings)
    train_keys = {img.tobytes() for img in split.train_images}
    assert not any(img.tobytes() in train_keys for img in split.test_images)


def _write_fake_idx_set(folder: Path, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    arrays = {}
    for prefix, n in sizes.items():
        arrays[prefix] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", arrays[prefix], compress=True)
        write_idx(
            folder / f"{prefix}-labels-idx1-ubyte.gz",
            rng.integers(0, 10, n, dtype=np.uint8),
            compress=True,
        )
    return arrays


def test_read_mnist_folder_uses_all_four_files_when_present(tmp_path):
    arrays = _write_fake_idx_set(tmp_path / "fashion-mnist", {"train": 30, "t10k": 10})
    split = read_mnist_folder(tmp_path / "fashion-mnist", FASHION_MNIST_CLASSES)
    np.testing.assert_array_equal(split.train_images, arrays["train"])
    np.testing.assert_array_equal(split.test_images, arrays["t10k"])
    assert "official 30 train / 10 test" in split.source


def test_load_mnist_refuses_files_that_are_not_the_published_ones(tmp_path):
    _write_fake_idx_set(tmp_path / "fashion-mnist", {"train": 30, "t10k": 10})
    with pytest.raises(UserError, match="checksum mismatch"):
        load_mnist(tmp_path, kind="fashion-mnist")


def _cifar_records(labels: list[int], rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    raw = b""
    for label, image in zip(labels, images, strict=True):
        raw += bytes([label])
        for channel in range(3):  # red plane, green plane, blue plane
            raw += bytes(image[:, :, channel].flatten())
    return raw, images


def test_parse_cifar_records_puts_planes_into_pixels():
    raw, images = _cifar_records([3, 9], np.random.default_rng(1))
    parsed, labels = parse_cifar_records(raw)
    np.testing.assert_array_equal(parsed, images)
    np.testing.assert_array_equal(labels, [3, 9])
    with pytest.raises(UserError, match="whole number"):
        parse_cifar_records(raw[:-1])


def test_read_cifar_binary_archive(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "cifar-10-binary.tar.gz"
    expected = {}
    with tarfile.open(path, "w:gz") as tar:
        for member in readers.CIFAR_BINARY_MEMBERS["train"] + readers.CIFAR_BINARY_MEMBERS["test"]:
            raw, images = _cifar_records([1, 2], rng)
            expected[member] = images
            info = tarfile.TarInfo(member)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    train_x, train_y, test_x, test_y = read_cifar_binary_archive(path)
    assert train_x.shape == (10, 32, 32, 3) and test_x.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(train_x[2:4], expected["cifar-10-batches-bin/data_batch_2.bin"])
    np.testing.assert_array_equal(test_y, [1, 2])


def test_read_cifar_jpeg_archive_orders_classes_like_cifar(tmp_path):
    path = tmp_path / "cifar10-jpg.tar.gz"
    colours = {"truck": (250, 10, 10), "airplane": (10, 250, 10), "cat": (10, 10, 250)}
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for name, colour in colours.items():
                buffer = io.BytesIO()
                Image.new("RGB", (32, 32), colour).save(buffer, format="JPEG", quality=95)
                info = tarfile.TarInfo(f"cifar10-jpg/{split}/{name}/0000.jpg")
                info.size = buffer.tell()
                tar.addfile(info, io.BytesIO(buffer.getvalue()))
    train_x, train_y, test_x, test_y = read_cifar_jpeg_archive(path, workers=1)
    order = ["airplane", "cat", "truck"]
    np.testing.assert_array_equal(train_y, [CIFAR10_CLASSES.index(n) for n in order])
    for image, name in zip(test_x, order, strict=True):
        assert np.abs(image.astype(int) - colours[name]).max() <= 3  # JPEG is lossy


@pytest.mark.slow
def test_load_cifar10_from_the_offline_jpeg_archive(shared_data, monkeypatch):
    start = time.perf_counter()
    split = load_cifar10(shared_data)
    first = time.perf_counter() - start
    assert split.train_images.shape == (50000, 32, 32, 3)
    assert split.test_images.shape == (10000, 32, 32, 3)
    assert split.train_images.dtype == np.uint8 and split.train_labels.dtype == np.int64
    assert split.classes == CIFAR10_CLASSES
    np.testing.assert_array_equal(np.bincount(split.train_labels), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(split.test_labels), [1000] * 10)
    # the second load must come from the cache, not from decoding again
    monkeypatch.setattr(readers, "read_cifar_jpeg_archive", pytest.fail)
    start = time.perf_counter()
    cached = load_cifar10(shared_data)
    print(f"cifar10: first load {first:.1f} s, cached load {time.perf_counter() - start:.2f} s")
    np.testing.assert_array_equal(cached.test_images, split.test_images)


def test_image_folder_files(tmp_path, shared_data):
    for name in ("bees", "ants"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "b.JPG").write_bytes(b"")
        (tmp_path / name / "a.png").write_bytes(b"")
        (tmp_path / name / "notes.txt").write_text("not an image")
    files, classes = image_folder_files(tmp_path)
    assert classes == ["ants", "bees"]
    assert [(p.relative_to(tmp_path).as_posix(), c) for p, c in files] == [
        ("ants/a.png", 0),
        ("ants/b.JPG", 0),
        ("bees/a.png", 1),
        ("bees/b.JPG", 1),
    ]
    files, classes = image_folder_files(shared_data / "hymenoptera" / "val")
    assert len(files) == 153 and classes == ["ants", "bees"]
    with pytest.raises(UserError, match="not a folder"):
        image_folder_files(tmp_path / "nowhere")
