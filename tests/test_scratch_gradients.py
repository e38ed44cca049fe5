"""Back-propagation of dlnd.scratch.MLP against PyTorch autograd and finite differences.

The reference is an equivalent ``torch.nn`` model (Linear layers holding the same weights,
torch's own activations and losses), differentiated by autograd in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.scratch import MLP, gradcheck

ACTIVATIONS = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}
PENALTIES = {"none": (0.0, 0.0), "l1": (0.03, 0.0), "l2": (0.0, 0.05), "l1+l2": (0.02, 0.04)}


def torch_model(net: MLP) -> torch.nn.Sequential:
    """torch layers with the parameters of ``net`` (nn.Linear stores W transposed)."""
    layers: list[torch.nn.Module] = []
    for i in range(1, net.n_layers + 1):
        linear = torch.nn.Linear(net.sizes[i - 1], net.sizes[i], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(net.params[f"W{i}"].T.copy()))
            linear.bias.copy_(torch.from_numpy(net.params[f"b{i}"]))
        layers.append(linear)
        if i < net.n_layers:
            layers.append(ACTIVATIONS[net.activation]())
    return torch.nn.Sequential(*layers)


def torch_loss(net: MLP, model: torch.nn.Sequential, X: np.ndarray, y: np.ndarray) -> torch.Tensor:
    logits = model(torch.from_numpy(X))
    if net.output == "softmax":
        data = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    elif net.output == "sigmoid":
        data = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y))
    else:
        data = torch.nn.functional.mse_loss(logits, torch.from_numpy(y))
    weights = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    return (
        data
        + net.l1 * sum(w.abs().sum() for w in weights)
        + net.l2 * sum((w**2).sum() for w in weights)
    )


def torch_gradients(net: MLP, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    model = torch_model(net)
    loss = torch_loss(net, model, X, y)
    loss.backward()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    grads = {}
    for i, linear in enumerate(linears, start=1):
        grads[f"W{i}"] = linear.weight.grad.numpy().T
        grads[f"b{i}"] = linear.bias.grad.numpy()
    return float(loss.detach()), grads


def problem(sizes: list[int], output: str, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, sizes[0]))
    if output == "softmax":
        y = rng.integers(0, sizes[-1], rows)
    elif output == "sigmoid":
        y = (rng.random((rows, sizes[-1])) < 0.5).astype(np.float64)
    else:
        y = rng.normal(size=(rows, sizes[-1]))
    return X, y


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / max(np.linalg.norm(reference), 1e-300))


def assert_matches_torch(net: MLP, X: np.ndarray, y: np.ndarray) -> None:
    reference_loss, reference = torch_gradients(net, X, y)
    ours = net.gradients(X, y)
    assert ours.keys() == reference.keys()
    for name in reference:
        assert ours[name].shape == net.params[name].shape
        assert relative_error(ours[name], reference[name]) <= 1e-6, name
    assert net.loss(X, y) == pytest.approx(reference_loss, rel=1e-10)


@pytest.mark.parametrize(
    "hidden", [[], [7], [6, 5], [5, 4, 3]], ids=["depth1", "depth2", "depth3", "depth4"]
)
@pytest.mark.parametrize("penalty", sorted(PENALTIES))
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "linear"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradients_match_torch_autograd(activation, output, penalty, hidden):
    l1, l2 = PENALTIES[penalty]
    sizes = [4, *hidden, 3]
    net = MLP(sizes, activation=activation, output=output, l1=l1, l2=l2, seed=1, dtype=np.float64)
    X, y = problem(sizes, output, rows=9, seed=2)
    assert_matches_torch(net, X, y)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    rows=st.integers(1, 12),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    output=st.sampled_from(["softmax", "sigmoid", "linear"]),
    l1=st.sampled_from([0.0, 0.01]),
    l2=st.sampled_from([0.0, 0.02]),
    seed=st.integers(0, 2**16),
)
def test_gradients_match_torch_for_random_shapes(sizes, rows, activation, output, l1, l2, seed):
    if output == "softmax" and sizes[-1] < 2:
        sizes = [*sizes[:-1], 2]
    net = MLP(
        sizes, activation=activation, output=output, l1=l1, l2=l2, seed=seed, dtype=np.float64
    )
    X, y = problem(sizes, output, rows, seed + 1)
    assert_matches_torch(net, X, y)


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "linear"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradients_match_finite_differences(activation, output):
    sizes = [3, 5, 4, 2]
    net = MLP(sizes, activation=activation, output=output, l1=0.01, l2=0.02, seed=3)
    X, y = problem(sizes, output, rows=6, seed=4)
    errors = gradcheck(net, X, y)
    assert set(errors) == set(net.params)
    assert max(errors.values()) < 1e-6
    assert net.params["W1"].dtype == np.float32  # gradcheck restored the float32 parameters


def test_gradcheck_catches_a_wrong_gradient():
    class Broken(MLP):
        def gradients(self, X, y):
            grads = super().gradients(X, y)
            grads["W1"] *= 1.05  # a 5% error in one layer
            return grads

    sizes = [3, 4, 2]
    X, y = problem(sizes, "softmax", rows=5, seed=0)
    errors = gradcheck(Broken(sizes, seed=0), X, y)
    assert errors["W1"] > 1e-3
    assert errors["W2"] < 1e-6


def test_float32_gradients_agree_with_float64():
    sizes = [10, 16, 4]
    X, y = problem(sizes, "softmax", rows=32, seed=5)
    net32 = MLP(sizes, seed=6)
    net64 = MLP(sizes, seed=6, dtype=np.float64)
    grads32, grads64 = net32.gradients(X, y), net64.gradients(X, y)
    for name in grads64:
        assert grads32[name].dtype == np.float32
        assert relative_error(grads32[name].astype(np.float64), grads64[name]) < 1e-5
