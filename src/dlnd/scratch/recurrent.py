"""Recurrent networks from scratch: a vanilla RNN and an LSTM, with backpropagation through
time written out step by step.

A recurrent layer reads a sequence x_1 .. x_T one step at a time and carries a hidden state
h_t (the network's memory) from each step to the next. Shapes, for a batch of N sequences:

    x: (T, N, I)    the inputs, time first (as torch.nn.RNN without batch_first)
    h_t: (N, H)     the hidden state after step t; h_0 is the initial state
    outputs: (T, N, H) = h_1 .. h_T

The parameters are laid out as torch.nn.RNN / nn.LSTM lay them out, so weights can be copied
across either way: W_ih (G H, I), W_hh (G H, H), b_ih (G H,), b_hh (G H,), with G = 1 for the
RNN and G = 4 for the LSTM, whose gate rows are stacked in torch's order: input, forget, cell
candidate, output. Every parameter starts as U(-1/sqrt(H), 1/sqrt(H)), as in torch.

Backpropagation through time (BPTT) is ordinary back-propagation on the network unrolled over
the T steps: the same weights appear at every step, so their gradient is the sum over steps,
and the gradient reaching h_t has two sources, the output at step t and step t + 1:

    dL/dh_t = dL/doutputs_t + (d h_{t+1} / d h_t)^T dL/dh_{t+1}

Multiplying T such Jacobians is what makes plain RNN gradients vanish (or explode); the
LSTM's cell state adds a path along which the gradient is only scaled by the forget gate.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dlnd.scratch.activations import sigmoid, sigmoid_grad, tanh, tanh_grad

Params = dict[str, np.ndarray]
State = np.ndarray | tuple[np.ndarray, np.ndarray]  # h for the RNN, (h, c) for the LSTM


def gate_blocks(z: np.ndarray) -> tuple[np.ndarray, ...]:
    """The four (N, H) column blocks of an LSTM's (N, 4H) gate array, as views: i, f, g, o."""
    H = z.shape[1] // 4
    return z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]


