"""The catalogue: every data set dlnd knows, its files, checksums, sources, licence and citation.

On disk a data set lives in one folder under a data root (``$DLND_DATA``, the user cache, or a
folder given with ``--data-dir``), laid out exactly like the offline copy of the data::

    <root>/mnist/t10k-images-idx3-ubyte.gz
    <root>/cifar10/cifar10-jpg.tar.gz
    <root>/text/anna.txt
    <root>/hymenoptera/train/ants/*.jpg

A data set has one or more *layouts*: alternative sets of files that each make it usable (MNIST's
full four files, or only its two test files; CIFAR-10 as the official binary archive or as the
JPEG archive). A file carries a SHA-256 where one is known; where the publisher only gives an MD5
(MNIST training files, Fashion-MNIST, the CIFAR-10 binary archive), the MD5 is carried and used.
A file without any checksum is not allowed. Image folders (hymenoptera, whose publisher gives no
checksums) carry the SHA-256 of their content instead (see :func:`dlnd.data.checksums.
folder_digest`). Everything taken from a downloaded archive is checked this way before it is
used, so an archive needs no checksum of its own (it may carry one). Every URL is https (plain
http only for a server on this machine, as the tests run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dlnd.errors import UserError

UDACITY = "https://raw.githubusercontent.com/udacity/deep-learning-v2-pytorch/master/"


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_urls(urls: tuple[str, ...], what: str) -> None:
    """Refuse a download URL that is not https (unless it is served from this machine)."""
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
        ):
            raise ValueError(f"catalogue {what} has the URL {url!r}; downloads must use https")


@dataclass(frozen=True)
class DataFile:
    """One file of a data set, relative to the data set's folder, with its checksum."""

    path: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.sha256 or self.md5):
            raise ValueError(f"catalogue file {self.path} needs a sha256 or an md5")
        check_urls(self.urls, f"file {self.path}")

    @property
    def checksum(self) -> tuple[str, str]:
        """``(algorithm, hex digest)``: SHA-256 when known, else the published MD5."""
        return ("sha256", self.sha256) if self.sha256 else ("md5", self.md5)  # type: ignore[return-value]


@dataclass(frozen=True)
class Archive:
    """A download that is unpacked into the data set's folder.

    ``strip`` is a leading folder of the archive's members that is dropped on extraction
    (``hymenoptera_data/train/...`` becomes ``train/...``); ``keep`` lists the member paths
    (after stripping) to keep, or is empty to keep everything. ``sha256`` (optional: what is
    kept from it is checked anyway) is verified before the archive is opened.
    """

    filename: str
    urls: tuple[str, ...]
    strip: str = ""
    keep: tuple[str, ...] = ()
    sha256: str | None = None

    def __post_init__(self) -> None:
        check_urls(self.urls, f"archive {self.filename}")


@dataclass(frozen=True)
class Layout:
    """One complete way a data set can be present in its folder.

    ``files`` are checked by checksum. ``image_counts`` maps a sub-folder to the number of
    files it must hold and ``image_digests`` to the SHA-256 of its content (for data sets
    that publish no checksums). ``archives`` are what to download, besides the files' own
    URLs, to produce this layout.
    """

    label: str
    files: tuple[DataFile, ...] = ()
    image_counts: dict[str, int] = field(default_factory=dict)
    image_digests: dict[str, str] = field(default_factory=dict)
    archives: tuple[Archive, ...] = ()

    def __post_init__(self) -> None:
        if set(self.image_digests) != set(self.image_counts):
            raise ValueError(f"layout {self.label!r} needs a digest for every image folder")

    @property
    def size(self) -> int | None:
        """Total bytes of the checksummed files, or ``None`` when any size is unknown."""
        sizes = [f.size for f in self.files]
        if not sizes or None in sizes:
            return None
        return sum(sizes)  # type: ignore[arg-type]

    @property
    def downloadable(self) -> bool:
        return bool(self.archives) or (bool(self.files) and all(f.urls for f in self.files))


