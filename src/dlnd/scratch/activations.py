"""Activation functions, each with its derivative right next to it.

Every derivative is written in terms of the activation's *output* ``a = f(z)``:

    sigmoid:  a = 1 / (1 + e^-z)        da/dz = a (1 - a)
    tanh:     a = tanh z                da/dz = 1 - a^2
    relu:     a = max(z, 0)             da/dz = 1 if a > 0 else 0

so a layer can overwrite ``z`` with ``a`` in place and still back-propagate. The step
function of the perceptron has no useful derivative (zero almost everywhere), which is the
reason the continuous sigmoid replaced it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Activation = Callable[[np.ndarray], np.ndarray]


def step(z: np.ndarray) -> np.ndarray:
    """The perceptron's discrete activation: 1 where ``z >= 0``, else 0 (same dtype as ``z``)."""
    return (z >= 0).astype(z.dtype)


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic sigmoid 1 / (1 + e^-z), computed without overflow for any ``z``.

    For z >= 0 use 1 / (1 + e^-z); for z < 0 the equal form e^z / (1 + e^z). Both
    exponentials only ever see -|z| <= 0, so they never overflow.
    """
    out = np.empty_like(z) if out is None else out
    e = np.exp(-np.abs(z))
    np.divide(np.where(z >= 0, 1.0, e), 1.0 + e, out=out)
    return out


def sigmoid_grad(a: np.ndarray, delta: np.ndarray) -> None:
    """``delta *= a (1 - a)``: dL/dz from dL/da for a sigmoid layer with output ``a``."""
    delta *= a
    delta *= 1.0 - a


def tanh(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(z, out=out)


def tanh_grad(a: np.ndarray, delta: np.ndarray) -> None:
    """``delta *= 1 - a^2``: dL/dz from dL/da for a tanh layer with output ``a``."""
    delta *= 1.0 - a * a


def relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rectified linear unit max(z, 0)."""
    return np.maximum(z, 0, out=out)


def relu_grad(a: np.ndarray, delta: np.ndarray) -> None:
    """``delta *= 1[a > 0]``: the gradient passes only through units that fired."""
    delta *= a > 0


# name -> (activation, in-place derivative written with the activation's output)
HIDDEN_ACTIVATIONS: dict[str, tuple[Callable[..., np.ndarray], Callable[..., None]]] = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
}
