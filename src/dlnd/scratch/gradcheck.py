"""Gradient checking: analytic gradients against central finite differences.

For every parameter entry theta_j:

    dL/dtheta_j  ~  (L(theta + eps e_j) - L(theta - eps e_j)) / (2 eps)

The error of this estimate is O(eps^2), so in float64 with eps ~ 1e-6 it agrees with a
correct back-propagation to about 1e-8 relative error; a wrong gradient is off by O(1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dlnd.scratch.mlp import MLP


def numerical_gradients(
    net: MLP, X: np.ndarray, y: np.ndarray, eps: float = 1e-6
) -> dict[str, np.ndarray]:
    """Central-difference estimate of d net.loss(X, y) / d param for every parameter."""
    estimates = {}
    for name, param in net.params.items():
        estimate = np.empty_like(param)
        flat, flat_estimate = param.reshape(-1), estimate.reshape(-1)
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + eps
            loss_plus = net.loss(X, y)
            flat[j] = original - eps
            loss_minus = net.loss(X, y)
            flat[j] = original
            flat_estimate[j] = (loss_plus - loss_minus) / (2 * eps)
        estimates[name] = estimate
    return estimates


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a|| + ||b||, 1e-12): 0 for equal arrays, about 1 for unrelated ones."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def gradcheck(net: MLP, X: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> dict[str, float]:
    """Relative error between ``net.gradients`` and finite differences, per parameter.

    The check runs in float64 on a copy of the parameters (float32 rounding would swamp the
    O(eps^2) truncation error); the network's own parameters are restored afterwards.
    Dropout must be off, since a random mask makes the loss a different function each call.
    """
    if net.dropout:
        raise ValueError("gradcheck needs a deterministic loss; build the network with dropout=0.")
    original = net.params
    net.params = {name: p.astype(np.float64) for name, p in original.items()}
    try:
        X64 = np.asarray(X, dtype=np.float64)
        analytic = net.gradients(X64, y)
        numeric = numerical_gradients(net, X64, y, eps)
    finally:
        net.params = original
    return {name: relative_error(analytic[name], numeric[name]) for name in analytic}
