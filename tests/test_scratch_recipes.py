"""The from-scratch recipes through the real command line: embedded quick runs (as in the
tour) and full runs on the shared data sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from dlnd.cli import main
from dlnd.runs import read_metrics

RECIPES = [
    "perceptron",
    "gradient-descent",
    "admissions",
    "bike-sharing",
    "regularization",
    "gd-variants",
]


def run_recipe(tmp_path: Path, name: str, *flags: str) -> tuple[Path, dict]:
    out = tmp_path / "runs"
    assert main(["run", name, "--out", str(out), *flags]) == 0
    (run_dir,) = (out / name).iterdir()
    return run_dir, json.loads((run_dir / "final.json").read_text())["metrics"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_runs_on_embedded_data(tmp_path, monkeypatch, name):
    monkeypatch.setenv("DLND_DATA", str(tmp_path / "no-data-here"))  # embedded must not look
    run_dir, metrics = run_recipe(tmp_path, name, "--quick", "--embedded")
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert read_metrics(run_dir), "no per-epoch metrics were logged"
    assert list((run_dir / "plots").glob("*.png"))
    if name != "regularization" and name != "gd-variants":
        assert load_file(str(run_dir / "model.safetensors"))


def test_embedded_regularization_shrinks_the_gap(tmp_path):
    _, metrics = run_recipe(tmp_path, "regularization", "--quick", "--embedded")
    assert metrics["none_train_accuracy"] > 0.95  # the baseline overfits visibly
    for setting in ("l2", "l1", "dropout", "early-stopping"):
        assert metrics[f"{setting}_gap"] < 0.9 * metrics["none_gap"], setting


def test_perceptron_and_gradient_descent_on_the_lesson_data(tmp_path, shared_data):
    _, perceptron = run_recipe(tmp_path / "p", "perceptron", "--data-dir", str(shared_data))
    assert perceptron["accuracy"] >= 0.9
    _, logistic = run_recipe(tmp_path / "g", "gradient-descent", "--data-dir", str(shared_data))
    assert logistic["train_loss"] < 0.25 and logistic["train_accuracy"] >= 0.9


def test_admissions_held_out_accuracy(tmp_path, shared_data):
    _, metrics = run_recipe(tmp_path, "admissions", "--data-dir", str(shared_data))
    assert metrics["test_accuracy"] >= 0.6


def test_bike_sharing_meets_the_project_rubric(tmp_path, shared_data):
    run_dir, metrics = run_recipe(tmp_path, "bike-sharing", "--data-dir", str(shared_data))
    assert metrics["train_mse"] < 0.09
    assert metrics["val_mse"] < 0.18
    assert (run_dir / "plots" / "predictions.png").exists()


@pytest.mark.slow
def test_regularization_shrinks_the_gap_on_mnist(tmp_path, shared_data):
    _, metrics = run_recipe(
        tmp_path,
        "regularization",
        "--data-dir",
        str(shared_data),
        "--train-size",
        "1000",
        "--epochs",
        "25",
        "--hidden-size",
        "128",
    )
    assert metrics["none_train_accuracy"] > 0.99
    for setting in ("l2", "l1", "dropout", "early-stopping"):
        assert metrics[f"{setting}_gap"] < 0.95 * metrics["none_gap"], setting
