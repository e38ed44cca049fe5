"""Gradient checking: analytic gradients against central finite differences.

For every entry theta_j of a parameter (or input):

    dL/dtheta_j  ~  (L(theta + eps e_j) - L(theta - eps e_j)) / (2 eps)

The error of this estimate is O(eps^2), so in float64 with eps ~ 1e-6 it agrees with a
correct back-propagation to about 1e-8 relative error; a wrong gradient is off by O(1).

An MLP has its own loss. A recurrent layer (RNN, LSTM) only maps a sequence to outputs and
a final state, so the check gives it a scalar loss: a fixed random weighting of everything
it returns,

    L = sum(outputs * R_out) + sum(h_T * R_h)  [+ sum(c_T * R_c) for the LSTM]

whose gradient with respect to the outputs and final state is R itself: ``backward(R_out,
R_state)`` is then the analytic dL/dtheta, checked for the parameters, the input sequence x
and the initial state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from dlnd.scratch.recurrent import LSTM, RecurrentLayer, State

if TYPE_CHECKING:
    from dlnd.scratch.mlp import MLP


def numerical_gradients(
    loss: Callable[[], float], arrays: dict[str, np.ndarray], eps: float = 1e-6
) -> dict[str, np.ndarray]:
    """Central-difference estimate of d loss() / d array for every array, nudged in place."""
    estimates = {}
    for name, array in arrays.items():
        estimate = np.empty_like(array)
        flat, flat_estimate = array.reshape(-1), estimate.reshape(-1)
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + eps
            loss_plus = loss()
            flat[j] = original - eps
            loss_minus = loss()
            flat[j] = original
            flat_estimate[j] = (loss_plus - loss_minus) / (2 * eps)
        estimates[name] = estimate
    return estimates


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a|| + ||b||, 1e-12): 0 for equal arrays, about 1 for unrelated ones."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def gradcheck(
    net: MLP | RecurrentLayer,
    X: np.ndarray,
    y: np.ndarray | None = None,
    eps: float = 1e-6,
    *,
    state: State | None = None,
) -> dict[str, float]:
    """Relative error between back-propagation and finite differences, per gradient.

    MLP: ``X: (N, n_in)``, targets ``y``; one entry per parameter. Dropout must be off, since
    a random mask makes the loss a different function each call.
    RNN/LSTM: ``X: (T, N, I)``, no ``y``, an optional initial ``state`` (None = zeros); one
    entry per parameter plus "x", "h0" (and "c0").

    The check runs in float64 on a copy of the parameters (float32 rounding would swamp the
    O(eps^2) truncation error); the network's own parameters are restored afterwards.
    """
    original = net.params
    net.params = {name: p.astype(np.float64) for name, p in original.items()}
    try:
        if isinstance(net, RecurrentLayer):
            if y is not None:
                raise ValueError("A recurrent layer has no targets: call gradcheck(layer, x).")
            analytic, numeric = _recurrent_gradients(net, X, state, eps)
        else:
            if net.dropout:
                raise ValueError(
                    "gradcheck needs a deterministic loss; build the network with dropout=0."
                )
            X64 = np.asarray(X, dtype=np.float64)
            analytic = net.gradients(X64, y)
            numeric = numerical_gradients(lambda: net.loss(X64, y), net.params, eps)
    finally:
        net.params = original
    return {name: relative_error(analytic[name], numeric[name]) for name in analytic}


def _recurrent_gradients(
    layer: RecurrentLayer, x: np.ndarray, state: State | None, eps: float
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(BPTT, finite differences) of a fixed random weighting L of the layer's outputs."""
    x = np.array(x, dtype=np.float64)  # copies: the finite differences nudge them
    state = _float64_state(layer, state, batch=x.shape[1] if x.ndim == 3 else 0)
    outputs, final = layer.forward(x, state)  # also checks every shape
    rng = np.random.default_rng(0)
    weight_outputs = rng.normal(size=outputs.shape)
    weight_final = _pack(layer, [rng.normal(size=s.shape) for s in _unpack(final)])
    # dL/doutputs = R_out and dL/d(final state) = R_state, for the forward just run
    analytic = layer.backward(weight_outputs, weight_final)

    def loss() -> float:
        outputs, final = layer.forward(x, state)
        finals = zip(_unpack(final), _unpack(weight_final))
        return float(np.vdot(outputs, weight_outputs) + sum(np.vdot(s, w) for s, w in finals))

    nudged = {**layer.params, "x": x, **dict(zip(("h0", "c0"), _unpack(state)))}
    return analytic, numerical_gradients(loss, nudged, eps)


def _unpack(state: State) -> tuple[np.ndarray, ...]:
    """(h,) for an RNN state, (h, c) for an LSTM state."""
    return state if isinstance(state, tuple) else (state,)


def _pack(layer: RecurrentLayer, arrays: list[np.ndarray]) -> State:
    """The inverse of :func:`_unpack`: a tuple for the LSTM, a single array for the RNN."""
    return tuple(arrays) if isinstance(layer, LSTM) else arrays[0]


def _float64_state(layer: RecurrentLayer, state: State | None, batch: int) -> State:
    """A float64 copy of the initial state (zeros for None), to be nudged."""
    if state is None:
        count = 2 if isinstance(layer, LSTM) else 1
        return _pack(layer, [np.zeros((batch, layer.hidden_size)) for _ in range(count)])
    if isinstance(state, (tuple, list)):
        return tuple(np.array(part, dtype=np.float64) for part in state)
    return np.array(state, dtype=np.float64)
