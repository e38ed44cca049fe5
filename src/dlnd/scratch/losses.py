"""Output layers and the error functions that belong to them, numerically stable.

Each output activation is paired with the loss whose gradient through it is simply
"prediction minus target" (the reason these pairs are used together):

    softmax  + categorical cross-entropy   L = -mean_n log softmax(z_n)[y_n]
    sigmoid  + binary cross-entropy        L = -mean [y log s(z) + (1 - y) log(1 - s(z))]
    linear   + mean squared error          L = mean (z - y)^2     (mean over all elements)

    dL/dz = (softmax(z) - onehot(y)) / N,   (s(z) - y) / (N k),   2 (z - y) / (N k)

Losses are computed from the logits ``z`` (the output layer before its activation) with
log-sum-exp, never as log(probability), so extreme logits give finite, exact values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlnd.scratch.activations import sigmoid


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax e^z_j / sum_k e^z_k of ``z: (N, C)``; minus max_k z_k: no overflow."""
    shifted = z - z.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def one_hot(labels: np.ndarray, n_classes: int, dtype: type = np.float32) -> np.ndarray:
    """``labels`` (integers in 0..n_classes-1, any shape) -> ``(*labels.shape, n_classes)`` with
    a 1 at each label's position and 0 elsewhere: row k of the identity matrix for label k."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1}, got {labels.min()}..{labels.max()}"
        )
    return np.eye(n_classes, dtype=dtype)[labels]


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax(z) = z - m - log sum_k e^(z_k - m), m = max_k z_k (log-sum-exp); z: (N, C)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def categorical_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log softmax(z_n)[y_n] for ``logits: (N, C)`` and integer ``labels: (N,)``."""
    log_p = log_softmax(logits)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def binary_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(``logits``) against ``targets`` in {0, 1} (same shape).

    -[y log s(z) + (1 - y) log(1 - s(z))] = max(z, 0) - z y + log(1 + e^-|z|),
    a form in which no exponential can overflow and no log sees zero.
    """
    loss = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return float(loss.mean())


def log_loss(probabilities: np.ndarray, targets: np.ndarray, eps: float = 1e-12) -> float:
    """Binary cross-entropy from probabilities, clipped to [eps, 1 - eps] so log never sees 0."""
    p = np.clip(probabilities, eps, 1.0 - eps)
    return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())


def mean_squared_error(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Mean over all elements of (prediction - target)^2."""
    diff = predictions - targets
    return float(np.mean(diff * diff))


def _softmax_loss_and_delta(logits: np.ndarray, labels: np.ndarray, out: np.ndarray) -> float:
    """Categorical cross-entropy of ``logits: (N, C)``; writes dL/dz = (p - onehot(y)) / N to out.

    With m = max_k z_k and s = sum_k e^(z_k - m): loss_n = log s - (z_{n,y_n} - m).
    """
    rows = np.arange(len(labels))
    np.subtract(logits, logits.max(axis=1, keepdims=True), out=out)
    picked = out[rows, labels]
    np.exp(out, out=out)
    sums = out.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sums[:, 0]) - picked))
    out /= sums
    out[rows, labels] -= 1.0
    out *= 1.0 / len(labels)
    return loss


def _sigmoid_loss_and_delta(logits: np.ndarray, targets: np.ndarray, out: np.ndarray) -> float:
    """Binary cross-entropy; writes dL/dz = (s(z) - y) / (N k) to ``out``."""
    targets = targets.reshape(logits.shape)
    loss = binary_cross_entropy(logits, targets)
    sigmoid(logits, out=out)
    out -= targets
    out *= 1.0 / out.size
    return loss


def _linear_loss_and_delta(logits: np.ndarray, targets: np.ndarray, out: np.ndarray) -> float:
    """Mean squared error; writes dL/dz = 2 (z - y) / (N k) to ``out``."""
    np.subtract(logits, targets.reshape(logits.shape), out=out)
    loss = float(np.mean(out * out))
    out *= 2.0 / out.size
    return loss


@dataclass(frozen=True)
class OutputLayer:
    """An output activation, its matching loss, and the fused gradient dL/dz of the two."""

    activation: Callable[[np.ndarray], np.ndarray]
    loss: Callable[[np.ndarray, np.ndarray], float]  # (logits, targets) -> mean loss
    # (logits, targets, out) -> mean loss, with dL/dz written into out
    loss_and_delta: Callable[[np.ndarray, np.ndarray, np.ndarray], float]


def _sigmoid_loss(logits: np.ndarray, targets: np.ndarray) -> float:
    return binary_cross_entropy(logits, targets.reshape(logits.shape))


def _mse_loss(logits: np.ndarray, targets: np.ndarray) -> float:
    return mean_squared_error(logits, targets.reshape(logits.shape))


OUTPUT_LAYERS: dict[str, OutputLayer] = {
    "softmax": OutputLayer(softmax, categorical_cross_entropy, _softmax_loss_and_delta),
    "sigmoid": OutputLayer(sigmoid, _sigmoid_loss, _sigmoid_loss_and_delta),
    "linear": OutputLayer(np.copy, _mse_loss, _linear_loss_and_delta),
}
