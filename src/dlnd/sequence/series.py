"""``sine-wave``: a small RNN that predicts the next value of a time series.

The series is a sum of two sines with a little noise. Windows of ``seq_len`` values are
the inputs; the same windows shifted by one step are the targets, so at every step t the
network predicts x_{t+1} from x_1 .. x_t, its memory being the hidden state
h_t = tanh(W_ih x_t + W_hh h_{t-1} + b). The last part of the series is held out.

Two plots: one-step-ahead predictions on the held-out part, and the network running free:
after reading a window it feeds its own predictions back in, so errors compound, which shows
how much of the wave's shape it has really learned. The baseline to beat is persistence
(x_{t+1} = x_t).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset

from dlnd.runs import RunContext
from dlnd.trainer import TrainConfig, fit

STEP = 0.25  # time between two samples of the series
FREE_RUN_STEPS = 100  # how far the network runs on its own predictions in the plot
PLOTTED = 160  # held-out values shown


def sine_series(length: int, noise: float = 0.02, seed: int = 0) -> np.ndarray:
    """x_t = sin(t) + 0.5 sin(2.3 t) + noise at t = 0, 0.25, 0.5, ...: (length,) float32."""
    t = np.arange(length) * STEP
    rng = np.random.default_rng(seed)
    values = np.sin(t) + 0.5 * np.sin(2.3 * t) + noise * rng.standard_normal(length)
    return values.astype(np.float32)


def windows(series: np.ndarray, seq_len: int) -> TensorDataset:
    """Every window of ``seq_len`` values and the window one step later:
    inputs (n, seq_len, 1), targets (n, seq_len, 1)."""
    values = torch.from_numpy(series)
    starts = torch.arange(len(series) - seq_len)
    index = starts[:, None] + torch.arange(seq_len)
    return TensorDataset(values[index].unsqueeze(-1), values[index + 1].unsqueeze(-1))


class SeriesRNN(nn.Module):
    """x (N, T, 1) -> the predicted next value at every step (N, T, 1)."""

    def __init__(self, hidden_size: int = 32, layers: int = 1):
        super().__init__()
        self.rnn = nn.RNN(1, hidden_size, layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.rnn(x, state)[0])

    @torch.no_grad()
    def run_free(self, prime: torch.Tensor, steps: int) -> torch.Tensor:
        """Read ``prime`` (T,), then predict ``steps`` values, each from the previous
        prediction: -> (steps,)."""
        outputs, state = self.rnn(prime.view(1, -1, 1))
        value = self.head(outputs[:, -1:])
        predicted = []
        for _ in range(steps):
            predicted.append(value.item())
            outputs, state = self.rnn(value, state)
            value = self.head(outputs)
        return torch.tensor(predicted)


def build_model(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    return SeriesRNN(config["hidden_size"], config["layers"])


def predictions_figure(
    held_out: np.ndarray, one_step: np.ndarray, free_start: int, free_run: np.ndarray
) -> Figure:
    """The held-out series with the one-step predictions, and the free run from
    ``free_start``."""
    time = np.arange(len(held_out)) * STEP
    figure = Figure(figsize=(10, 3.8))
    one_ax, free_ax = figure.subplots(1, 2, sharey=True)
    one_ax.plot(time, held_out, color="0.6", label="series")
    one_ax.plot(time[1 : len(one_step) + 1], one_step, "--", label="predicted next value")
    one_ax.set_title("one step ahead (held-out part)")
    free_time = time[free_start : free_start + len(free_run)]
    free_ax.plot(time, held_out, color="0.6", label="series")
    free_ax.plot(free_time, free_run, "--", color="C3", label="running on its own predictions")
    free_ax.axvline(time[free_start], color="0.3", linewidth=0.8)
    free_ax.set_title(f"free run: {len(free_run)} steps fed back")
    for ax in (one_ax, free_ax):
        ax.set_xlabel("t")
        ax.legend(loc="lower left", fontsize=8)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def run(ctx: RunContext) -> dict[str, float]:
    cfg = TrainConfig.from_cfg(ctx.cfg)
    seq_len = ctx.cfg["seq_len"]
    series = sine_series(ctx.cfg["length"], seed=ctx.cfg["seed"])
    cut = int(0.8 * len(series))
    train_part, held_out = series[:cut], series[cut:]
    train_set, val_set = windows(train_part, seq_len), windows(held_out, seq_len)
    result = fit(
        ctx,
        build_model(ctx.cfg, {}),
        train_set,
        val_set,
        cfg,
        loss_fn=nn.MSELoss(),
        metrics={},
        info={"task": "series-regression", "seq_len": seq_len},
    )
    model = result.model.cpu().eval()
    with torch.no_grad():
        one_step = model(torch.from_numpy(held_out[:-1]).view(1, -1, 1)).view(-1).numpy()
    free_run = model.run_free(torch.from_numpy(held_out[:seq_len]), FREE_RUN_STEPS).numpy()
    figure = predictions_figure(held_out[:PLOTTED], one_step[: PLOTTED - 1], seq_len, free_run)
    ctx.save_figure(figure, "predictions")
    truth = held_out[seq_len : seq_len + FREE_RUN_STEPS]
    return {
        "val_mse": result.history[result.best_epoch - 1]["val_loss"],
        "persistence_mse": float(np.mean((held_out[1:] - held_out[:-1]) ** 2)),
        "free_run_mse": float(np.mean((free_run[: len(truth)] - truth) ** 2)),
    }
