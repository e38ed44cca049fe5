"""A long-range memory task for recurrent networks, and where their gradients vanish.

The task: read a sequence of random symbols and, at the end, name the symbol seen ``delay``
steps before the last one: the first one, which carries a marker ("remember this one").
Everything after it is distraction. A network must keep one symbol in its state for
``delay`` steps while new symbols keep arriving, and it can only *learn* to do that if the
loss at the end sends a useful gradient back to the first step: the norm of dloss/dh_t as t
goes back from T to 0 is what this module measures.

    x: (T, N, S + 1)   one-hot symbols (S of them) plus the marker bit; T = delay + 1
    y: (N,)            the first symbol of each sequence

The model is a recurrent layer read by a linear layer at the last step,
logits = h_T W_out^T + b_out, trained with softmax cross-entropy.
"""

from __future__ import annotations

import numpy as np

from dlnd.scratch.losses import OUTPUT_LAYERS
from dlnd.scratch.optimizers import Adam
from dlnd.scratch.recurrent import LSTM, RecurrentLayer, State

Params = dict[str, np.ndarray]


def recall_batch(
    rng: np.random.Generator, batch_size: int, delay: int, symbols: int
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` sequences of ``delay + 1`` random symbols: inputs ``(delay + 1, N,
    symbols + 1)`` (one-hot, the first step also has the marker bit) and targets ``(N,)``."""
    drawn = rng.integers(0, symbols, size=(delay + 1, batch_size))
    x = np.zeros((delay + 1, batch_size, symbols + 1))
    steps, rows = np.meshgrid(np.arange(delay + 1), np.arange(batch_size), indexing="ij")
    x[steps, rows, drawn] = 1.0
    x[0, :, symbols] = 1.0  # the marker: this is the symbol to recall
    return x, drawn[0]


def open_forget_gates(cell: LSTM, bias: float) -> None:
    """Add ``bias`` to the forget gate's bias, so that f_t = sigmoid(z_f) starts near 1.

    The cell state's gradient is scaled by f_t at every step back (dL/dc_{t-1} = dL/dc_t f_t),
    so with f_t ~ 0.5 (torch's initialisation) it still halves per step; a positive forget
    bias (1 in Jozefowicz et al., 2015) lets an untrained LSTM remember, and learn, longer.
    """
    H = cell.hidden_size
    cell.params["b_ih"][H : 2 * H] += bias  # rows H..2H are the forget gate's


class LastStepClassifier:
    """A recurrent layer whose last hidden state is classified by a linear layer.

    ``params`` holds the layer's parameters (the same arrays) plus ``W_out: (C, H)`` and
    ``b_out: (C,)``, initialised like ``torch.nn.Linear``.
    """

    def __init__(self, cell: RecurrentLayer, classes: int, seed: int = 0) -> None:
        self.cell = cell
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(cell.hidden_size)
        self.params: Params = {
            **cell.params,
            "W_out": rng.uniform(-bound, bound, (classes, cell.hidden_size)).astype(cell.dtype),
            "b_out": rng.uniform(-bound, bound, classes).astype(cell.dtype),
        }

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Class scores ``(N, C)`` for sequences ``x: (T, N, I)``."""
        outputs, _ = self.cell.forward(x)
        return self._readout(outputs[-1])

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.logits(x).argmax(axis=1) == y))

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        """Mean cross-entropy on ``(x, y)`` and its gradient for every parameter."""
        outputs, _ = self.cell.forward(x)
        last = outputs[-1]
        loss, d_logits = self.readout_loss(last, y)
        d_outputs = np.zeros_like(outputs)
        d_outputs[-1] = d_logits @ self.params["W_out"]  # only h_T feeds the loss
        grads = self.cell.backward(d_outputs)
        grads["W_out"] = d_logits.T @ last  # logits = h_T W_out^T + b_out
        grads["b_out"] = d_logits.sum(axis=0)
        return loss, {name: grads[name] for name in self.params}

    def readout_loss(self, last_hidden: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Cross-entropy of classifying ``h_T: (N, H)`` and dloss/dlogits ``(N, C)``."""
        logits = self._readout(last_hidden)
        d_logits = np.empty_like(logits)
        return OUTPUT_LAYERS["softmax"].loss_and_delta(logits, y, d_logits), d_logits

    def _readout(self, last_hidden: np.ndarray) -> np.ndarray:
        return last_hidden @ self.params["W_out"].T + self.params["b_out"]


def clip_gradient_norm(grads: Params, max_norm: float) -> float:
    """Scale ``grads`` in place so that their joint L2 norm is at most ``max_norm``.

    Returns the norm before clipping. An RNN's gradient can also *explode* (the same matrix
    multiplied T times, with a norm above 1): clipping keeps one bad step from undoing training.
    """
    norm = float(np.sqrt(sum(np.vdot(g, g) for g in grads.values())))
    if norm > max_norm:
        for grad in grads.values():
            grad *= max_norm / norm
    return norm


def train_recall(
    model: LastStepClassifier,
    rng: np.random.Generator,
    max_delay: int,
    steps: int,
    batch_size: int,
    optimizer: Adam,
    max_norm: float = 1.0,
) -> float:
    """``steps`` Adam steps on fresh batches whose delay is drawn from 1..max_delay (short
    delays teach the network to store the symbol; long ones, to keep it). Mean loss."""
    symbols = model.params["W_out"].shape[0]
    total = 0.0
    for _ in range(steps):
        delay = int(rng.integers(1, max_delay + 1))
        loss, grads = model.loss_and_gradients(*recall_batch(rng, batch_size, delay, symbols))
        clip_gradient_norm(grads, max_norm)
        optimizer.step(model.params, grads)
        total += loss
    return total / steps


def hidden_state_gradient_norms(
    model: LastStepClassifier, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """||dloss/dh_t|| for t = 0..T ``(T + 1,)``: how much of the loss's gradient reaches back.

    Backpropagation through time one step at a time: the layer's backward over the single
    step t turns the gradient of its final state, dL/d(h_t, c_t), into the gradient of its
    initial state, dL/d(h_{t-1}, c_{t-1}) ("h0", "c0"). x: (T, N, I); y: (N,).
    """
    cell, T = model.cell, len(x)
    states: list[State | None] = [None]  # states[t] = h_t (and c_t); h_0 = zeros
    for t in range(T):
        _, state = cell.forward(x[t : t + 1], states[-1])
        states.append(state)
    last = states[-1][0] if isinstance(cell, LSTM) else states[-1]
    _, d_logits = model.readout_loss(last, y)
    d_hidden = d_logits @ model.params["W_out"]  # dL/dh_T
    d_state: State = (d_hidden, np.zeros_like(d_hidden)) if isinstance(cell, LSTM) else d_hidden
    norms = [np.linalg.norm(d_hidden)]
    no_output_gradient = np.zeros((1, *d_hidden.shape), dtype=cell.dtype)
    for t in reversed(range(T)):
        # the step from h_t to h_{t+1} (input x[t]); backward needs its forward first
        cell.forward(x[t : t + 1], states[t])
        grads = cell.backward(no_output_gradient, d_state)
        d_state = (grads["h0"], grads["c0"]) if isinstance(cell, LSTM) else grads["h0"]
        norms.append(np.linalg.norm(grads["h0"]))  # ||dL/dh_t||
    return np.array(norms[::-1])
