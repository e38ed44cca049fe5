"""Shared models of the serving tests: small image classifiers saved as real training runs.

The recipe ``tiny-test-classifier`` exists only in the tests; it builds the course CNN
with a few channels, so export and serving are exercised on the real model classes.
Weights are random but fixed (seeded); the checks compare exported and PyTorch outputs.
"""

from __future__ import annotations

import functools
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dlnd.checkpoint import load_model, save_model
from dlnd.data.readers import read_idx
from dlnd.recipes import Recipe, register
from dlnd.serve.export import export_model
from dlnd.vision.models import CourseCNN

DIGITS_INFO = {
    "task": "image-classification",
    "classes": [str(d) for d in range(10)],
    "input": {
        "channels": 1,
        "height": 28,
        "width": 28,
        "color": "L",
        "resize": "stretch",
        "invert": False,
        "mean": [0.1307],
        "std": [0.3081],
    },
    "model": "cnn",
}
COLOUR_INFO = {
    "task": "image-classification",
    "classes": ["cat", "dog", "ship"],
    "input": {
        "channels": 3,
        "height": 32,
        "width": 32,
        "color": "RGB",
        "resize": "center-crop",
        "invert": False,
        "mean": [0.49, 0.48, 0.45],
        "std": [0.25, 0.24, 0.26],
    },
    "model": "cnn",
}


def build_tiny(config: dict[str, Any], info: dict[str, Any]) -> torch.nn.Module:
    spec = info["input"]
    return CourseCNN(
        (spec["channels"], spec["height"], spec["width"]),
        len(info["classes"]),
        spec["mean"],
        spec["std"],
        widths=(4, 8),
        hidden_size=16,
    )


def _never_trained(ctx) -> dict[str, float]:
    raise NotImplementedError("tiny-test-classifier is only saved by the tests")


TINY_RECIPE = register(
    Recipe(
        name="tiny-test-classifier",
        summary="a tiny CNN for the serving tests",
        dataset="none",
        target="none",
        run=_never_trained,
        in_tour=False,
        build_model=build_tiny,
    )
)


def save_tiny_run(run_dir: Path, info: dict[str, Any], seed: int) -> torch.nn.Module:
    """A run folder holding a seeded tiny CNN, as the trainer would have saved it."""
    torch.manual_seed(seed)
    model = build_tiny({}, info).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    meta = {
        "recipe": TINY_RECIPE.name,
        "config": {"epochs": 1, "data_dir": "/somewhere/data"},
        "info": info,
        "epoch": 1,
        "metrics": {"val_accuracy": 0.5},
        "versions": {"torch": torch.__version__},
    }
    save_model(run_dir, model.state_dict(), meta)
    return model


def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two saved runs: ``digits`` (1x28x28, 10 classes) and ``colour`` (3x32x32, 3 classes);
    made once per test session."""
    return _tiny_runs(tmp_path_factory.getbasetemp())


def tiny_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two tiny runs exported to ONNX as models ``tiny-digits`` and ``tiny-colour``."""
    return _tiny_exports(tmp_path_factory.getbasetemp())


@functools.cache
def _tiny_runs(session_dir: Path) -> dict[str, Path]:
    runs = {
        "digits": session_dir / "tiny-runs" / "digits",
        "colour": session_dir / "tiny-runs" / "colour",
    }
    save_tiny_run(runs["digits"], DIGITS_INFO, seed=0)
    save_tiny_run(runs["colour"], COLOUR_INFO, seed=1)
    return runs


@functools.cache
def _tiny_exports(session_dir: Path) -> dict[str, Path]:
    exports = {}
    for key, run_dir in _tiny_runs(session_dir).items():
        model, meta = load_model(run_dir)
        exports[key] = session_dir / "tiny-exports" / key
        export_model(model, meta, "onnx", exports[key], name=f"tiny-{key}")
    return exports


def mnist_test_images(data_root: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` real MNIST test images as model input ``(count, 1, 28, 28)``
    float32 in [0, 1], with their labels ``(count,)``."""
    images = read_idx(data_root / "mnist" / "t10k-images-idx3-ubyte.gz")[:count]
    labels = read_idx(data_root / "mnist" / "t10k-labels-idx1-ubyte.gz")[:count]
    return (images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)


def cifar_test_jpegs(data_root: Path, per_class: int) -> list[tuple[str, bytes]]:
    """``per_class`` real CIFAR-10 test JPEGs of each class: ``[(class_name, jpeg_bytes)]``.

    The test images come first in the archive, so only its start is read.
    """
    wanted: dict[str, int] = {}
    found = []
    with tarfile.open(data_root / "cifar10" / "cifar10-jpg.tar.gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) != 4 or parts[1] != "test" or not member.isfile():
                if found and parts[1:2] == ["train"]:
                    break
                continue
            if wanted.get(parts[2], 0) < per_class:
                wanted[parts[2]] = wanted.get(parts[2], 0) + 1
                found.append((parts[2], archive.extractfile(member).read()))
    return found


def tabular_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Quick runs of the NumPy recipes on generated data: ``bike`` (bike-sharing, a
    regression) and ``admissions`` (logistic regression); made once per test session."""
    return _tabular_runs(tmp_path_factory.getbasetemp())


def tabular_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two tabular runs exported to ONNX (models ``bike-sharing`` and ``admissions``)."""
    return _tabular_exports(tmp_path_factory.getbasetemp())


@functools.cache
def _tabular_runs(session_dir: Path) -> dict[str, Path]:
    from dlnd import run_recipe

    out = session_dir / "tabular-runs"
    return {
        key: Path(run_recipe(recipe, quick=True, embedded=True, out=str(out))["run_dir"])
        for key, recipe in (("bike", "bike-sharing"), ("admissions", "admissions"))
    }


@functools.cache
def _tabular_exports(session_dir: Path) -> dict[str, Path]:
    from dlnd.serve.tabular_export import export_numpy_run

    return {
        key: export_numpy_run(run_dir, session_dir / "tabular-exports" / key)
        for key, run_dir in _tabular_runs(session_dir).items()
    }


TEXT_RECIPES = {
    "chars": ("char-rnn", {}),
    "words": ("tv-script", {"epochs": 1}),  # a word model with an adaptive softmax
    "reviews": ("sentiment-rnn", {}),  # a bidirectional LSTM
}


def text_run(tmp_path_factory: pytest.TempPathFactory, key: str) -> Path:
    """A quick run on embedded data of the text recipe ``TEXT_RECIPES[key]``; made once per
    test session."""
    return _text_run(tmp_path_factory.getbasetemp(), key)


def text_export(tmp_path_factory: pytest.TempPathFactory, key: str) -> Path:
    """That run exported to ONNX, served under its recipe's name."""
    return _text_export(tmp_path_factory.getbasetemp(), key)


@functools.cache
def _text_run(session_dir: Path, key: str) -> Path:
    from dlnd import run_recipe

    recipe, flags = TEXT_RECIPES[key]
    out = session_dir / "text-runs"
    return Path(run_recipe(recipe, quick=True, embedded=True, out=str(out), **flags)["run_dir"])


@functools.cache
def _text_export(session_dir: Path, key: str) -> Path:
    from dlnd.serve.exporting import export_run

    return export_run(_text_run(session_dir, key), "onnx", session_dir / "text-exports" / key)
