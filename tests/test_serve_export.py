"""Export: ONNX and TorchScript reproduce the PyTorch model; the model card describes it."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from serve_fixtures import (
    DIGITS_INFO,
    mnist_test_images,
    save_tiny_run,
    tiny_exports,
    tiny_runs,
)

from dlnd.checkpoint import load_model
from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.serve.export import CARD_FILE, TOLERANCE, export_model
from dlnd.serve.exporting import export_run
from dlnd.serve.runtime import OnnxModel


@pytest.fixture
def runs(tmp_path_factory):
    return tiny_runs(tmp_path_factory)


@pytest.fixture
def exports(tmp_path_factory):
    return tiny_exports(tmp_path_factory)


def test_onnx_matches_pytorch_on_real_mnist_images(runs, exports, shared_data):
    """Max |ONNX - PyTorch| over the logits of 512 real test digits, in one batch and one
    by one (the batch dimension is free)."""
    images, _ = mnist_test_images(shared_data, 512)
    model, _ = load_model(runs["digits"])
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    onnx_model = OnnxModel(exports["digits"] / "model.onnx")
    assert np.abs(onnx_model(images) - expected).max() <= TOLERANCE
    singles = np.concatenate([onnx_model(images[i : i + 1]) for i in range(0, 512, 64)])
    assert np.abs(singles - expected[::64]).max() <= TOLERANCE


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_matches_pytorch_on_real_mnist_images(runs, shared_data, tmp_path):
    images, _ = mnist_test_images(shared_data, 256)
    out = export_run(runs["digits"], "torchscript", tmp_path / "ts")
    model, _ = load_model(runs["digits"])
    scripted = torch.jit.load(str(out / "model.torchscript.pt"))
    with torch.no_grad():
        x = torch.from_numpy(images)
        assert (scripted(x) - model(x)).abs().max().item() <= TOLERANCE
    assert json.loads((out / CARD_FILE).read_text())["format"] == "torchscript"


def test_model_card_describes_the_export(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["colour"], run_dir)
    final = {"metrics": {"test_accuracy": 0.75, "data": "read from /somewhere/data"}}
    (run_dir / "final.json").write_text(json.dumps(final))
    out = export_run(run_dir, "onnx")
    assert out == run_dir / "export-onnx"
    card = json.loads((out / CARD_FILE).read_text())
    model_bytes = (out / "model.onnx").read_bytes()
    assert card["task"] == "image-classification"
    assert card["name"] == card["recipe"] == "tiny-test-classifier"
    assert card["classes"] == ["cat", "dog", "ship"]
    assert card["input"]["channels"] == 3 and card["input"]["height"] == 32
    assert card["input"]["color"] == "RGB" and card["input"]["range"] == [0.0, 1.0]
    assert card["metrics"]["final"] == {"test_accuracy": 0.75}
    assert card["config"] == {"epochs": 1}  # no paths of the training machine
    assert card["dataset"] == "none"
    assert card["metrics"]["checkpoint"] == {"val_accuracy": 0.5}
    assert card["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert card["size_bytes"] == len(model_bytes)
    assert card["versions"]["export"]["torch"] == torch.__version__
    assert 0 <= card["verification"]["max_abs_diff_vs_pytorch"] <= TOLERANCE


def test_export_refuses_a_checkpoint_that_is_not_an_image_classifier(tmp_path):
    model = torch.nn.Linear(4, 2)
    meta = {"recipe": "tiny", "info": {"task": "regression"}}
    with pytest.raises(UserError, match="does not describe an image classifier"):
        export_model(model, meta, "onnx", tmp_path)


def test_export_refuses_an_unknown_format(runs, tmp_path):
    with pytest.raises(UserError, match="Unknown export format"):
        export_run(runs["digits"], "tflite", tmp_path)


def test_export_catches_a_model_that_does_not_match_its_export(tmp_path):
    """A model whose output depends on more than its input cannot be exported faithfully."""

    class Drifting(torch.nn.Module):
        calls = 0

        def forward(self, x):
            Drifting.calls += 1
            return x.flatten(1)[:, :10] + Drifting.calls

    meta = {"recipe": "drift", "info": DIGITS_INFO}
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        export_model(Drifting(), meta, "onnx", tmp_path)


def test_export_command_writes_the_model_and_card(tmp_path, capsys):
    run_dir = tmp_path / "run"
    save_tiny_run(run_dir, DIGITS_INFO, seed=3)
    assert main(["export", str(run_dir), "--out", str(tmp_path / "out"), "--name", "digits"]) == 0
    card = json.loads((tmp_path / "out" / CARD_FILE).read_text())
    assert card["name"] == "digits" and (tmp_path / "out" / "model.onnx").is_file()
    assert "Exported onnx model" in capsys.readouterr().out


def test_export_command_reports_a_missing_run_as_a_user_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "is not a run directory" in capsys.readouterr().err
