"""Every vision recipe's quick mode learns on embedded data and writes its figures."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from dlnd.checkpoint import load_model
from dlnd.cli import execute, resolve_config
from dlnd.data.readers import FASHION_MNIST_CLASSES, ImageSplit, read_idx
from dlnd.recipes import get_recipe
from dlnd.runs import RunContext
from dlnd.vision import synthetic
from dlnd.vision.augment import crop_and_flip
from dlnd.vision.datasets import from_split
from dlnd.vision.recipes import train_classifier

pytestmark = pytest.mark.slow

CLASSIFIER_PLOTS = {"learning_curves", "per_class_accuracy", "confusion_matrix", "misclassified"}


def quick_run(name: str, tmp_path, **flags) -> tuple[dict, object]:
    recipe = get_recipe(name)
    cfg = resolve_config(
        recipe, {"quick": True, "embedded": True, "out": str(tmp_path), "device": "cpu", **flags}
    )
    run_dir = tmp_path / name
    run_dir.mkdir()
    return execute(recipe, cfg, run_dir=run_dir)["metrics"], run_dir


@pytest.mark.parametrize(
    ("name", "chance"),
    [
        ("mnist-mlp", 0.1),
        ("mnist-cnn", 0.1),
        ("fashion-mnist", 0.1),
        ("cifar10-cnn", 0.1),
        ("image-classifier", 0.25),
    ],
)
def test_quick_classifier_learns_and_reports(name, chance, tmp_path):
    metrics, run_dir = quick_run(name, tmp_path)
    # Held-out test images, never seen in training: far above guessing.
    assert metrics["test_accuracy"] >= chance + 0.4, metrics
    plots = {p.stem for p in (run_dir / "plots").glob("*.png")}
    assert plots >= CLASSIFIER_PLOTS
    if name != "mnist-mlp":
        assert {"first_layer_filters", "feature_maps"} <= plots
    model, meta = load_model(run_dir)
    info = meta["info"]
    assert info["task"] == "image-classification"
    assert set(info["input"]) >= {
        "channels",
        "height",
        "width",
        "color",
        "resize",
        "invert",
        "mean",
        "std",
    }
    json.dumps(info)  # plain JSON for the serving side


def test_quick_fashion_mnist_with_the_mlp(tmp_path):
    metrics, run_dir = quick_run("fashion-mnist", tmp_path, model="mlp")
    assert metrics["test_accuracy"] >= 0.5
    assert json.loads((run_dir / "checkpoint.json").read_text())["info"]["model"] == "mlp"


def _write_idx(path, array: np.ndarray) -> None:
    """IDX: 00 00, type byte 0x08 (uint8), dimension count, big-endian sizes, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_fashion_mnist_trains_on_idx_files(tmp_path):
    images, labels = synthetic.digit_images(1500, seed=5)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images[:1200])
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:1200])
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images[1200:])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[1200:])
    split = ImageSplit(
        read_idx(tmp_path / "train-images-idx3-ubyte.gz"),
        read_idx(tmp_path / "train-labels-idx1-ubyte.gz").astype(np.int64),
        read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"),
        read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
        FASHION_MNIST_CLASSES,
        "IDX files written by the test",
    )
    assert np.array_equal(split.train_images, images[:1200])
    data = from_split(split, color="L", seed=0, invert="auto")
    recipe = get_recipe("fashion-mnist")
    cfg = resolve_config(recipe, {"quick": True, "out": str(tmp_path), "device": "cpu"})
    ctx = RunContext(recipe=recipe, cfg=cfg, run_dir=tmp_path / "run")
    ctx.write_config()
    metrics = train_classifier(ctx, data, "cnn", augment=crop_and_flip(2, flip=False))
    assert metrics["test_accuracy"] >= 0.5
    _, meta = load_model(tmp_path / "run")
    assert meta["info"]["classes"] == FASHION_MNIST_CLASSES


def test_conv_filters_recipe_on_the_embedded_road(tmp_path):
    metrics, run_dir = quick_run("conv-filters", tmp_path)
    assert (run_dir / "plots" / "conv_relu_pool.png").is_file()
    assert set(metrics) == {
        "mean_response_vertical",
        "mean_response_vertical_negative",
        "mean_response_horizontal",
        "mean_response_horizontal_negative",
        "mean_response_Sobel_x",
        "mean_response_Sobel_y",
    }
    assert all(value > 0 for value in metrics.values())


def test_conv_filters_recipe_on_the_shared_road_photo(tmp_path, shared_data):
    metrics, run_dir = quick_run(
        "conv-filters", tmp_path, embedded=False, data_dir=str(shared_data)
    )
    assert metrics["mean_response_vertical"] > 0
    assert (run_dir / "plots" / "conv_relu_pool.png").is_file()
