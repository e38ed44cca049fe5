"""The recall task and the vanishing-gradients recipe: the classifier's gradients and the
per-step gradient norms against torch autograd, and the recipe through the command line."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from dlnd.cli import main
from dlnd.runs import read_metrics
from dlnd.scratch import LSTM, RNN
from dlnd.scratch.recall import (
    LastStepClassifier,
    clip_gradient_norm,
    hidden_state_gradient_norms,
    open_forget_gates,
    recall_batch,
)
from dlnd.scratch.recurrent_recipes import delay_list

TORCH_NAMES = {
    "W_ih": "weight_ih_l0",
    "W_hh": "weight_hh_l0",
    "b_ih": "bias_ih_l0",
    "b_hh": "bias_hh_l0",
}


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-300))


def torch_copy(model: LastStepClassifier) -> tuple[torch.nn.Module, torch.nn.Linear]:
    cell = model.cell
    layer_type = torch.nn.LSTM if isinstance(cell, LSTM) else torch.nn.RNN
    layer = layer_type(cell.input_size, cell.hidden_size, dtype=torch.float64)
    readout = torch.nn.Linear(cell.hidden_size, model.params["W_out"].shape[0], dtype=torch.float64)
    with torch.no_grad():
        for name, torch_name in TORCH_NAMES.items():
            getattr(layer, torch_name).copy_(torch.from_numpy(cell.params[name]))
        readout.weight.copy_(torch.from_numpy(model.params["W_out"]))
        readout.bias.copy_(torch.from_numpy(model.params["b_out"]))
    return layer, readout


def test_recall_batch_marks_the_symbol_to_recall():
    x, y = recall_batch(np.random.default_rng(0), batch_size=6, delay=4, symbols=3)
    assert x.shape == (5, 6, 4) and y.shape == (6,)
    assert np.array_equal(x[:, :, :3].sum(axis=2), np.ones((5, 6)))  # one symbol per step
    assert np.array_equal(x[:, :, 3], np.r_[[np.ones(6)], np.zeros((4, 6))])  # marker at t = 0
    assert np.array_equal(x[0, :, :3].argmax(axis=1), y)


@pytest.mark.parametrize("layer", [RNN, LSTM], ids=["RNN", "LSTM"])
def test_classifier_gradients_match_torch(layer):
    model = LastStepClassifier(layer(5, 6, seed=1), classes=4, seed=2)
    x, y = recall_batch(np.random.default_rng(3), batch_size=7, delay=5, symbols=4)
    loss, grads = model.loss_and_gradients(x, y)

    torch_layer, readout = torch_copy(model)
    outputs, _ = torch_layer(torch.from_numpy(x))
    reference = torch.nn.functional.cross_entropy(readout(outputs[-1]), torch.from_numpy(y))
    reference.backward()
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    assert grads.keys() == model.params.keys()
    for name, torch_name in TORCH_NAMES.items():
        assert relative_error(grads[name], getattr(torch_layer, torch_name).grad.numpy()) < 1e-8
    assert relative_error(grads["W_out"], readout.weight.grad.numpy()) < 1e-8
    assert relative_error(grads["b_out"], readout.bias.grad.numpy()) < 1e-8


@pytest.mark.parametrize("layer", [RNN, LSTM], ids=["RNN", "LSTM"])
def test_hidden_state_gradient_norms_match_torch(layer):
    model = LastStepClassifier(layer(5, 6, seed=4), classes=4, seed=5)
    x, y = recall_batch(np.random.default_rng(6), batch_size=3, delay=11, symbols=4)
    norms = hidden_state_gradient_norms(model, x, y)

    # torch, one step at a time, keeping the gradient of every hidden state h_0 .. h_T
    torch_layer, readout = torch_copy(model)
    h = torch.zeros(1, 3, 6, dtype=torch.float64, requires_grad=True)
    c = torch.zeros(1, 3, 6, dtype=torch.float64)
    hidden = [h]
    for t in range(len(x)):
        step = torch.from_numpy(x[t : t + 1])
        if layer is LSTM:
            _, (h, c) = torch_layer(step, (h, c))
        else:
            _, h = torch_layer(step, h)
        h.retain_grad()
        hidden.append(h)
    torch.nn.functional.cross_entropy(readout(h[0]), torch.from_numpy(y)).backward()
    reference = np.array([float(state.grad.norm()) for state in hidden])
    assert norms.shape == (len(x) + 1,)
    assert np.allclose(norms, reference, rtol=1e-9, atol=0)


def test_clip_gradient_norm():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert clip_gradient_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.allclose(grads["a"], [0.6, 0.0]) and np.allclose(grads["b"], [[0.8]])
    small = {"a": np.array([0.3, 0.4])}
    clip_gradient_norm(small, 1.0)
    assert np.array_equal(small["a"], [0.3, 0.4])


def test_open_forget_gates_moves_only_the_forget_rows():
    cell, reference = LSTM(3, 4, seed=0), LSTM(3, 4, seed=0)
    open_forget_gates(cell, 2.0)
    change = cell.params["b_ih"] - reference.params["b_ih"]
    assert np.allclose(change, np.r_[np.zeros(4), np.full(4, 2.0), np.zeros(8)])
    assert np.array_equal(cell.params["b_hh"], reference.params["b_hh"])


def test_delay_list():
    assert delay_list("20,5, 10,5") == (5, 10, 20)
    for bad in ("", "0,5", "five"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            delay_list(bad)


@pytest.mark.parametrize("seed", [0, 1])
def test_vanishing_gradients_recipe_shows_the_rnn_forgetting(tmp_path, monkeypatch, seed):
    monkeypatch.setenv("DLND_DATA", str(tmp_path / "no-data-here"))  # generated data only
    out = tmp_path / "runs"
    args = ["run", "vanishing-gradients", "--quick", "--embedded", "--seed", str(seed)]
    assert main([*args, "--out", str(out)]) == 0
    (run_dir,) = (out / "vanishing-gradients").iterdir()
    metrics = json.loads((run_dir / "final.json").read_text())["metrics"]
    assert {p.name for p in (run_dir / "plots").glob("*.png")} == {
        "gradient_norms.png",
        "recall_accuracy.png",
    }
    assert len(read_metrics(run_dir)) == 4  # one record per quick epoch
    # (a) at t = 0 the LSTM keeps a gradient many orders of magnitude larger than the RNN's
    assert metrics["rnn_log10_gradient_ratio"] < -15
    assert metrics["lstm_log10_gradient_ratio"] - metrics["rnn_log10_gradient_ratio"] > 10
    # (b) both learn the short delay; at the longest only the LSTM does better than chance
    assert metrics["rnn_accuracy_k5"] > 0.9 and metrics["lstm_accuracy_k5"] > 0.9
    assert metrics["lstm_accuracy_k40"] > 0.9
    assert metrics["rnn_accuracy_k40"] < 0.5


def test_vanishing_gradients_refuses_bad_settings(tmp_path, capsys):
    args = ["run", "vanishing-gradients", "--out", str(tmp_path), "--sequence-length", "0"]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    expected = "argument --sequence-length: expected a positive whole number, got '0'"
    assert expected in capsys.readouterr().err
    assert not list(tmp_path.glob("vanishing-gradients/*"))  # no run folder left behind
