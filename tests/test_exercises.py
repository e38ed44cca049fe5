"""Exercises with checks: a correct solution passes, typical mistakes get the hint that names
them, and the references the checks compare against are right (against PyTorch).

Every registered exercise must appear in SOLUTIONS and MISTAKES below, so a new check
cannot be added without showing that it accepts a right answer and explains wrong ones.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dlnd.exercises import (
    check_backprop_step,
    check_cross_entropy,
    check_gram_matrix,
    check_lstm_cell,
    check_one_hot,
    check_softmax,
    check_token_lookup,
    exercises,
)
from dlnd.exercises.core import compare
from dlnd.exercises.networks import gram_matrix_reference, lstm_cell_reference
from dlnd.exercises.scratch import backprop_step_reference
from dlnd.pretrained.style import gram_matrix as style_gram_matrix
from dlnd.scratch.losses import one_hot

# --- solutions as a learner would write them (not the library's code) --------------------


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def softmax_unstable(logits):
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def one_hot_loop(labels, n_classes):
    flat = labels.reshape(-1)
    encoded = np.zeros((flat.size, n_classes), dtype=np.float32)
    for row, label in enumerate(flat):
        encoded[row, label] = 1.0
    return encoded.reshape(*labels.shape, n_classes)


def cross_entropy(logits, labels):
    top = logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(log_sum - logits[np.arange(len(labels)), labels]))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def backprop_step(params, X, y, lr, sign=1.0, mean=True, hidden_derivative=True):
    """The course's backpropagation, written out; the keywords make typical mistakes."""
    h = sigmoid(X @ params["W1"] + params["b1"])
    p = softmax(h @ params["W2"] + params["b2"])
    delta2 = p.copy()
    delta2[np.arange(len(y)), y] -= 1
    if mean:
        delta2 /= len(y)
    delta1 = delta2 @ params["W2"].T
    if hidden_derivative:
        delta1 *= h * (1 - h)
    grads = {"W2": h.T @ delta2, "b2": delta2.sum(0), "W1": X.T @ delta1, "b1": delta1.sum(0)}
    return {name: params[name] - sign * lr * grads[name] for name in params}


def backprop_step_in_place(params, X, y, lr):
    for name, value in backprop_step(params, X, y, lr).items():
        params[name][...] = value
    return params


def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh, order=(0, 1, 2, 3), swap=False, use_tanh=True):
    """The course's four gates, written out; the keywords make typical mistakes."""
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    blocks = np.split(z, 4, axis=1)
    learn, forget, candidate, use = (blocks[k] for k in order)
    c_new = sigmoid(forget) * c + sigmoid(learn) * (
        np.tanh(candidate) if use_tanh else sigmoid(candidate)
    )
    h_new = sigmoid(use) * np.tanh(c_new)
    return (c_new, h_new) if swap else (h_new, c_new)


def token_lookup():
    names = [
        "period",
        "comma",
        "quote",
        "semicolon",
        "bang",
        "question",
        "lparen",
        "rparen",
        "dash",
        "newline",
    ]
    return {mark: f"<{name}>" for mark, name in zip('.,";!?()-\n', names, strict=True)}


def gram_matrix(features):
    flat = features.reshape(features.shape[0], -1)
    return flat @ flat.T


SOLUTIONS = {
    "softmax": [softmax, lambda z: softmax(z.astype(np.float64))],
    "one_hot": [one_hot_loop, lambda labels, n: np.eye(n, dtype=np.float32)[labels]],
    "cross_entropy": [cross_entropy, lambda z, y: np.float32(cross_entropy(z, y))],
    "backprop_step": [backprop_step, backprop_step_in_place],
    "lstm_cell": [lstm_cell, lambda *args: np.stack(lstm_cell(*args))],
    "token_lookup": [token_lookup, lambda: {**token_lookup(), ":": "<colon>"}],
    "gram_matrix": [gram_matrix, lambda f: np.einsum("chw,dhw->cd", f, f)],
}


def _in_place_softmax(z):
    z -= z.max(axis=1, keepdims=True)
    return softmax(z)


