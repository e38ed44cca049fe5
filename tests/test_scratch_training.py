"""Training techniques of dlnd.scratch: optimizers, GD variants, dropout, early stopping,
the perceptron and logistic regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlnd.errors import TrainingDiverged
from dlnd.scratch import MLP, LogisticRegression, Perceptron
from dlnd.scratch.optimizers import make_optimizer
from dlnd.scratch.synthetic import two_blobs


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizer_steps_match_torch_optim(name):
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    reference = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    lr = 0.05
    ours = make_optimizer(name, params, lr)
    theirs = {
        "sgd": lambda p: torch.optim.SGD(p, lr=lr),
        "momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=lr),
    }[name](list(reference.values()))
    for _ in range(5):
        grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
        for k, tensor in reference.items():
            tensor.grad = torch.from_numpy(grads[k].copy())
        ours.step(params, grads)
        theirs.step()
    for k in params:
        np.testing.assert_allclose(params[k], reference[k].detach().numpy(), rtol=1e-12, atol=1e-14)


def least_squares_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X @ rng.normal(size=5) + 0.5 + 0.1 * rng.normal(size=200)
    design = np.hstack([X, np.ones((200, 1))])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    optimal_loss = float(np.mean((design @ solution - y) ** 2))
    return X, y[:, None], optimal_loss


@pytest.mark.parametrize(
    ("batch_size", "optimizer", "lr", "tolerance"),
    [
        (None, "sgd", 0.3, 1e-8),
        (None, "momentum", 0.1, 1e-8),
        (None, "adam", 0.05, 1e-5),
        (20, "sgd", 0.05, 2e-3),
        (20, "adam", 0.01, 2e-3),
        (1, "sgd", 0.005, 5e-3),
    ],
    ids=[
        "batch-sgd",
        "batch-momentum",
        "batch-adam",
        "minibatch-sgd",
        "minibatch-adam",
        "stochastic",
    ],
)
def test_each_gradient_descent_variant_converges_on_least_squares(
    batch_size, optimizer, lr, tolerance
):
    """A linear network with MSE is convex; its minimum is the least-squares solution."""
    X, y, optimal_loss = least_squares_problem()
    net = MLP([5, 1], output="linear", seed=0, dtype=np.float64)
    history = net.fit(
        X,
        y,
        epochs=300 if batch_size is None else 60,
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
    )
    assert net.loss(X, y) - optimal_loss < tolerance * max(optimal_loss, 1)
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_dropout_is_inverted_so_the_expected_activation_is_unchanged():
    """With one hidden layer and a linear output, E[output] = E[a] W + b = h W + b."""
    X = np.random.default_rng(0).normal(size=(3, 6))
    net = MLP([6, 400, 2], output="linear", dropout=0.5, seed=0, dtype=np.float64)
    evaluation = net.forward(X)
    draws = np.mean([net.forward(X, train=True) for _ in range(4000)], axis=0)
    assert not np.allclose(net.forward(X, train=True), evaluation)  # masks are drawn in training
    np.testing.assert_allclose(draws, evaluation, atol=0.04 * np.abs(evaluation).max())
    np.testing.assert_array_equal(net.forward(X), evaluation)  # evaluation is deterministic


def test_dropout_masks_drop_the_requested_fraction():
    net = MLP([3, 1000, 1], activation="relu", output="linear", dropout=0.3, seed=0)
    X = np.abs(np.random.default_rng(1).normal(size=(50, 3)))
    net.params["W1"][...] = np.abs(net.params["W1"]) + 0.1  # every hidden unit fires
    trace = net._forward(X.astype(np.float32), train=True)
    kept = trace.kept[0]
    assert np.mean(kept == 0) == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(kept[kept != 0], (trace.hidden[0] / 0.7)[kept != 0], rtol=1e-6)


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(0)
    X, X_val = rng.normal(size=(40, 10)), rng.normal(size=(40, 10))
    y, y_val = rng.integers(0, 3, 40), rng.integers(0, 3, 40)  # random labels: pure overfitting
    net = MLP([10, 64, 3], seed=0, dtype=np.float64)
    snapshots = {}
    history = net.fit(
        X,
        y,
        epochs=200,
        lr=0.5,
        X_val=X_val,
        y_val=y_val,
        early_stopping=5,
        on_epoch=lambda row: snapshots.update(
            {row["epoch"]: {k: v.copy() for k, v in net.params.items()}}
        ),
    )
    val_losses = history["val_loss"]
    assert len(val_losses) < 200  # it stopped
    assert history.best_epoch == int(np.argmin(val_losses)) + 1
    assert len(val_losses) == history.best_epoch + 5
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, snapshots[history.best_epoch][name])
    assert net.evaluate(X_val, y_val)["loss"] == pytest.approx(min(val_losses))


def test_penalties_shrink_the_weights():
    X, y = two_blobs(100, seed=1)
    norms = {}
    for name, kwargs in {"none": {}, "l2": {"l2": 0.05}, "l1": {"l1": 0.01}}.items():
        net = MLP([2, 16, 2], seed=0, **kwargs)
        net.fit(X, y, epochs=200, lr=0.2)
        norms[name] = float(np.abs(net.params["W1"]).sum() + np.abs(net.params["W2"]).sum())
    assert norms["l2"] < 0.8 * norms["none"]
    assert norms["l1"] < 0.8 * norms["none"]


def test_mlp_learns_a_nonlinear_problem():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(400, 2))
    y = ((X[:, 0] * X[:, 1]) > 0).astype(np.int64)  # XOR of the signs: no line separates it
    net = MLP([2, 32, 2], activation="tanh", seed=0)
    net.fit(X, y, epochs=150, lr=0.01, batch_size=32, optimizer="adam")
    assert np.mean(net.predict(X) == y) > 0.95


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sizes": [3]}, "at least two"),
        ({"sizes": [3, 2], "activation": "gelu"}, "activation"),
        ({"sizes": [3, 2], "output": "tanh"}, "output"),
        ({"sizes": [3, 2], "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_configuration_is_rejected_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)


def test_bad_inputs_are_rejected_with_a_clear_message():
    net = MLP([3, 4, 2])
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        net.forward(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="integer class labels"):
        net.gradients(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="labels must lie"):
        net.loss(np.zeros((2, 3)), np.array([0, 2]))
    with pytest.raises(ValueError, match="validation set"):
        net.fit(np.zeros((2, 3)), np.array([0, 1]), early_stopping=3)


def test_perceptron_separates_linearly_separable_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    X = X[np.abs(X @ [1.0, -2.0] + 0.3) > 0.1]  # a margin around the line x1 - 2 x2 + 0.3 = 0
    y = (X @ [1.0, -2.0] + 0.3 > 0).astype(np.int64)
    model = Perceptron(2, seed=0)
    history = model.fit(X, y, epochs=100, lr=0.1)
    assert history[-1]["errors"] == 0
    assert model.errors(X, y) == 0
    assert len(model.trajectory) == len(history)


def test_perceptron_trick_moves_the_line_towards_a_misclassified_point():
    model = Perceptron(2)
    model.weights[...] = [1.0, 1.0]
    model.bias = -3.0
    point = np.array([[1.0, 1.0]])  # w . x + b = -1 < 0, predicted 0 but labelled 1
    model.fit(point, np.array([1]), epochs=1, lr=0.5)
    np.testing.assert_allclose(model.weights, [1.5, 1.5])
    assert model.bias == pytest.approx(-2.5)


def test_logistic_regression_matches_torch_on_the_same_steps():
    X, y = two_blobs(50, seed=0)
    model = LogisticRegression(2, seed=0)
    w = torch.tensor(model.weights.copy(), requires_grad=True)
    b = torch.tensor(model.bias, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([w, b], lr=0.5)
    for _ in range(20):
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(
            torch.from_numpy(X) @ w + b, torch.from_numpy(y.astype(np.float64))
        ).backward()
        optimizer.step()
    model.fit(X, y, epochs=20, lr=0.5)
    np.testing.assert_allclose(model.weights, w.detach().numpy(), rtol=1e-10)
    assert model.bias == pytest.approx(float(b.detach()), rel=1e-10)
    assert np.mean(model.predict(X) == y) > 0.9
    assert model.predict_proba(X).shape == (100,)


def test_a_diverging_run_stops_with_a_clear_error():
    X, y = two_blobs(50)
    net = MLP([2, 8, 1], output="linear", seed=0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        net.fit(X, y.astype(np.float64) * 1e3, epochs=50, lr=10.0)