@dataclass(frozen=True)
class Dataset:
    """A catalogue entry; ``folder`` is where it lives under a data root."""

    name: str
    folder: str
    description: str
    licence: str
    citation: str
    homepage: str
    layouts: tuple[Layout, ...]

    @property
    def all_files(self) -> tuple[DataFile, ...]:
        """Every checksummed file of every layout, each path once."""
        seen: dict[str, DataFile] = {}
        for layout in self.layouts:
            for f in layout.files:
                seen.setdefault(f.path, f)
        return tuple(seen.values())


def _udacity(path: str, sha256: str, size: int, repo_path: str) -> DataFile:
    return DataFile(path, sha256=sha256, size=size, urls=(UDACITY + repo_path,))


def _idx_files(
    base_urls: tuple[str, ...], md5: dict[str, str], sizes: dict[str, int], sha256: dict[str, str]
) -> tuple[DataFile, ...]:
    return tuple(
        DataFile(
            name,
            sha256=sha256.get(name),
            md5=digest,
            size=sizes[name],
            urls=tuple(base + name for base in base_urls),
        )
        for name, digest in md5.items()
    )


# MNIST: MD5s as published by torchvision; the SHA-256s of the two test files were computed
# from the offline copy, which is byte-identical to the canonical files (same MD5).
_MNIST_FILES = _idx_files(
    (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    sizes={
        "train-images-idx3-ubyte.gz": 9912422,
        "train-labels-idx1-ubyte.gz": 28881,
        "t10k-images-idx3-ubyte.gz": 1648877,
        "t10k-labels-idx1-ubyte.gz": 4542,
    },
    sha256={
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
)

_FASHION_FILES = _idx_files(
    ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",),
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    sizes={
        "train-images-idx3-ubyte.gz": 26421880,
        "train-labels-idx1-ubyte.gz": 29515,
        "t10k-images-idx3-ubyte.gz": 4422102,
        "t10k-labels-idx1-ubyte.gz": 5148,
    },
    sha256={},
)


def _test_only(files: tuple[DataFile, ...]) -> tuple[DataFile, ...]:
    return tuple(f for f in files if f.path.startswith("t10k-"))


_STYLE = {  # file name: (sha256, bytes)
    "ben_passmore.jpg": (
        "d8ace42ec69808f03ee8de4c36bbff7ba15650eed8623e5a3f29b047d9351ad8",
        326241,
    ),
    "delaunay.jpg": ("2f444f0102cd5e594d3e8a2c00ae12d74c21c08833d6b7be87d3c81f72befc22", 102687),
    "hockney.jpg": ("316ab50d7cf7dd04f4cf87e60d2061b6583a99b5d8624a2c168100651018bd68", 18752),
    "janelle.png": ("a77aa9a109b6ba287f47ce94dffb08af5f826f7b3fad307b5d97c02a6a294aa5", 1085377),
    "kahlo.jpg": ("f3df12dd66fd435f64f8c79609d32a0505bc94d853285923069f7ec34f84130f", 262956),
    "magritte.jpg": ("bd2bc1602cf8930dc56534127b5bbb7a2985efda08b380bfd5d252b3b863903c", 110310),
    "octavia.jpg": ("c47fced051824e4ff615a8f8cb0b2b88d8fe6e0aceb40ac8b9606e06e2959c1f", 22470),
    "octopus.jpg": ("bbacb314a01756c441775947931ec4a9fe4405d33ef4e848852386c5447873c9", 92235),
    "sotomayor.jpg": ("030e96a61ba769b65436664724f05ff5220890f9e8ab84953cb2c7af15c5d9b7", 118564),
    "space_needle.jpg": (
        "aff2911f8c0c034bb65034c13730a263ae44d8bd5b92425d3231bab8bf0a9026",
        660207,
    ),
}

_CONV = {
    "bridge_trees_example.jpg": (
        "3e84f4b92014bf27d54a364970dbb9c93ade56fc95bf3735bf0e595c09356c6c",
        232093,
    ),
    "curved_lane.jpg": ("8cba82db46d16ac50fe1bc26a5e1e09f9687e6314038ade8204f45b7852ca10e", 128326),
    "udacity_sdc.png": ("997b7c5669ad9661d925cc618a3b81edfea6c1982f9b2f0d1b382bde3a1f8312", 144560),
    "white_lines.jpg": ("d49cb4ce4a125487e191b4fc7135fdb9e4483576754fdc71b0735ee9e838772b", 358076),
}

_BIKE_ZIP = Archive(
    "Bike-Sharing-Dataset.zip",
    urls=(
        "https://archive.ics.uci.edu/static/public/275/bike+sharing+dataset.zip",
        "https://archive.ics.uci.edu/ml/machine-learning-databases/00275/Bike-Sharing-Dataset.zip",
    ),
    keep=("Readme.txt", "day.csv", "hour.csv"),
)

_MR_TAR = Archive(
    "rt-polaritydata.tar.gz",
    urls=("https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz",),
    strip="rt-polaritydata/",
    keep=("rt-polarity.pos", "rt-polarity.neg"),
)

# text8: the first 10^8 bytes of an English Wikipedia dump (March 2006), cleaned to lower-case
# letters and spaces by Matt Mahoney; the standard small corpus for word2vec.
_TEXT8_ZIP = Archive(
    "text8.zip",
    urls=("https://mattmahoney.net/dc/text8.zip",),
    keep=("text8",),
)

_HYMENOPTERA_ZIP = Archive(
    "hymenoptera_data.zip",
    urls=("https://download.pytorch.org/tutorial/hymenoptera_data.zip",),
    strip="hymenoptera_data/",
)

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="intro",
            folder="intro",
            description="two small CSV tables for the perceptron, gradient-descent and "
            "student-admissions lessons",
            licence="MIT (Udacity deep-learning-v2-pytorch)",
            citation="Udacity, deep-learning-v2-pytorch (2018)",
            homepage="https://github.com/udacity/deep-learning-v2-pytorch",
            layouts=(
                Layout(
                    "CSV files",
                    files=(
                        _udacity(
                            "gradient_descent_data.csv",
                            "f0662ef7f84149a54f36566c02bd22719350e02849dbc39f784611323edae0e9",
                            1778,
                            "intro-neural-networks/gradient-descent/data.csv",
                        ),
                        _udacity(
                            "student_data.csv",
                            "2f5dcda0e455631215709575cc2eede4e5fb4e94cda9c37dab54e26d79dcf8c2",
                            5088,
                            "keras/student-admissions-keras/student_data.csv",
                        ),
                    ),
                ),
            ),
        ),
        Dataset(
            name="bike-sharing",
            folder="bike-sharing",
            description="UCI Bike Sharing: 17,379 hourly rental counts with weather and calendar",
            licence="CC BY 4.0",
            citation="Fanaee-T, H. and Gama, J. (2013). Event labeling combining ensemble "
            "detectors and background knowledge. Progress in Artificial Intelligence.",
            homepage="https://archive.ics.uci.edu/dataset/275/bike+sharing+dataset",
            layouts=(
                Layout(
                    "UCI archive",
                    archives=(_BIKE_ZIP,),
                    files=(
                        DataFile(
                            "Readme.txt",
                            size=5333,
                            sha256="5ad25b76496fc951569eeee64cae6582b1ea4448d7730f5eff968290a86316f1",
                        ),
                        DataFile(
                            "day.csv",
                            size=57569,
                            sha256="a6bcf826782d3c0fbfdcbeead17cd0884185a0dafe8ff10cd48a874ee7ba18be",
                        ),
                        DataFile(
                            "hour.csv",
                            size=1156736,
                            sha256="e03de4ee4ef4dc376ac6e04bf829673c6269e8eba5c60fa121640fa2f829504f",
                        ),
                    ),
                ),
            ),
        ),
        Dataset(
            name="mnist",
            folder="mnist",
            description="MNIST handwritten digits, 28x28 grey, 60,000 train / 10,000 test (IDX)",
            licence="CC BY-SA 3.0",
            citation="LeCun, Y., Cortes, C. and Burges, C. J. C. The MNIST database of "
            "handwritten digits (1998).",
            homepage="https://yann.lecun.com/exdb/mnist/",
            layouts=(
                Layout("full train and test set", files=_MNIST_FILES),
                Layout("test set only (offline copy)", files=_test_only(_MNIST_FILES)),
            ),
        ),
        Dataset(
            name="fashion-mnist",
            folder="fashion-mnist",
            description="Fashion-MNIST: Zalando article images, 28x28 grey, 10 classes (IDX)",
            licence="MIT",
            citation="Xiao, H., Rasul, K. and Vollgraf, R. (2017). Fashion-MNIST: a novel image "
            "dataset for benchmarking machine learning algorithms. arXiv:1708.07747.",
            homepage="https://github.com/zalandoresearch/fashion-mnist",
            layouts=(
                Layout("full train and test set", files=_FASHION_FILES),
                Layout("test set only", files=_test_only(_FASHION_FILES)),
            ),
        ),
        Dataset(
            name="cifar10",
            folder="cifar10",
            description="CIFAR-10: 60,000 32x32 colour images in 10 classes (50,000 train)",
            licence="CIFAR-10 terms (research use)",
            citation="Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny "
            "Images. Technical report, University of Toronto.",
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            layouts=(
                Layout(
                    "official binary archive",
                    files=(
                        DataFile(
                            "cifar-10-binary.tar.gz",
                            md5="c32a1d4ab5d03f1284b67883e8d87530",
                            size=170052171,
                            urls=("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                        ),
                    ),
                ),
                Layout(
                    "JPEG ImageFolder archive (offline copy)",
                    files=(
                        DataFile(
                            "cifar10-jpg.tar.gz",
                            size=19633070,
                            sha256="b4d6b53403b47a973a5b2a9be8c1d46671215710ff260ffb85e85b188866d228",
                        ),
                    ),
                ),
            ),
        ),
        Dataset(
            name="hymenoptera",
            folder="hymenoptera",
            description="ants and bees photographs for transfer learning, 245 train / 153 val",
            licence="ImageNet terms (non-commercial research)",
            citation="PyTorch transfer-learning tutorial data, a subset of ImageNet: Deng, J. "
            "et al. (2009). ImageNet: a large-scale hierarchical image database. CVPR.",
            homepage="https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html",
            layouts=(
                Layout(
                    "image folders (no published checksums: content digests of the offline copy)",
                    image_counts={
                        "train/ants": 124,
                        "train/bees": 121,
                        "val/ants": 70,
                        "val/bees": 83,
                    },
                    image_digests={
                        "train/ants": "704aebf688827d89505eb38cb6d78d540d58d38c5263b257cdc951c098a747ae",
                        "train/bees": "e78a9be955d1b5d42a5813fe108d7f4d8e4ab622ebdbc59d23426a698946f006",
                        "val/ants": "f08ca541026e8d6d41455e2d8a3d978b3b1372b0c90810477924968cfb7ab510",
                        "val/bees": "6af516ce1d148c79b4a7fa1491066581fc7030e3b30a32796512d8e43651b8f9",
                    },
                    archives=(_HYMENOPTERA_ZIP,),
                ),
            ),
        ),
        Dataset(
            name="anna",
            folder="text",
            description="Anna Karenina (English translation), 2.0 MB plain text",
            licence="public domain",
            citation="Tolstoy, L. Anna Karenina, trans. Garnett, C., Project Gutenberg.",
            homepage="https://www.gutenberg.org/ebooks/1399",
            layouts=(
                Layout(
                    "plain text",
                    files=(
                        _udacity(
                            "anna.txt",
                            "568bb39fc78aca98e9db91c4329dcd1aa5ec4c3df3aca2064ce5d6f023ae16c9",
                            2025486,
                            "recurrent-neural-networks/char-rnn/data/anna.txt",
                        ),
                    ),
                ),
            ),
        ),
        Dataset(
            name="seinfeld",
            folder="text",
            description="Seinfeld TV scripts, 3.4 MB lower-cased text",
            licence="fan transcripts, educational use",
            citation="Udacity, deep-learning-v2-pytorch, TV script generation project (2018)",
            homepage="https://github.com/udacity/deep-learning-v2-pytorch",
            layouts=(
                Layout(
                    "plain text",
                    files=(
                        _udacity(
                            "seinfeld_scripts.txt",
                            "456ab68e2694b90ce5cccc384d5e7d8c79e33334856a60333fb5348d3696d3f6",
                            3471475,
                            "project-tv-script-generation/data/Seinfeld_Scripts.txt",
                        ),
                    ),
                ),
            ),
        ),
        Dataset(
            name="text8",
            folder="text",
            description="text8: 100 MB (17 million words) of cleaned English Wikipedia, "
            "lower-case letters and spaces (downloaded as a 31 MB zip)",
            licence="CC BY-SA (Wikipedia text)",
            citation="Mahoney, M. (2006). Large text compression benchmark: text8, the first "
            "10^8 bytes of an English Wikipedia dump, cleaned.",
            homepage="https://mattmahoney.net/dc/textdata.html",
            layouts=(
                Layout(
                    "plain text (from text8.zip)",
                    archives=(_TEXT8_ZIP,),
                    files=(
                        DataFile(
                            "text8",
                            size=100_000_000,
                            sha256="6e890197040d37d85beb962ae1f041ff1d9a9ca8d20c7d99c85027eebf51dca7",
                        ),
                    ),
                ),
            ),
        ),
        Dataset(
            name="mr-sentiment",
            folder="sentiment",
            description="Movie Review polarity: 5,331 positive + 5,331 negative sentences "
            "(Latin-1)",
            licence="research use",
            citation="Pang, B. and Lee, L. (2005). Seeing stars: exploiting class relationships "
            "for sentiment categorization with respect to rating scales. ACL.",
            homepage="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
            layouts=(
                Layout(
                    "sentence polarity v1.0",
                    archives=(_MR_TAR,),
                    files=(
                        DataFile(
                            "rt-polarity.pos",
                            size=626139,
                            sha256="2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0",
                        ),
                        DataFile(
                            "rt-polarity.neg",
                            size=612256,
                            sha256="4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca",
                        ),
                    ),
                ),
            ),
        ),
        Dataset(
            name="style-images",
            folder="images/style",
            description="content and style images for neural style transfer",
            licence="artworks belong to their owners; local experiments only",
            citation="Udacity, deep-learning-v2-pytorch, style-transfer lesson (2018)",
            homepage="https://github.com/udacity/deep-learning-v2-pytorch",
            layouts=(
                Layout(
                    "images",
                    files=tuple(
                        _udacity(name, digest, size, "style-transfer/images/" + name)
                        for name, (digest, size) in _STYLE.items()
                    ),
                ),
            ),
        ),
        Dataset(
            name="conv-images",
            folder="images/conv",
            description="road and bridge photographs for convolution-filter visualisation",
            licence="Udacity course material; local experiments only",
            citation="Udacity, deep-learning-v2-pytorch, conv-visualization lesson (2018)",
            homepage="https://github.com/udacity/deep-learning-v2-pytorch",
            layouts=(
                Layout(
                    "images",
                    files=tuple(
                        _udacity(
                            name,
                            digest,
                            size,
                            "convolutional-neural-networks/conv-visualization/data/" + name,
                        )
                        for name, (digest, size) in _CONV.items()
                    ),
                ),
            ),
        ),
    )
}


def get_dataset(name: str) -> Dataset:
    """The catalogue entry called ``name``; a :class:`UserError` listing the names if unknown."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(
            f"unknown data set {name!r}; expected one of {', '.join(DATASETS)} "
            "(see 'dlnd data list')."
        ) from None