MISTAKES = {
    "softmax": [
        (softmax_unstable, "e^1000 overflows"),
        (lambda z: np.exp(z) / np.exp(z).sum(axis=0, keepdims=True), "each column"),
        (lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum(), "whole output sums to 1"),
        (lambda z: z / z.sum(axis=1, keepdims=True), "exponentiates them first"),
        (_in_place_softmax, "changed its input"),
        (lambda z: softmax(z)[:, :-1], "has shape"),
        (lambda z: None, "forget `return`"),
        (lambda z: torch.softmax(torch.from_numpy(z), 1), "return NumPy values"),
    ],
    "one_hot": [
        (lambda labels, n: one_hot_loop(labels, n).reshape(-1, n), "keeps the labels' shape"),
        (lambda labels, n: np.eye(labels.max() + 1, dtype=np.float32)[labels], "from n_classes"),
        (lambda labels, n: np.eye(n, dtype=np.int64)[labels], "asks for float32"),
        (lambda labels, n: np.eye(n, dtype=np.float32)[(labels + 1) % n], "position k"),
        (lambda labels, n: np.moveaxis(one_hot_loop(labels, n), -1, 0), "on the last axis"),
    ],
    "cross_entropy": [
        (
            lambda z, y: float(-np.mean(np.log(softmax_unstable(z)[np.arange(len(y)), y]))),
            "log 0 = -inf",
        ),
        (lambda z, y: cross_entropy(z, y) * len(y), "sum over the"),
        (lambda z, y: -cross_entropy(z, y), "sign is wrong"),
        (lambda z, y: -np.log(softmax(z)[np.arange(len(y)), y]), "one loss per example"),
        (
            lambda z, y: float(-np.mean(np.eye(z.shape[1])[y] * np.log(softmax(z)))),
            "all 5x3 entries",
        ),
        (lambda z, y: 1 / 0, "raised ZeroDivisionError"),
    ],
    "backprop_step": [
        (lambda p, X, y, lr: backprop_step(p, X, y, lr, sign=-1), "moved uphill"),
        (lambda p, X, y, lr: backprop_step(p, X, y, lr, mean=False), "times too large"),
        (
            lambda p, X, y, lr: backprop_step(p, X, y, lr, hidden_derivative=False),
            "W2 and b2 are right",
        ),
        (lambda p, X, y, lr: p, "unchanged"),
        (lambda p, X, y, lr: {"W1": p["W1"]}, "lacks 'b1'"),
        (lambda p, X, y, lr: [p["W1"]], "return a dict"),
    ],
    "lstm_cell": [
        (lambda *a: lstm_cell(*a, order=(1, 0, 2, 3)), "in the order forget, input"),
        (lambda *a: lstm_cell(*a, swap=True), "h and c are swapped"),
        (lambda *a: lstm_cell(*a, use_tanh=False), "uses tanh"),
        (lambda *a: lstm_cell(*a)[0], "return (h_new, c_new)"),
    ],
    "token_lookup": [
        (lambda: {k: v for k, v in token_lookup().items() if k != "\n"}, "line break"),
        (lambda: {**token_lookup(), ".": "period"}, "ordinary word"),
        (lambda: {**token_lookup(), "-": "<dash mark>"}, "holds a space"),
        (lambda: {**token_lookup(), "?": "<question-mark>"}, "holds a punctuation mark"),
        (lambda: {**token_lookup(), "!": "<period>"}, "stands for two marks"),
        (lambda: list(token_lookup()), "return a dict"),
    ],
    "gram_matrix": [
        (lambda f: f.reshape(len(f), -1).T @ f.reshape(len(f), -1), "multiply F by its"),
        (lambda f: gram_matrix(f) / f[0].size, "divided by the number of positions"),
        (lambda f: f.reshape(-1, len(f)).T @ f.reshape(-1, len(f)), "mixes channels"),
    ],
}


def test_every_exercise_has_solutions_and_mistakes():
    assert set(exercises()) == set(SOLUTIONS) == set(MISTAKES)


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_correct_solution_passes(name, seed):
    for solution in SOLUTIONS[name]:
        verdict = exercises()[name].verdict(solution, seed=seed)
        assert verdict.passed, verdict.message
        assert verdict.message.startswith(f"✓ {name}")


@pytest.mark.parametrize(
    "name, mistake, hint",
    [(name, m, hint) for name, ms in MISTAKES.items() for m, hint in ms],
    ids=[f"{name}-{hint[:24]}" for name, ms in MISTAKES.items() for _, hint in ms],
)
def test_a_typical_mistake_gets_its_hint(name, mistake, hint):
    verdict = exercises()[name].verdict(mistake, seed=0)
    assert not verdict.passed
    assert verdict.message.startswith(f"✗ {name}: ")
    assert hint in verdict.message


