"""dlnd.scratch.RNN and LSTM against torch.nn.RNN / nn.LSTM autograd and finite differences.

The reference is the torch layer holding the same weights (the layouts are the same), run in
float64; the loss is a random weighting of the outputs and the final state, so every output
and every state receives a gradient (d_outputs and d_state).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.scratch import LSTM, RNN, gradcheck

TORCH_LAYERS = {RNN: torch.nn.RNN, LSTM: torch.nn.LSTM}
TORCH_NAMES = {
    "W_ih": "weight_ih_l0",
    "W_hh": "weight_hh_l0",
    "b_ih": "bias_ih_l0",
    "b_hh": "bias_hh_l0",
}


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-300))


def torch_layer(cell: RNN | LSTM) -> torch.nn.Module:
    """The torch layer with ``cell``'s parameters copied in."""
    layer = TORCH_LAYERS[type(cell)](cell.input_size, cell.hidden_size, dtype=torch.float64)
    with torch.no_grad():
        for name, torch_name in TORCH_NAMES.items():
            getattr(layer, torch_name).copy_(torch.from_numpy(cell.params[name]))
    return layer


def random_problem(cell: RNN | LSTM, steps: int, batch: int, with_state: bool, seed: int):
    """An input sequence, an initial state (list of (N, H) arrays, or None) and the weights
    of the loss: d_outputs (T, N, H) and d_state (one (N, H) array per state part)."""
    rng = np.random.default_rng(seed)
    parts = 2 if isinstance(cell, LSTM) else 1
    shape = (batch, cell.hidden_size)
    x = rng.normal(size=(steps, batch, cell.input_size))
    state = [rng.normal(size=shape) for _ in range(parts)] if with_state else None
    d_outputs = rng.normal(size=(steps, batch, cell.hidden_size))
    d_state = [rng.normal(size=shape) for _ in range(parts)]
    return x, state, d_outputs, d_state


def as_state(cell: RNN | LSTM, parts: list[np.ndarray] | None):
    """Our API's form of a state: h for the RNN, (h, c) for the LSTM."""
    if parts is None:
        return None
    return tuple(parts) if isinstance(cell, LSTM) else parts[0]


def torch_reference(cell, x, state, d_outputs, d_state):
    """Outputs, final state parts and gradients (keyed as ours) from torch autograd."""
    layer = torch_layer(cell)
    x_t = torch.tensor(x, requires_grad=True)
    parts = state or [np.zeros((x.shape[1], cell.hidden_size))] * len(d_state)
    state_t = [torch.tensor(p[None], requires_grad=True) for p in parts]  # (1, N, H)
    outputs, final = layer(x_t, state_t[0] if isinstance(cell, RNN) else tuple(state_t))
    finals = [final] if isinstance(cell, RNN) else list(final)
    loss = (outputs * torch.from_numpy(d_outputs)).sum()
    loss = loss + sum((f[0] * torch.from_numpy(d)).sum() for f, d in zip(finals, d_state))
    loss.backward()
    grads = {
        name: getattr(layer, torch_name).grad.numpy() for name, torch_name in TORCH_NAMES.items()
    }
    grads["x"] = x_t.grad.numpy()
    for key, tensor in zip(("h0", "c0"), state_t):
        grads[key] = tensor.grad.numpy()[0]
    return outputs.detach().numpy(), [f.detach().numpy()[0] for f in finals], grads


def assert_matches_torch(cell, steps, batch, with_state, with_d_state, seed):
    x, state, d_outputs, d_state = random_problem(cell, steps, batch, with_state, seed)
    if not with_d_state:
        d_state = [np.zeros_like(d) for d in d_state]
    outputs, final = cell.forward(x, as_state(cell, state))
    grads = cell.backward(d_outputs, as_state(cell, d_state) if with_d_state else None)
    ref_outputs, ref_finals, ref_grads = torch_reference(cell, x, state, d_outputs, d_state)

    assert relative_error(outputs, ref_outputs) <= 1e-6
    finals = final if isinstance(cell, LSTM) else (final,)
    for ours, reference in zip(finals, ref_finals, strict=True):
        assert relative_error(ours, reference) <= 1e-6
    assert grads.keys() == ref_grads.keys()
    for name, reference in ref_grads.items():
        assert grads[name].shape == reference.shape, name
        assert relative_error(grads[name], reference) <= 1e-6, name


@pytest.mark.parametrize("with_d_state", [False, True], ids=["no-d_state", "d_state"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "state"])
@pytest.mark.parametrize("layer", [RNN, LSTM], ids=["RNN", "LSTM"])
def test_matches_torch(layer, with_state, with_d_state):
    cell = layer(input_size=3, hidden_size=5, seed=1)
    assert_matches_torch(
        cell, steps=7, batch=4, with_state=with_state, with_d_state=with_d_state, seed=2
    )


