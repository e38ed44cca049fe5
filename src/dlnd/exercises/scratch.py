"""Checks for the from-scratch lessons: softmax, one-hot encoding, cross-entropy and one
backpropagation step, each against :mod:`dlnd.scratch` (the reference the library uses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlnd.exercises.core import Case, Exercise, register
from dlnd.scratch import losses
from dlnd.scratch.mlp import MLP

# --- softmax ------------------------------------------------------------------------------

LARGE_LOGITS = "3 rows of 4 logits around ±1000"


def softmax_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("4 rows of 5 logits", (rng.normal(size=(4, 5)),)),
        Case("one row of 3 logits", (rng.normal(size=(1, 3)),)),
        Case("8 rows of 10 float32 logits", (rng.normal(0, 3, (8, 10)).astype(np.float32),)),
        Case(LARGE_LOGITS, (rng.normal(0, 1000, (3, 4)),)),
    ]


def diagnose_softmax(case: Case, got: Any, expected: np.ndarray) -> str | None:
    logits, p = case.args[0], np.asarray(got, dtype=np.float64)
    if p.shape != logits.shape:
        return None
    if not np.all(np.isfinite(p)) and case.what == LARGE_LOGITS:
        return (
            f"on {LARGE_LOGITS} it returned NaN or inf: e^1000 overflows (floats end near "
            "1.8e308) and e^-1000 rounds to 0. Softmax does not change when the same number "
            "is subtracted from every logit of a row; choose it so that no exponent is positive."
        )
    if np.allclose(p, logits / logits.sum(axis=1, keepdims=True)):
        return "it divides the logits by their sum; softmax exponentiates them first (e^z > 0)."
    rows_sum_to_one = np.allclose(p.sum(axis=1), 1)
    if not rows_sum_to_one and np.allclose(p.sum(axis=0), 1) and len(p) > 1:
        return (
            "each column of its output sums to 1, but one row is one example: "
            "normalise over each row (the class axis, axis=1)."
        )
    if not rows_sum_to_one and np.isclose(p.sum(), 1) and len(p) > 1:
        return (
            "its whole output sums to 1; each row (one example) must sum to 1 on its own: "
            "divide by each row's sum (keepdims=True keeps it broadcastable)."
        )
    if not rows_sum_to_one:
        return "the rows of its output do not sum to 1, so they are not probabilities."
    return None


SOFTMAX = register(
    Exercise(
        name="softmax",
        signature="softmax(logits) -> probabilities: logits is a (N, C) array of scores, one "
        "row per example; each row of the (N, C) result is e^z / (sum of e^z over the row).",
        reference=losses.softmax,
        cases=softmax_cases,
        diagnose=diagnose_softmax,
    )
)


def check_softmax(fn: Callable[[np.ndarray], np.ndarray]) -> bool:
    """Check ``softmax(logits: (N, C)) -> (N, C)`` probabilities, row-wise, on random logits
    (including large ones); print a hint when it is wrong. Returns True when it is right."""
    return SOFTMAX.check(fn)


# --- one-hot encoding ---------------------------------------------------------------------


def one_hot_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("6 labels of 4 classes", (rng.integers(0, 4, 6), 4)),
        Case("a (2, 5) batch of labels of 7 classes", (rng.integers(0, 7, (2, 5)), 7)),
        Case("3 labels (0, 1, 2) of 10 classes", (rng.permutation(3), 10)),
        Case("the labels 0 and 4 of 5 classes", (np.array([4, 0]), 5)),
    ]


def diagnose_one_hot(case: Case, got: Any, expected: np.ndarray) -> str | None:
    labels, n_classes = case.args
    encoded = np.asarray(got)
    if encoded.shape == (labels.size, n_classes) and labels.ndim > 1:
        return (
            f"on {case.what} it returned shape {encoded.shape}: the result keeps the labels' "
            f"shape {labels.shape} and adds the class axis last."
        )
    if encoded.shape == (n_classes, *labels.shape) and n_classes != labels.shape[-1]:
        return "the classes are on the first axis of its result; put them on the last axis."
    if encoded.shape[:-1] == labels.shape and encoded.shape[-1] != n_classes:
        return (
            f"on {case.what} its last axis has {encoded.shape[-1]} entries, not n_classes = "
            f"{n_classes}: a batch need not contain every class, so take the width from "
            "n_classes."
        )
    if encoded.shape != expected.shape:
        return None
    if not np.array_equal(encoded.sum(axis=-1), np.ones(labels.shape)):
        return "each label must become exactly one 1 (and zeros elsewhere)."
    if np.array_equal(encoded.argmax(axis=-1), n_classes - 1 - labels):
        return "the 1s are mirrored: label k belongs at position k, counted from the front."
    if not np.array_equal(encoded.argmax(axis=-1), labels):
        return "the 1 of label k belongs at position k of the last axis (counting from 0)."
    return None


ONE_HOT = register(
    Exercise(
        name="one_hot",
        signature="one_hot(labels, n_classes) -> encoded: labels is an integer array of any "
        "shape with values in 0..n_classes-1; the float32 result has shape "
        "(*labels.shape, n_classes) with a 1 at each label's position and 0 elsewhere.",
        reference=losses.one_hot,
        cases=one_hot_cases,
        diagnose=diagnose_one_hot,
        dtype="float32",
    )
)


def check_one_hot(fn: Callable[[np.ndarray, int], np.ndarray]) -> bool:
    """Check ``one_hot(labels: any shape, n_classes) -> float32 (*labels.shape, n_classes)``
    on random labels; print a hint when it is wrong. Returns True when it is right."""
    return ONE_HOT.check(fn)


# --- cross-entropy ------------------------------------------------------------------------

LARGE_CROSS_ENTROPY = "4 examples of 3 classes with logits around ±1000"


def cross_entropy_cases(rng: np.random.Generator) -> list[Case]:
    def case(what: str, n: int, classes: int, scale: float, dtype: type = np.float64) -> Case:
        logits = rng.normal(0, scale, (n, classes)).astype(dtype)
        return Case(what, (logits, rng.integers(0, classes, n)))

    return [
        case("5 examples of 3 classes", 5, 3, 1.0),
        case("one example of 4 classes", 1, 4, 1.0),
        case("16 examples of 10 classes in float32", 16, 10, 2.0, np.float32),
        case(LARGE_CROSS_ENTROPY, 4, 3, 1000.0),
    ]


def diagnose_cross_entropy(case: Case, got: Any, expected: Any) -> str | None:
    logits, labels = case.args
    n, classes = logits.shape
    value = np.asarray(got, dtype=np.float64)
    if value.shape == (n,) and n > 1:
        return (
            f"on {case.what} it returned one loss per example (shape {value.shape}); the loss "
            "of a batch is their mean, one number."
        )
    value, expected = float(value), float(expected)
    if not np.isfinite(value) and case.what == LARGE_CROSS_ENTROPY:
        return (
            f"on {LARGE_CROSS_ENTROPY} it returned {value}: a probability like e^-1000 rounds "
            "to 0 and log 0 = -inf. Compute log-probabilities without forming probabilities: "
            "log softmax(z)_k = z_k - log(sum_j e^z_j), with the same shift as in softmax "
            "inside the sum."
        )
    if np.isclose(value, -expected, rtol=1e-4):
        return "the sign is wrong: log p <= 0, so the loss is the negative mean log-probability."
    if n > 1 and np.isclose(value, n * expected, rtol=1e-4):
        return f"it returned the sum over the {n} examples; the loss is their mean."
    if classes > 1 and np.isclose(value, expected / classes, rtol=1e-4):
        return (
            f"it averaged over all {n}x{classes} entries of the one-hot product; average over "
            f"the {n} examples only."
        )
    return None


CROSS_ENTROPY = register(
    Exercise(
        name="cross_entropy",
        signature="cross_entropy(logits, labels) -> loss: logits is a (N, C) array of scores, "
        "labels a (N,) array of integer classes; the loss is one number, the mean over the N "
        "examples of -log softmax(logits)[n, labels[n]].",
        reference=losses.categorical_cross_entropy,
        cases=cross_entropy_cases,
        diagnose=diagnose_cross_entropy,
    )
)


def check_cross_entropy(fn: Callable[[np.ndarray, np.ndarray], float]) -> bool:
    """Check ``cross_entropy(logits: (N, C), labels: (N,)) -> float`` (the mean over the
    examples) on random logits, including large ones; print a hint when it is wrong."""
    return CROSS_ENTROPY.check(fn)


# --- one backpropagation step -------------------------------------------------------------

Params = dict[str, np.ndarray]


def backprop_step_reference(params: Params, X: np.ndarray, y: np.ndarray, lr: float) -> Params:
    """One gradient-descent step of the network :func:`check_backprop_step` describes, by
    :class:`dlnd.scratch.MLP` (whose gradients are tested against PyTorch autograd)."""
    n_in, n_hidden = params["W1"].shape
    net = MLP([n_in, n_hidden, params["W2"].shape[1]], activation="sigmoid", output="softmax")
    net.params = {name: np.array(params[name], dtype=np.float64) for name in net.params}
    grads = net.gradients(X, y)
    return {name: net.params[name] - lr * grads[name] for name in net.params}


def backprop_cases(rng: np.random.Generator) -> list[Case]:
    def case(n: int, n_in: int, n_hidden: int, n_out: int, lr: float) -> Case:
        params = {
            "W1": rng.normal(0, 0.5, (n_in, n_hidden)),
            "b1": rng.normal(0, 0.1, n_hidden),
            "W2": rng.normal(0, 0.5, (n_hidden, n_out)),
            "b2": rng.normal(0, 0.1, n_out),
        }
        X, y = rng.normal(size=(n, n_in)), rng.integers(0, n_out, n)
        return Case(f"{n} examples, layers {n_in}-{n_hidden}-{n_out}, lr={lr}", (params, X, y, lr))

    return [case(5, 3, 4, 3, 0.5), case(1, 2, 3, 2, 0.1), case(8, 6, 5, 4, 1.0)]


def diagnose_backprop_step(case: Case, got: Any, expected: Params) -> str | None:
    params, X = case.args[0], case.args[1]
    mine = {name: params[name] - np.asarray(got[name], np.float64) for name in expected}
    ours = {name: params[name] - expected[name] for name in expected}

    def all_close(factor: float, names: tuple[str, ...] = tuple(expected)) -> bool:
        return all(np.allclose(mine[k], factor * ours[k], rtol=1e-4, atol=1e-9) for k in names)

    if all_close(0.0):
        return "it returned the weights unchanged; apply the step: new = old - lr * gradient."
    if all_close(-1.0):
        return "every weight moved uphill: gradient descent subtracts lr * gradient."
    if len(X) > 1 and all_close(len(X)):
        return (
            f"every step is {len(X)} (the number of examples) times too large: the loss is "
            "the mean over the batch, and so is its gradient."
        )
    if all_close(1.0, ("W2", "b2")):
        return (
            "W2 and b2 are right, W1 or b1 are not: check the error you send back to the "
            "hidden layer; it goes through W2 (transposed) and through the sigmoid's derivative."
        )
    if all_close(1.0, ("W1", "b1")):
        return "W1 and b1 are right but W2 or b2 are not; check the output layer's step."
    return None


BACKPROP_STEP = register(
    Exercise(
        name="backprop_step",
        signature="backprop_step(params, X, y, lr) -> new_params: params holds W1 (n_in, "
        "n_hidden), b1 (n_hidden,), W2 (n_hidden, n_out), b2 (n_out,); X is (N, n_in), y (N,) "
        "integer labels; h = sigmoid(X W1 + b1), p = softmax(h W2 + b2), loss = mean of "
        "-log p[n, y[n]]; return a dict with the same keys holding param - lr * dloss/dparam.",
        reference=backprop_step_reference,
        cases=backprop_cases,
        diagnose=diagnose_backprop_step,
        changes_inputs=True,
    )
)


def check_backprop_step(fn: Callable[[Params, np.ndarray, np.ndarray, float], Params]) -> bool:
    """Check one step of gradient descent by backpropagation.

    The learner writes ``backprop_step(params, X, y, lr) -> new_params`` for a network with
    one sigmoid hidden layer and a softmax output trained on the mean cross-entropy::

        params: {"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, n_out), "b2": (n_out,)}
        X: (N, n_in), y: (N,) integer labels, lr: the learning rate
        h = sigmoid(X W1 + b1);  p = softmax(h W2 + b2);  loss = mean_n -log p[n, y_n]
        returns {name: params[name] - lr * d loss / d params[name]} for the four names

    Updating ``params`` in place and returning it is fine. Prints a hint when it is wrong;
    returns True when it is right.
    """
    return BACKPROP_STEP.check(fn)