def test_a_stub_is_not_written_yet_and_says_what_to_write(capsys):
    def stub(logits):
        raise NotImplementedError

    assert check_softmax(stub) is False
    printed = capsys.readouterr().out
    assert "not written yet" in printed and "(N, C)" in printed


@pytest.mark.parametrize(
    "check, solution",
    [
        (check_softmax, softmax),
        (check_one_hot, one_hot_loop),
        (check_cross_entropy, cross_entropy),
        (check_backprop_step, backprop_step),
        (check_lstm_cell, lstm_cell),
        (check_token_lookup, token_lookup),
        (check_gram_matrix, gram_matrix),
    ],
)
def test_the_check_functions_print_and_return_a_bool(check, solution, capsys):
    assert check(solution) is True
    assert capsys.readouterr().out.startswith("✓ ")
    assert check(42) is False
    assert "pass the function itself" in capsys.readouterr().out


def test_hints_never_show_the_reference_code():
    """A hint names the mistake; no line of the reference implementation appears in it."""
    for name, mistakes in MISTAKES.items():
        source = inspect.getsource(exercises()[name].reference)
        code = [line.strip() for line in source.splitlines()[1:] if len(line.strip()) > 12]
        for mistake, _ in mistakes:
            message = exercises()[name].verdict(mistake, seed=0).message
            assert not [line for line in code if line in message], message


# --- the references --------------------------------------------------------------------


@given(
    hnp.arrays(np.int64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
               elements=st.integers(0, 6)),
)  # fmt: skip
def test_one_hot_agrees_with_pytorch(labels):
    expected = torch.nn.functional.one_hot(torch.from_numpy(labels), 7).numpy()
    encoded = one_hot(labels, 7)
    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded, expected)


def test_one_hot_refuses_labels_out_of_range():
    with pytest.raises(ValueError, match="0..2"):
        one_hot(np.array([0, 3]), 3)


def test_the_backprop_reference_agrees_with_autograd():
    rng = np.random.default_rng(3)
    params = {
        "W1": rng.normal(size=(4, 5)),
        "b1": rng.normal(size=5),
        "W2": rng.normal(size=(5, 3)),
        "b2": rng.normal(size=3),
    }
    X, y, lr = rng.normal(size=(7, 4)), rng.integers(0, 3, 7), 0.3
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    hidden = torch.sigmoid(torch.tensor(X) @ tensors["W1"] + tensors["b1"])
    logits = hidden @ tensors["W2"] + tensors["b2"]
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
    stepped = backprop_step_reference(params, X, y, lr)
    for name, tensor in tensors.items():
        expected = (tensor - lr * tensor.grad).detach().numpy()
        np.testing.assert_allclose(stepped[name], expected, rtol=1e-10, atol=1e-12)


def test_the_lstm_cell_reference_agrees_with_torch():
    rng = np.random.default_rng(4)
    x, h, c = rng.normal(size=(3, 5)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    cell = torch.nn.LSTMCell(5, 4).double()
    weights = [
        p.detach().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    ]
    expected = cell(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
    got = lstm_cell_reference(x, h, c, *weights)
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_the_gram_reference_is_the_style_recipes_gram_times_positions():
    features = np.random.default_rng(5).normal(size=(6, 3, 7))
    normalised = style_gram_matrix(torch.tensor(features)[None])[0].numpy()
    np.testing.assert_allclose(gram_matrix_reference(features), normalised * 21, rtol=1e-10)


# --- the comparison behind every hint ---------------------------------------------------


@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3), elements=st.floats(-1e3, 1e3)))
def test_compare_accepts_equal_arrays_and_names_a_shape_change(values):
    assert compare(values.copy(), values, "x", None, 1e-4, 1e-6) is None
    grown = np.concatenate([values.reshape(-1), [0.0]])
    assert "shape" in compare(grown, values, "x", None, 1e-4, 1e-6)


def test_compare_names_the_worst_value_and_nan():
    expected = np.zeros((2, 3))
    wrong = expected.copy()
    wrong[1, 2] = 5.0
    assert "index (1, 2)" in compare(wrong, expected, "x", None, 1e-4, 1e-6)
    wrong[0, 0] = np.nan
    assert "NaN or inf" in compare(wrong, expected, "x", None, 1e-4, 1e-6)