class RecurrentLayer:
    """What the RNN and the LSTM share: parameters, input checks and the state of one forward.

    Subclasses set ``gates`` (G) and write ``forward`` and ``backward``.
    """

    gates: ClassVar[int]

    def __init__(
        self, input_size: int, hidden_size: int, seed: int = 0, dtype: type = np.float64
    ) -> None:
        if int(input_size) < 1 or int(hidden_size) < 1:
            raise ValueError(
                f"input_size and hidden_size must be positive, got {input_size} and {hidden_size}."
            )
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        rows = self.gates * self.hidden_size
        shapes = {
            "W_ih": (rows, self.input_size),
            "W_hh": (rows, self.hidden_size),
            "b_ih": (rows,),
            "b_hh": (rows,),
        }
        self.params: Params = {
            name: rng.uniform(-bound, bound, size=shape).astype(dtype)
            for name, shape in shapes.items()
        }
        self._trace: dict[str, np.ndarray] | None = None

    @property
    def dtype(self) -> np.dtype:
        return self.params["W_ih"].dtype

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"

    def _input_projection(self, x: np.ndarray) -> np.ndarray:
        """x_t W_ih^T + b_ih + b_hh for every step at once: (T, N, G H).

        The input does not depend on the hidden state, so its share of every step's
        pre-activation is one matrix product over the whole sequence, before the loop.
        """
        return x @ self.params["W_ih"].T + (self.params["b_ih"] + self.params["b_hh"])

    def _weight_gradients(self, dz: np.ndarray, x: np.ndarray, h_prev: np.ndarray) -> Params:
        """Gradients of the shared weights and of the inputs from dL/dz_t for every step.

        z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh at every t with the same weights, so

            dL/dW_ih = sum_t dz_t^T x_t        dL/dW_hh = sum_t dz_t^T h_{t-1}
            dL/db_ih = dL/db_hh = sum_t sum_n dz_t[n]        dL/dx_t = dz_t W_ih

        and each sum over steps is one matrix product over the flattened (T N) rows.
        dz: (T, N, G H), x: (T, N, I), h_prev: (T, N, H) = h_0 .. h_{T-1}.
        """
        rows = dz.reshape(-1, dz.shape[-1])
        bias = rows.sum(axis=0)
        return {
            "W_ih": rows.T @ x.reshape(-1, self.input_size),
            "W_hh": rows.T @ h_prev.reshape(-1, self.hidden_size),
            "b_ih": bias,
            "b_hh": bias.copy(),
            "x": dz @ self.params["W_ih"],
        }

    # ----------------------------------------------------------------- input checks

    def _check_sequence(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"x must have shape (T, N, {self.input_size}) (steps, batch, features), "
                f"got {x.shape}."
            )
        return x

    def _check_array(self, value: np.ndarray | None, name: str, shape: tuple) -> np.ndarray:
        """``value`` as an array of ``shape`` in the layer's dtype (None -> zeros)."""
        if value is None:
            return np.zeros(shape, dtype=self.dtype)
        value = np.asarray(value, dtype=self.dtype)
        if value.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {value.shape}.")
        return value

    def _check_pair(
        self, pair: object, names: tuple[str, str], shape: tuple
    ) -> tuple[np.ndarray, np.ndarray]:
        """An LSTM (hidden, cell) pair, each of ``shape``; None -> both zeros."""
        if pair is None:
            return np.zeros(shape, self.dtype), np.zeros(shape, self.dtype)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(
                f"({', '.join(names)}) must be a pair of arrays of shape {shape} or None, "
                f"got {type(pair).__name__}."
            )
        return (
            self._check_array(pair[0], names[0], shape),
            self._check_array(pair[1], names[1], shape),
        )

    def _last_forward(self, d_outputs: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The trace of the last forward and ``d_outputs`` checked against its shape."""
        if self._trace is None:
            raise ValueError("backward needs a forward pass first: call forward(x) before it.")
        T, N = self._trace["x"].shape[:2]
        return self._trace, self._check_array(d_outputs, "d_outputs", (T, N, self.hidden_size))


class RNN(RecurrentLayer):
    """A vanilla (Elman) RNN with tanh, the layout of ``torch.nn.RNN`` (one layer).

        h_t = tanh(z_t),   z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh

    ``forward(x, state)`` takes ``x: (T, N, input_size)`` and the initial state ``h_0: (N, H)``
    (None = zeros) and returns ``outputs: (T, N, H)`` and the final state ``h_T: (N, H)``.
    ``backward(d_outputs, d_state)`` returns dL/d(every parameter), dL/dx and dL/dh_0 for the
    last forward, given dL/doutputs and dL/dh_T.
    """

    gates = 1

    def forward(
        self, x: np.ndarray, state: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_sequence(x)
        T, N, _ = x.shape
        h = np.empty((T + 1, N, self.hidden_size), dtype=self.dtype)  # h_0 .. h_T
        h[0] = self._check_array(state, "state", (N, self.hidden_size))
        z = self._input_projection(x)
        W_hh = self.params["W_hh"]
        for t in range(T):
            z[t] += h[t] @ W_hh.T  # z_t = (x_t W_ih^T + b_ih + b_hh) + h_{t-1} W_hh^T
            tanh(z[t], out=h[t + 1])  # (h is indexed from 0 = h_0, so h[t + 1] is step t's)
        self._trace = {"x": x, "h": h}
        return h[1:].copy(), h[T].copy()

    def backward(self, d_outputs: np.ndarray, d_state: np.ndarray | None = None) -> Params:
        """BPTT. ``d_outputs: (T, N, H)``, ``d_state``: dL/dh_T ``(N, H)`` or None (zeros).

        Returns the gradients keyed like ``params``, plus "x" ``(T, N, I)`` and "h0" ``(N, H)``.
        """
        trace, d_outputs = self._last_forward(d_outputs)
        x, h = trace["x"], trace["h"]
        T, N, H = d_outputs.shape
        W_hh = self.params["W_hh"]
        dz = np.empty((T, N, H), dtype=self.dtype)
        # dh = dL/dh_T on entry; in the loop it gathers both paths into h_t
        dh = self._check_array(d_state, "d_state", (N, H)).copy()
        for t in reversed(range(T)):
            dh += d_outputs[t]  # h_t is an output and the input of step t + 1
            np.copyto(dz[t], dh)
            tanh_grad(h[t + 1], dz[t])  # dL/dz_t = dL/dh_t * (1 - h_t^2)
            dh = dz[t] @ W_hh  # dL/dh_{t-1} through z_t = ... + h_{t-1} W_hh^T
        grads = self._weight_gradients(dz, x, h[:-1])
        grads["h0"] = dh
        return grads


class LSTM(RecurrentLayer):
    """A long short-term memory layer, the layout of ``torch.nn.LSTM`` (one layer).

    The state is a pair: the hidden state h_t (the course's short-term memory, STM) and the
    cell state c_t (the long-term memory, LTM). From the four gate pre-activations
    z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh, split into four blocks of H columns:

        i_t = sigmoid(z_i)    input gate
        f_t = sigmoid(z_f)    forget gate: how much long-term memory to keep  (course: forget)
        g_t = tanh(z_g)       cell candidate: new information from x_t and h_{t-1}
        o_t = sigmoid(z_o)    output gate

        c_t = f_t * c_{t-1} + i_t * g_t     the kept old memory plus the learned new one
        h_t = o_t * tanh(c_t)

    In the course's words: the *forget gate* gives f_t * c_{t-1}; the *learn gate* gives
    i_t * g_t (the candidate, with the input gate deciding how much of it to learn); the
    *remember gate* adds the two into the new long-term memory c_t; the *use gate* makes
    the new short-term memory h_t = o_t * tanh(c_t). (The course's use gate passes the memory
    through one more linear layer before the tanh; torch and this layer do not.)

    ``forward(x, state)`` takes ``x: (T, N, input_size)`` and ``state = (h_0, c_0)``, each
    ``(N, H)`` (None = zeros), and returns ``outputs: (T, N, H)`` and ``(h_T, c_T)``.
    ``backward(d_outputs, d_state)`` returns dL/d(every parameter), dL/dx, dL/dh_0, dL/dc_0.
    """

    gates = 4

    def forward(
        self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        x = self._check_sequence(x)
        T, N, _ = x.shape
        H = self.hidden_size
        h = np.empty((T + 1, N, H), dtype=self.dtype)  # h_0 .. h_T
        c = np.empty((T + 1, N, H), dtype=self.dtype)  # c_0 .. c_T
        h[0], c[0] = self._check_pair(state, ("h_0", "c_0"), (N, H))
        gates = self._input_projection(x)  # (T, N, 4H): z_t, then the gates in place
        tanh_c = np.empty((T, N, H), dtype=self.dtype)  # tanh(c_t), kept for backward
        W_hh = self.params["W_hh"]
        for t in range(T):
            z = gates[t]
            z += h[t] @ W_hh.T  # z_t = (x_t W_ih^T + b_ih + b_hh) + h_{t-1} W_hh^T
            i, f, g, o = gate_blocks(z)  # views into z, in torch's gate order
            sigmoid(i, out=i)
            sigmoid(f, out=f)
            tanh(g, out=g)
            sigmoid(o, out=o)
            c[t + 1] = f * c[t] + i * g  # remember gate = forget gate + learn gate
            tanh(c[t + 1], out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=h[t + 1])  # use gate
        self._trace = {"x": x, "h": h, "c": c, "gates": gates, "tanh_c": tanh_c}
        return h[1:].copy(), (h[T].copy(), c[T].copy())

    def backward(
        self, d_outputs: np.ndarray, d_state: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Params:
        """BPTT. ``d_outputs: (T, N, H)``, ``d_state = (dL/dh_T, dL/dc_T)`` or None (zeros).

        Returns the gradients keyed like ``params``, plus "x" ``(T, N, I)``, "h0" and "c0"
        ``(N, H)``.
        """
        trace, d_outputs = self._last_forward(d_outputs)
        h, c, gates, tanh_c = trace["h"], trace["c"], trace["gates"], trace["tanh_c"]
        T, N, H = d_outputs.shape
        W_hh = self.params["W_hh"]
        dz = np.empty((T, N, 4 * H), dtype=self.dtype)
        # dh, dc = dL/dh_T, dL/dc_T on entry; in the loop each gathers every path into step t
        dh, dc = (d.copy() for d in self._check_pair(d_state, ("dL/dh_T", "dL/dc_T"), (N, H)))
        for t in reversed(range(T)):
            i, f, g, o = gate_blocks(gates[t])
            di, df, dg, do = gate_blocks(dz[t])  # views: filling them fills dz_t
            dh += d_outputs[t]  # h_t is an output and the input of step t + 1
            # use gate, h_t = o_t * tanh(c_t):
            np.multiply(dh, tanh_c[t], out=do)  # dL/do_t = dL/dh_t * tanh(c_t)
            dc += dh * o * (1.0 - tanh_c[t] ** 2)  # dL/dc_t: from c_{t+1} and from h_t
            # remember gate, c_t = f_t * c_{t-1} + i_t * g_t:
            np.multiply(dc, c[t], out=df)  # dL/df_t = dL/dc_t * c_{t-1}   (forget gate)
            np.multiply(dc, g, out=di)  # dL/di_t = dL/dc_t * g_t          (learn gate)
            np.multiply(dc, i, out=dg)  # dL/dg_t = dL/dc_t * i_t          (learn gate)
            # through each gate's nonlinearity, to dL/dz_t: sigmoid' = s (1 - s), tanh' = 1 - a^2
            sigmoid_grad(i, di)
            sigmoid_grad(f, df)
            tanh_grad(g, dg)
            sigmoid_grad(o, do)
            # the long-term memory's own path: only scaled by the forget gate, no weights
            dc *= f  # dL/dc_{t-1} = dL/dc_t * f_t
            dh = dz[t] @ W_hh  # dL/dh_{t-1} through z_t = ... + h_{t-1} W_hh^T
        grads = self._weight_gradients(dz, trace["x"], h[:-1])
        grads["h0"], grads["c0"] = dh, dc
        return grads
