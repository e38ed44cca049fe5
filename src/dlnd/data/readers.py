"""Readers that turn the catalogue's files into NumPy arrays and Python strings.

Nothing here unpickles: MNIST comes as IDX files, CIFAR-10 as the official *binary* archive
(fixed-size records) or as the JPEG ImageFolder archive of the offline copy, tables as CSV.
"""

from __future__ import annotations

import csv
import gzip
import io
import multiprocessing
import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from dlnd.data.catalog import get_dataset
from dlnd.data.checksums import user_cache_root
from dlnd.data.fetch import resolve
from dlnd.errors import UserError
from dlnd.io import atomic_write

MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")

# IDX type byte -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, bottom of page).
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class ImageSplit:
    """Images as ``uint8`` arrays with ``int64`` labels.

    ``train_images``: (N, H, W) for grey or (N, H, W, 3) for colour; ``train_labels``: (N,);
    likewise for the test split. ``classes[k]`` names label ``k``; ``source`` says in words
    where the arrays came from (and how they were split).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]
    source: str


MnistSplit = ImageSplit  # what load_mnist returns: the same fields, grey (N, 28, 28) images


def _read_bytes(path: Path) -> bytes:
    """The bytes of ``path``, un-gzipped when it starts with the gzip magic ``1f 8b``."""
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{path} is a damaged gzip file ({err}); download it again.") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into an array of its declared shape.

    Layout: two zero bytes, a type byte, the number of dimensions ``d``, then ``d`` big-endian
    uint32 sizes, then the values in row-major order. MNIST images: (N, 28, 28) uint8.
    Returns a writable array in native byte order.
    """
    raw = _read_bytes(Path(path))
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES or raw[3] == 0:
        raise UserError(
            f"{path} is not an IDX file: it should start with 00 00, a type byte among "
            f"{sorted(IDX_DTYPES)} and a dimension count > 0, but starts with {raw[:4].hex(' ')}."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(
            f"{path} is truncated: its IDX header declares {ndim} dimensions "
            "but the file ends before their sizes; download it again."
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise UserError(
            f"{path} holds {len(raw) - header} bytes of values but its header "
            f"declares shape {shape} ({expected} bytes); download it again."
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def stratified_split(
    labels: np.ndarray, test_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` with exactly ``test_size`` test items, classes in proportion.

    Class ``c`` with ``n_c`` of ``n`` items gets ``test_size * n_c / n`` test slots, rounded
    down; the slots left over go to the classes with the largest remainders, so the total is
    exact. Items within a class are drawn with ``numpy.random.default_rng(seed)``.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * test_size / len(labels)
    per_class = np.floor(quota).astype(np.int64)
    leftover = test_size - int(per_class.sum())
    per_class[np.argsort(per_class - quota, kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls, n_test in zip(classes, per_class, strict=True):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_mnist(
    data_dir: str | Path | None = None, kind: str = "mnist", seed: int = 0, test_size: int = 2000
) -> ImageSplit:
    """MNIST or Fashion-MNIST (``kind``) from the catalogue; see :func:`read_mnist_folder`."""
    if kind not in ("mnist", "fashion-mnist"):
        raise UserError(f"unknown MNIST kind {kind!r}; expected 'mnist' or 'fashion-mnist'.")
    classes = MNIST_CLASSES if kind == "mnist" else FASHION_MNIST_CLASSES
    return read_mnist_folder(resolve(kind, data_dir), classes, seed, test_size)


def read_mnist_folder(
    folder: Path, classes: list[str], seed: int = 0, test_size: int = 2000
) -> ImageSplit:
    """uint8 images (N, 28, 28) and int64 labels (N,) from the IDX files in ``folder``.

    With all four canonical files: the official train / test split (60,000 / 10,000 for
    MNIST). With only the two ``t10k`` files (the offline copy): the 10,000 test images split
    stratified by class with ``seed`` into ``10,000 - test_size`` train and ``test_size`` test.
    """
    test_images = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    test_labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    _check_pairs(folder, test_images, test_labels)
    train_files = [folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"]
    if all(f.is_file() for f in train_files):
        train_images = read_idx(train_files[0])
        train_labels = read_idx(train_files[1]).astype(np.int64)
        _check_pairs(folder, train_images, train_labels)
        source = (
            f"{folder.name}: official {len(train_labels):,} train / "
            f"{len(test_labels):,} test split from {folder}"
        )
        return ImageSplit(train_images, train_labels, test_images, test_labels, classes, source)
    train_idx, test_idx = stratified_split(test_labels, test_size, seed)
    source = (
        f"{folder.name}: only the {len(test_labels):,} official test images were found "
        f"in {folder}; split stratified by class with seed {seed} into "
        f"{len(train_idx):,} train / {len(test_idx):,} test"
    )
    return ImageSplit(
        test_images[train_idx],
        test_labels[train_idx],
        test_images[test_idx],
        test_labels[test_idx],
        classes,
        source,
    )


def _check_pairs(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(
            f"the IDX files in {folder} do not match: images {images.shape}, "
            f"labels {labels.shape}; expected (N, 28, 28) and (N,)."
        )


def load_cifar10(data_dir: str | Path | None = None) -> ImageSplit:
    """CIFAR-10 as uint8 images (N, 32, 32, 3) and int64 labels, 50,000 train / 10,000 test.

    Reads the official binary archive ``cifar-10-binary.tar.gz`` when present, else the JPEG
    ImageFolder archive ``cifar10-jpg.tar.gz`` of the offline copy. Decoded arrays are cached
    as ``.npy`` files in the user cache, keyed by the archive's checksum, so only the first
    call pays for decoding. Labels follow the standard order :data:`CIFAR10_CLASSES`.
    """
    folder = resolve("cifar10", data_dir)
    # the first layout present wins, as in resolve: the binary archive, else the JPEG one
    archive = next(
        f
        for layout in get_dataset("cifar10").layouts
        for f in layout.files
        if (folder / f.path).is_file()
    )
    binary = archive.path == "cifar-10-binary.tar.gz"
    cache = user_cache_root() / "arrays" / f"cifar10-{archive.checksum[1][:16]}"
    arrays = _load_arrays(cache)
    if arrays is None:
        decode = read_cifar_binary_archive if binary else read_cifar_jpeg_archive
        arrays = decode(folder / archive.path)
        _save_arrays(cache, arrays)
    kind = "official binary" if binary else "JPEG (quality ~75)"
    source = f"cifar10: {kind} archive {folder / archive.path}, decoded arrays cached in {cache}"
    return ImageSplit(*arrays, classes=list(CIFAR10_CLASSES), source=source)


_ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")


def _load_arrays(folder: Path) -> tuple[np.ndarray, ...] | None:
    paths = [folder / f"{name}.npy" for name in _ARRAY_NAMES]
    if not all(p.is_file() for p in paths):
        return None
    try:
        return tuple(np.load(p, allow_pickle=False) for p in paths)
    except (OSError, ValueError):
        return None  # a damaged cache is rebuilt from the archive


def _save_arrays(folder: Path, arrays: tuple[np.ndarray, ...]) -> None:
    for name, array in zip(_ARRAY_NAMES, arrays, strict=True):
        atomic_write(folder / f"{name}.npy", lambda tmp, a=array: _save_npy(tmp, a))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


# One record of the binary version: 1 label byte, then 1024 red, 1024 green, 1024 blue bytes
# (each a 32x32 plane in row-major order).
CIFAR_RECORD_BYTES = 1 + 3 * 32 * 32
CIFAR_BINARY_MEMBERS = {
    "train": [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["cifar-10-batches-bin/test_batch.bin"],
}


def parse_cifar_records(raw: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """Records of the CIFAR-10 binary format -> images (N, 32, 32, 3) uint8, labels (N,) int64."""
    if len(raw) % CIFAR_RECORD_BYTES:
        raise UserError(
            f"{name} holds {len(raw)} bytes, not a whole number of "
            f"{CIFAR_RECORD_BYTES}-byte CIFAR-10 records; download it again."
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    # (N, channel, row, column) planes -> (N, row, column, channel) pixels
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_cifar_binary_archive(archive: Path) -> tuple[np.ndarray, ...]:
    """``(train_images, train_labels, test_images, test_labels)`` from ``cifar-10-binary.tar.gz``.

    The six record files are read straight out of the tarball (nothing is extracted).
    """
    split: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tarfile.open(archive) as tar:
        for part, members in CIFAR_BINARY_MEMBERS.items():
            chunks = []
            for member in members:
                handle = tar.extractfile(member)
                if handle is None:
                    raise UserError(f"{archive} lacks {member}; delete it and download it again.")
                chunks.append(parse_cifar_records(handle.read(), member))
            split[part] = (
                np.concatenate([c[0] for c in chunks]),
                np.concatenate([c[1] for c in chunks]),
            )
    return (*split["train"], *split["test"])


def _jpeg_entries(archive: Path) -> dict[str, list[tuple[int, str, bytes]]]:
    """``{"train": [(label, name, jpeg bytes), ...], "test": [...]}`` from the JPEG archive.

    Member paths are ``cifar10-jpg/<train|test>/<class>/<number>.jpg``. The 20 MB archive is
    un-gzipped in memory first: ``tarfile`` walks 60,000 members about 3x faster that way
    than through a gzip stream.
    """
    entries: dict[str, list[tuple[int, str, bytes]]] = {"train": [], "test": []}
    raw = gzip.decompress(archive.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            parts = PurePosixPath(member.name).parts
            if len(parts) != 4 or parts[1] not in entries or parts[2] not in CIFAR10_CLASSES:
                raise UserError(
                    f"{archive} has an unexpected member {member.name!r}; expected "
                    "cifar10-jpg/<train|test>/<class>/<number>.jpg."
                )
            data = raw[member.offset_data : member.offset_data + member.size]
            entries[parts[1]].append((CIFAR10_CLASSES.index(parts[2]), parts[3], data))
    for items in entries.values():
        items.sort(key=lambda item: (item[0], item[1]))
    return entries


def decode_jpegs(blobs: list[bytes]) -> np.ndarray:
    """JPEG byte strings -> (N, H, W, 3) uint8 RGB; all images must share one size."""
    return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])


def read_cifar_jpeg_archive(archive: Path, workers: int = 2) -> tuple[np.ndarray, ...]:
    """``(train_images, train_labels, test_images, test_labels)`` from the JPEG archive.

    The JPEGs are decoded with Pillow, in ``workers`` processes (``1``: in this process),
    2,500 images per task.
    """
    entries = _jpeg_entries(archive)
    chunked = {
        part: [[data for _, _, data in items[i : i + 2500]] for i in range(0, len(items), 2500)]
        for part, items in entries.items()
    }
    if workers > 1:
        # spawn, not fork: the caller may hold threads (PyTorch), and fork would copy them
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            decoded = {part: pool.map(decode_jpegs, chunks) for part, chunks in chunked.items()}
    else:
        decoded = {part: list(map(decode_jpegs, chunks)) for part, chunks in chunked.items()}
    result: list[np.ndarray] = []
    for part in ("train", "test"):
        result.append(np.concatenate(decoded[part]))
        result.append(np.array([label for label, _, _ in entries[part]], dtype=np.int64))
    return tuple(result)


def read_table(path: str | Path, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read a CSV file into ``{column name: (rows,) array}``.

    The first line is the header, unless ``columns`` names the columns of a header-less file
    (like ``gradient_descent_data.csv``). A column whose every value parses as a number becomes
    float64; any other column stays ``str``. A row with the wrong number of fields is an error.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        numbered = [(reader.line_num, row) for row in reader if row]  # blank lines skipped
    if columns is None:
        if not numbered:
            raise UserError(f"{path} is empty; expected a CSV table with a header line.")
        columns = numbered.pop(0)[1]
    for line, row in numbered:
        if len(row) != len(columns):
            raise UserError(
                f"line {line} of {path} has {len(row)} fields but the table has "
                f"{len(columns)} columns ({', '.join(columns)}); fix that line."
            )
    return {name: _column([row[i] for _, row in numbered]) for i, name in enumerate(columns)}


def _column(values: list[str]) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole text of ``path``; a clear error if it is not in ``encoding``."""
    try:
        return Path(path).read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path} is not valid {encoding} text (byte {err.start}); pass the "
            "file's real encoding (the MR sentiment files are latin-1)."
        ) from None


def load_corpus(name: str, data_dir: str | Path | None = None) -> str:
    """The text of a one-file corpus from the catalogue: ``"anna"``, ``"seinfeld"`` or
    ``"text8"``."""
    dataset = get_dataset(name)
    files = dataset.layouts[0].files
    if len(files) != 1 or dataset.folder != "text":
        raise UserError(f"{name} is not a text corpus; expected 'anna', 'seinfeld' or 'text8'.")
    return read_text(resolve(name, data_dir) / files[0].path)


def load_mr_sentiment(data_dir: str | Path | None = None) -> tuple[list[str], np.ndarray]:
    """Movie Review polarity sentences and labels (1 positive, 0 negative), positives first.

    The files are Latin-1 encoded, one sentence per line. Returns ``(sentences, labels (N,))``.
    """
    folder = resolve("mr-sentiment", data_dir)
    sentences: list[str] = []
    labels: list[int] = []
    for filename, label in (("rt-polarity.pos", 1), ("rt-polarity.neg", 0)):
        # split on "\n" only: str.splitlines would also break at byte 0x85, which is a
        # character (an ellipsis in cp1252) inside some of these Latin-1 sentences
        lines = read_text(folder / filename, encoding="latin-1").split("\n")
        kept = [line.strip() for line in lines if line.strip()]
        sentences += kept
        labels += [label] * len(kept)
    return sentences, np.array(labels, dtype=np.int64)


def image_folder_files(
    root: str | Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS
) -> tuple[list[tuple[Path, int]], list[str]]:
    """``([(image path, class index), ...], classes)`` for an ImageFolder tree ``root/<class>/*``.

    Classes are the sub-folder names in sorted order; files are sorted within each class and
    kept when their suffix (any case) is in ``extensions``. Nothing is opened or checked here.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; expected an ImageFolder tree root/<class>/*.jpg.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{root} has no class sub-folders; expected root/<class>/*.jpg.")
    files = [
        (path, index)
        for index, name in enumerate(classes)
        for path in sorted((root / name).iterdir())
        if path.is_file() and path.suffix.lower() in extensions
    ]
    return files, classes
