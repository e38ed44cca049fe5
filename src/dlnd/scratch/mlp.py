"""A multilayer perceptron with feed-forward and back-propagation written out layer by layer.

Notation for a network with L layers (``sizes = [n_0, n_1, ..., n_L]``), a batch of N rows:

    a_0 = X                                       (N, n_0)
    z_i = a_{i-1} W_i + b_i                       (N, n_i)   W_i: (n_{i-1}, n_i), b_i: (n_i,)
    h_i = f(z_i)                                  hidden activation, i < L
    a_i = h_i * m_i                               inverted dropout: m_i in {0, 1/(1-p)}
    y_hat = g(z_L)                                output activation (softmax, sigmoid, linear)

    loss = data_loss(z_L, y) + l1 sum_i |W_i| + l2 sum_i W_i^2      (weights only, no biases)

Back-propagation walks the same layers backwards with delta_i = dL/dz_i:

    delta_L   = dL/dz_L                           fused with the output layer (see losses.py)
    dL/dW_i   = a_{i-1}^T delta_i + l1 sign(W_i) + 2 l2 W_i
    dL/db_i   = sum over rows of delta_i
    delta_{i-1} = (delta_i W_i^T) * m_{i-1} * f'(h_{i-1})

Every step is a matrix product or an elementwise operation written into a preallocated
buffer, so a training step allocates (almost) nothing and runs at the speed of the BLAS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlnd.errors import TrainingDiverged
from dlnd.scratch.activations import HIDDEN_ACTIVATIONS
from dlnd.scratch.losses import OUTPUT_LAYERS
from dlnd.scratch.optimizers import Optimizer, make_optimizer

Params = dict[str, np.ndarray]


def init_weights(
    fan_in: int, fan_out: int, scheme: str, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """Initial weights ``(fan_in, fan_out)`` that keep the activations' variance across layers.

    xavier (Glorot & Bengio, 2010): U(-r, r), r = sqrt(6 / (fan_in + fan_out)), for sigmoid/tanh.
    he (He et al., 2015): N(0, 2 / fan_in), for relu, which zeroes half its inputs.
    """
    if scheme == "xavier":
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        weights = rng.uniform(-bound, bound, size=(fan_in, fan_out))
    elif scheme == "he":
        weights = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
    else:
        raise ValueError(f"Unknown initialisation {scheme!r}; expected 'xavier' or 'he'.")
    return weights.astype(dtype)


@dataclass
class _Trace:
    """The intermediate arrays of one forward pass over a batch of ``rows`` examples."""

    rows: int
    hidden: list[np.ndarray]  # h_i = f(z_i), i = 1..L-1
    kept: list[np.ndarray]  # a_i = h_i * m_i (the same arrays as ``hidden`` without dropout)
    masks: list[np.ndarray | None]  # m_i, or None without dropout
    logits: np.ndarray  # z_L
    deltas: list[np.ndarray]  # dL/dz_i, i = 1..L, filled by the backward pass
    inputs: np.ndarray = field(init=False)  # a_0, set per batch


@dataclass
class History:
    """Per-epoch records of :meth:`MLP.fit` and the epoch whose weights were kept."""

    rows: list[dict[str, float]]
    best_epoch: int

    def __getitem__(self, key: str) -> list[float]:
        """The column ``key`` over the epochs, e.g. ``history["val_loss"]``."""
        return [row[key] for row in self.rows]


class MLP:
    """A fully connected network trained by back-propagation, in NumPy.

    ``sizes``: ``[n_in, hidden..., n_out]``. Hidden layers use ``activation``
    ("relu", "sigmoid", "tanh"); the output is "softmax" (integer labels, cross-entropy),
    "sigmoid" (0/1 targets, binary cross-entropy) or "linear" (real targets, MSE).
    ``l1``/``l2`` penalise the weights, ``dropout`` is the probability of dropping each
    hidden unit during training. ``init`` is "he" or "xavier" (default: he for relu).
    """

    def __init__(
        self,
        sizes: list[int],
        activation: str = "relu",
        output: str = "softmax",
        l1: float = 0.0,
        l2: float = 0.0,
        dropout: float = 0.0,
        init: str | None = None,
        seed: int = 0,
        dtype: type = np.float32,
    ) -> None:
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"sizes must list at least two positive layer widths, got {sizes}.")
        if activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {activation!r}; expected one of {sorted(HIDDEN_ACTIVATIONS)}."
            )
        if output not in OUTPUT_LAYERS:
            raise ValueError(f"Unknown output {output!r}; expected one of {sorted(OUTPUT_LAYERS)}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a probability in [0, 1), got {dropout}.")
        self.sizes = [int(s) for s in sizes]
        self.activation, self.output = activation, output
        self.l1, self.l2, self.dropout = float(l1), float(l2), float(dropout)
        self.rng = np.random.default_rng(seed)
        self._activate, self._activation_grad = HIDDEN_ACTIVATIONS[activation]
        self._output_layer = OUTPUT_LAYERS[output]
        scheme = init or ("he" if activation == "relu" else "xavier")
        self.params: Params = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes, self.sizes[1:]), start=1):
            self.params[f"W{i}"] = init_weights(fan_in, fan_out, scheme, self.rng, dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
        self._traces: dict[tuple[int, np.dtype, bool], _Trace] = {}

    @property
    def n_layers(self) -> int:
        """L, the number of weight layers."""
        return len(self.sizes) - 1

    @property
    def dtype(self) -> np.dtype:
        return self.params["W1"].dtype

    # ----------------------------------------------------------------- forward

    def forward(self, X: np.ndarray, train: bool = False) -> np.ndarray:
        """Outputs ``(N, n_out)`` for inputs ``X: (N, n_in)``: probabilities or values.

        ``train=True`` applies dropout (with fresh masks), as during training.
        """
        trace = self._forward(self._check_inputs(X), train)
        return self._output_layer.activation(trace.logits)

    def _forward(self, X: np.ndarray, train: bool) -> _Trace:
        """Run a_0 = X through every layer, keeping what back-propagation needs."""
        trace = self._trace_for(len(X), train)
        trace.inputs = X
        a = X
        for i in range(1, self.n_layers):
            h = trace.hidden[i - 1]
            np.matmul(a, self.params[f"W{i}"], out=h)  # z_i = a_{i-1} W_i + b_i
            h += self.params[f"b{i}"]
            self._activate(h, out=h)  # h_i = f(z_i), overwriting z_i
            mask = trace.masks[i - 1]
            if mask is not None:
                self._draw_dropout_mask(mask)
                np.multiply(h, mask, out=trace.kept[i - 1])  # a_i = h_i * m_i
            a = trace.kept[i - 1]
        np.matmul(a, self.params[f"W{self.n_layers}"], out=trace.logits)
        trace.logits += self.params[f"b{self.n_layers}"]
        return trace

    def _draw_dropout_mask(self, mask: np.ndarray) -> None:
        """m = 1[u >= p] / (1 - p), u ~ U(0, 1): inverted dropout keeps E[a] = h."""
        keep = self.rng.random(mask.shape, dtype=mask.dtype) >= self.dropout
        np.multiply(keep, 1.0 / (1.0 - self.dropout), out=mask)

    def _trace_for(self, rows: int, train: bool) -> _Trace:
        """Buffers for a batch of ``rows`` examples, allocated once per batch size."""
        dropout = train and self.dropout > 0
        key = (rows, self.dtype, dropout)
        if key not in self._traces:
            if len(self._traces) >= 8:
                self._traces.clear()
            widths, dtype = self.sizes[1:-1], self.dtype
            hidden = [np.empty((rows, w), dtype) for w in widths]
            self._traces[key] = _Trace(
                rows=rows,
                hidden=hidden,
                kept=[np.empty((rows, w), dtype) for w in widths] if dropout else hidden,
                masks=[np.empty((rows, w), dtype) for w in widths]
                if dropout
                else [None] * len(widths),
                logits=np.empty((rows, self.sizes[-1]), dtype),
                deltas=[np.empty((rows, w), dtype) for w in self.sizes[1:]],
            )
        return self._traces[key]

    # ----------------------------------------------------------------- loss

    def penalty(self) -> float:
        """l1 sum |W| + l2 sum W^2 over the weight matrices (biases are not penalised)."""
        total = 0.0
        for i in range(1, self.n_layers + 1):
            weights = self.params[f"W{i}"]
            if self.l1:
                total += self.l1 * float(np.abs(weights).sum())
            if self.l2:
                total += self.l2 * float(np.vdot(weights, weights))
        return total

    def loss(self, X: np.ndarray, y: np.ndarray, train: bool = False) -> float:
        """Mean data loss on ``(X, y)`` plus the weight penalties (no dropout unless ``train``)."""
        trace = self._forward(self._check_inputs(X), train)
        return (
            self._output_layer.loss(trace.logits, self._check_targets(y, len(X))) + self.penalty()
        )

    # ----------------------------------------------------------------- backward

    def gradients(self, X: np.ndarray, y: np.ndarray) -> Params:
        """d loss / d param for every parameter (same keys and shapes as ``params``).

        The loss is the training loss (with dropout, if any; exact and deterministic without).
        """
        grads = {name: np.empty_like(p) for name, p in self.params.items()}
        trace = self._forward(self._check_inputs(X), train=True)
        self._backward(trace, self._check_targets(y, len(X)), grads)
        return grads

    def _backward(self, trace: _Trace, y: np.ndarray, grads: Params) -> float:
        """Fill ``grads`` by back-propagation through ``trace``; return the data loss."""
        L = self.n_layers
        data_loss = self._output_layer.loss_and_delta(trace.logits, y, trace.deltas[L - 1])
        for i in range(L, 0, -1):
            delta = trace.deltas[i - 1]  # dL/dz_i
            a_prev = trace.inputs if i == 1 else trace.kept[i - 2]
            weights = self.params[f"W{i}"]
            np.matmul(a_prev.T, delta, out=grads[f"W{i}"])  # dL/dW_i = a_{i-1}^T delta_i
            self._add_penalty_gradient(weights, grads[f"W{i}"])
            np.sum(delta, axis=0, out=grads[f"b{i}"])  # dL/db_i = sum_n delta_i[n]
            if i > 1:
                delta_prev = np.matmul(delta, weights.T, out=trace.deltas[i - 2])  # dL/da_{i-1}
                mask = trace.masks[i - 2]
                if mask is not None:
                    delta_prev *= mask  # da/dh = m
                self._activation_grad(trace.hidden[i - 2], delta_prev)  # dh/dz = f'(h)
        return data_loss

    def _add_penalty_gradient(self, weights: np.ndarray, grad: np.ndarray) -> None:
        """grad += l1 sign(W) + 2 l2 W (the subgradient of |W| at 0 is taken as 0)."""
        if self.l1:
            grad += self.l1 * np.sign(weights)
        if self.l2:
            grad += (2.0 * self.l2) * weights

    # ----------------------------------------------------------------- training

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int = 10,
        lr: float = 0.1,
        batch_size: int | None = None,
        optimizer: str = "sgd",
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        early_stopping: int | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> History:
        """Train by gradient descent; return the per-epoch history.

        ``batch_size``: None = batch gradient descent (the whole set per step), 1 = stochastic,
        k = mini-batches of k shuffled examples. ``optimizer``: "sgd", "momentum" or "adam".
        ``early_stopping=patience`` stops after ``patience`` epochs without a lower validation
        loss and restores the weights of the best epoch. ``on_epoch(row)`` sees each record
        (``epoch``, ``train_loss``: the mean loss of the epoch's batches, ``time_s``: training
        time so far, and ``val_loss``/``val_accuracy`` with a validation set) and may add to it.
        Raises :class:`dlnd.errors.TrainingDiverged` if the loss becomes NaN or infinite.
        """
        X, y = self._check_inputs(X), self._check_targets(y, len(X))
        has_val = X_val is not None and y_val is not None
        if has_val:
            X_val, y_val = self._check_inputs(X_val), self._check_targets(y_val, len(X_val))
        if early_stopping is not None and not has_val:
            raise ValueError("early_stopping needs a validation set: pass X_val and y_val.")
        step_rows = len(X) if batch_size is None else int(batch_size)
        if step_rows < 1:
            raise ValueError(f"batch_size must be None or a positive integer, got {batch_size}.")
        update = make_optimizer(optimizer, self.params, lr)
        grads = {name: np.empty_like(p) for name, p in self.params.items()}
        rows, best_loss, best_epoch, best_params = [], np.inf, 0, None
        training_time = 0.0
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            # A diverging run overflows; that is reported once, below, instead of as warnings.
            with np.errstate(over="ignore", invalid="ignore"):
                train_loss = self._train_epoch(X, y, step_rows, update, grads)
            training_time += time.perf_counter() - started
            row = {"epoch": epoch, "train_loss": train_loss, "time_s": training_time}
            if has_val:
                row.update(self.evaluate(X_val, y_val, prefix="val_"))
            rows.append(row)
            if not np.isfinite(train_loss):
                raise TrainingDiverged(
                    f"The training loss became {train_loss} in epoch {epoch}; "
                    f"lower the learning rate (lr={lr}) and train again."
                )
            if on_epoch is not None:
                on_epoch(row)
            monitored = row["val_loss"] if has_val else train_loss
            if monitored < best_loss:
                best_loss, best_epoch = monitored, epoch
                if early_stopping is not None:
                    best_params = {name: p.copy() for name, p in self.params.items()}
            elif early_stopping is not None and epoch - best_epoch >= early_stopping:
                break
        if best_params is not None:
            for name, p in self.params.items():
                p[...] = best_params[name]
        return History(rows, best_epoch if best_params is not None else len(rows))

    def _train_epoch(
        self, X: np.ndarray, y: np.ndarray, step_rows: int, update: Optimizer, grads: Params
    ) -> float:
        """One pass over ``(X, y)`` in steps of ``step_rows`` examples; the mean batch loss."""
        if step_rows >= len(X):
            return self._train_step(X, y, update, grads)
        order = self.rng.permutation(len(X))
        batches: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        total = 0.0
        for start in range(0, len(X), step_rows):
            index = order[start : start + step_rows]
            if len(index) not in batches:
                batches[len(index)] = (
                    np.empty((len(index), X.shape[1]), X.dtype),
                    np.empty((len(index), *y.shape[1:]), y.dtype),
                )
            X_batch, y_batch = batches[len(index)]
            np.take(X, index, axis=0, out=X_batch)
            np.take(y, index, axis=0, out=y_batch)
            total += self._train_step(X_batch, y_batch, update, grads) * len(index)
        return total / len(X)

    def _train_step(self, X: np.ndarray, y: np.ndarray, update: Optimizer, grads: Params) -> float:
        """Forward, backward and one optimizer update on one batch; the batch's data loss."""
        data_loss = self._backward(self._forward(X, train=True), y, grads)
        update.step(self.params, grads)
        return data_loss

    # ----------------------------------------------------------------- evaluation

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels ``(N,)`` for softmax, 0/1 labels (shape of the outputs) for sigmoid,
        values ``(N, n_out)`` for a linear output."""
        outputs = self.forward(X)
        if self.output == "softmax":
            return outputs.argmax(axis=1)
        if self.output == "sigmoid":
            return (outputs >= 0.5).astype(np.int64)
        return outputs

    def evaluate(self, X: np.ndarray, y: np.ndarray, prefix: str = "") -> dict[str, float]:
        """Mean data loss (no penalty, no dropout) and, for classifiers, accuracy on ``(X, y)``."""
        X, y = self._check_inputs(X), self._check_targets(y, len(X))
        trace = self._forward(X, train=False)
        metrics = {f"{prefix}loss": self._output_layer.loss(trace.logits, y)}
        if self.output == "softmax":
            metrics[f"{prefix}accuracy"] = float(np.mean(trace.logits.argmax(axis=1) == y))
        elif self.output == "sigmoid":
            predicted = trace.logits >= 0  # s(z) >= 0.5  <=>  z >= 0
            metrics[f"{prefix}accuracy"] = float(np.mean(predicted == y.reshape(predicted.shape)))
        return metrics

    # ----------------------------------------------------------------- validation

    def _check_inputs(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(
                f"X must have shape (N, {self.sizes[0]}), got {X.shape}; "
                "pass one row of features per example."
            )
        return X

    def _check_targets(self, y: np.ndarray, rows: int) -> np.ndarray:
        if self.output == "softmax":
            y = np.asarray(y)
            if y.shape != (rows,) or not np.issubdtype(y.dtype, np.integer):
                raise ValueError(
                    f"softmax output needs integer class labels of shape ({rows},), "
                    f"got {y.dtype} {y.shape}."
                )
            if y.size and (y.min() < 0 or y.max() >= self.sizes[-1]):
                raise ValueError(f"labels must lie in 0..{self.sizes[-1] - 1}.")
            return y
        y = np.asarray(y, dtype=self.dtype)
        if y.size != rows * self.sizes[-1]:
            raise ValueError(
                f"{self.output} output needs {self.sizes[-1]} target value(s) per example "
                f"({rows} rows), got shape {y.shape}."
            )
        return y.reshape(rows, self.sizes[-1])