@settings(max_examples=40, deadline=None)
@given(
    layer=st.sampled_from([RNN, LSTM]),
    steps=st.integers(1, 8),
    batch=st.integers(1, 5),
    input_size=st.integers(1, 6),
    hidden_size=st.integers(1, 7),
    with_state=st.booleans(),
    with_d_state=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_torch_for_random_shapes(
    layer, steps, batch, input_size, hidden_size, with_state, with_d_state, seed
):
    cell = layer(input_size, hidden_size, seed=seed)
    assert_matches_torch(cell, steps, batch, with_state, with_d_state, seed + 1)


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "state"])
@pytest.mark.parametrize("layer", [RNN, LSTM], ids=["RNN", "LSTM"])
def test_gradients_match_finite_differences(layer, with_state):
    cell = layer(input_size=3, hidden_size=4, seed=3, dtype=np.float32)
    x, state, _, _ = random_problem(cell, steps=6, batch=2, with_state=with_state, seed=4)
    errors = gradcheck(cell, x, state=as_state(cell, state))
    expected = {*cell.params, "x", "h0"} | ({"c0"} if layer is LSTM else set())
    assert set(errors) == expected
    assert max(errors.values()) < 1e-6
    assert cell.params["W_hh"].dtype == np.float32  # gradcheck restored the float32 parameters


def test_gradcheck_catches_a_wrong_recurrent_gradient():
    class Broken(LSTM):
        def backward(self, d_outputs, d_state=None):
            grads = super().backward(d_outputs, d_state)
            grads["W_hh"][:, 0] *= 1.05  # a 5% error in one column
            return grads

    x = np.random.default_rng(0).normal(size=(4, 2, 3))
    errors = gradcheck(Broken(3, 4, seed=0), x)
    assert errors["W_hh"] > 1e-3
    assert errors["W_ih"] < 1e-6


@pytest.mark.parametrize("layer", [RNN, LSTM], ids=["RNN", "LSTM"])
def test_parameters_are_laid_out_and_initialised_like_torch(layer):
    gates = 4 if layer is LSTM else 1
    cell = layer(input_size=6, hidden_size=50, seed=0)
    shapes = {name: p.shape for name, p in cell.params.items()}
    assert shapes == {
        "W_ih": (gates * 50, 6),
        "W_hh": (gates * 50, 50),
        "b_ih": (gates * 50,),
        "b_hh": (gates * 50,),
    }
    values = np.concatenate([p.ravel() for p in cell.params.values()])
    bound = 1 / np.sqrt(50)  # torch: U(-1/sqrt(H), 1/sqrt(H))
    assert values.dtype == np.float64
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.95 * bound
    assert abs(values.mean()) < 0.01 and values.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
    same, other = layer(6, 50, seed=0), layer(6, 50, seed=1)
    assert all(np.array_equal(same.params[k], cell.params[k]) for k in cell.params)
    assert not np.array_equal(other.params["W_hh"], cell.params["W_hh"])


@pytest.mark.parametrize("layer", [RNN, LSTM], ids=["RNN", "LSTM"])
def test_float32_agrees_with_float64(layer):
    cell64 = layer(4, 6, seed=5)
    cell32 = layer(4, 6, seed=5, dtype=np.float32)
    x, _, d_outputs, _ = random_problem(cell64, steps=10, batch=3, with_state=False, seed=6)
    outputs32, _ = cell32.forward(x)
    outputs64, _ = cell64.forward(x)
    grads32, grads64 = cell32.backward(d_outputs), cell64.backward(d_outputs)
    assert outputs32.dtype == np.float32
    assert relative_error(outputs32.astype(np.float64), outputs64) < 1e-5
    for name, grad in grads64.items():
        assert grads32[name].dtype == np.float32, name
        assert relative_error(grads32[name].astype(np.float64), grad) < 1e-4, name


@pytest.mark.parametrize("layer", [RNN, LSTM], ids=["RNN", "LSTM"])
def test_forward_returns_copies(layer):
    cell = layer(2, 3, seed=0)
    x = np.ones((4, 1, 2))
    outputs, _ = cell.forward(x)
    outputs[:] = 0.0  # must not change what backward uses
    grads = cell.backward(np.ones((4, 1, 3)))
    cell.forward(x)
    assert np.array_equal(grads["W_hh"], cell.backward(np.ones((4, 1, 3)))["W_hh"])


def message(error: pytest.ExceptionInfo) -> str:
    return str(error.value)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda c: c.forward(np.zeros((5, 3))), "x must have shape (T, N, 3)"),
        (lambda c: c.forward(np.zeros((5, 2, 4))), "got (5, 2, 4)"),
        (
            lambda c: c.forward(np.zeros((5, 2, 3)), np.zeros((2, 5))),
            "state must have shape (2, 4), got (2, 5)",
        ),
        (lambda c: c.backward(np.zeros((5, 2, 4))), "call forward(x) before"),
    ],
    ids=["2-D x", "wrong features", "wrong state", "backward first"],
)
def test_bad_shapes_are_named(call, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        call(RNN(3, 4))


def test_bad_lstm_states_and_gradients_are_named():
    cell = LSTM(3, 4)
    x = np.zeros((5, 2, 3))
    with pytest.raises(
        ValueError, match=re.escape("(h_0, c_0) must be a pair of arrays of shape (2, 4)")
    ):
        cell.forward(x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=re.escape("c_0 must have shape (2, 4), got (1, 4)")):
        cell.forward(x, (np.zeros((2, 4)), np.zeros((1, 4))))
    cell.forward(x)
    with pytest.raises(
        ValueError, match=re.escape("d_outputs must have shape (5, 2, 4), got (4, 2, 4)")
    ):
        cell.backward(np.zeros((4, 2, 4)))
    with pytest.raises(ValueError, match=re.escape("dL/dc_T must have shape (2, 4), got (2, 3)")):
        cell.backward(np.zeros((5, 2, 4)), (np.zeros((2, 4)), np.zeros((2, 3))))
    with pytest.raises(ValueError, match="must be positive"):
        LSTM(0, 4)
