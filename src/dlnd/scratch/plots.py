"""Figures for the from-scratch lessons. matplotlib is imported inside each function, so the
NumPy engine itself never needs it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dlnd.scratch.mlp import History


def decision_boundaries(
    X: np.ndarray,
    y: np.ndarray,
    boundaries: Sequence[tuple[np.ndarray, float]],
    errors: Sequence[float],
    error_name: str,
    title: str,
) -> Figure:
    """Left: points ``X: (N, 2)`` coloured by ``y`` and the line w . x + b = 0 after each epoch,
    from light (first) to dark (last). Right: ``errors`` per epoch."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.4))
    left, right = figure.subplots(1, 2)
    for label, colour in ((0, "tab:red"), (1, "tab:blue")):
        points = X[y == label]
        left.scatter(
            points[:, 0],
            points[:, 1],
            s=18,
            c=colour,
            edgecolors="k",
            linewidths=0.3,
            label=f"y = {label}",
        )
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0))
    (x_lo, y_lo), (x_hi, y_hi) = X.min(axis=0) - pad, X.max(axis=0) + pad
    xs = np.linspace(x_lo, x_hi, 2)
    shown = max(len(boundaries), 1)
    for k, (weights, bias) in enumerate(boundaries):
        if abs(weights[1]) < 1e-12:
            continue
        darkness = 0.15 + 0.85 * (k + 1) / shown  # light grey early, black at the end
        last = k == len(boundaries) - 1
        # the boundary w1 x1 + w2 x2 + b = 0, solved for x2
        left.plot(
            xs,
            -(weights[0] * xs + bias) / weights[1],
            color="k" if last else str(1 - darkness),
            linewidth=2.2 if last else 0.8,
            label="final line" if last else None,
        )
    left.set(xlim=(x_lo, x_hi), ylim=(y_lo, y_hi), xlabel="x1", ylabel="x2", title=title)
    left.legend(loc="best")
    right.plot(np.arange(1, len(errors) + 1), errors, "-o", markersize=3)
    right.set(xlabel="epoch", ylabel=error_name, title=f"{error_name} per epoch")
    right.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def predictions_vs_actual(
    dates: np.ndarray, hours: np.ndarray, predicted: np.ndarray, actual: np.ndarray
) -> Figure:
    """Hourly rentals over the test days: the network's prediction against the truth."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 4.2))
    ax = figure.subplots()
    steps = np.arange(len(actual))
    ax.plot(steps, actual, color="0.55", linewidth=1.2, label="actual")
    ax.plot(steps, predicted, color="tab:blue", linewidth=1.2, label="prediction")
    midnights = np.flatnonzero(hours == 0)
    ax.set_xticks(midnights[::2], [dates[i][5:] for i in midnights[::2]], rotation=45)
    ax.set(ylabel="bikes rented per hour", title="Test days: predicted vs actual rentals")
    ax.legend()
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def learning_curves_by_setting(histories: dict[str, History]) -> Figure:
    """Loss (left) and accuracy (right) per epoch: training dashed, validation solid, one
    colour per setting. Overfitting shows as a validation loss that turns upwards."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.6))
    axes = figure.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for k, (name, history) in enumerate(histories.items()):
            ax.plot(history["epoch"], history[f"train_{metric}"], "--", color=f"C{k}")
            ax.plot(history["epoch"], history[f"val_{metric}"], "-", color=f"C{k}", label=name)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric}: train (dashed), validation (solid)")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    figure.tight_layout()
    return figure


def loss_by_epoch_and_time(histories: dict[str, History]) -> Figure:
    """Training loss of each variant against epochs (left) and against wall time (right)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2))
    by_epoch, by_time = figure.subplots(1, 2)
    for name, history in histories.items():
        by_epoch.plot(history["epoch"], history["full_train_loss"], "-o", markersize=3, label=name)
        by_time.plot(history["time_s"], history["full_train_loss"], "-o", markersize=3, label=name)
    by_epoch.set(xlabel="epoch", ylabel="training loss", yscale="log")
    by_time.set(xlabel="wall time (s)", ylabel="training loss", yscale="log")
    for ax in (by_epoch, by_time):
        ax.legend()
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def gradient_norms_over_time(
    curves: dict[str, np.ndarray], title: str, caption: str, dashed: Sequence[str] = ()
) -> Figure:
    """||dloss/dh_t|| against t = 0..T on a log scale, one line per network (``curves[name]``:
    ``(T + 1,)``), the ones named in ``dashed`` dashed; ``caption`` goes below the plot."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.5, 5.2))
    ax = figure.subplots()
    for k, (name, norms) in enumerate(curves.items()):
        style = "--" if name in dashed else "-"
        ax.semilogy(np.arange(len(norms)), norms, style, color=f"C{k}", label=name)
    ax.set(xlabel="time step t (the loss is taken at the last step)", ylabel="||dloss/dh_t||")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    figure.text(0.01, 0.0, caption, fontsize=8.5, va="top", wrap=True)
    figure.tight_layout()
    return figure


def accuracy_by_delay(
    delays: Sequence[int], accuracies: dict[str, Sequence[float]], chance: float, title: str
) -> Figure:
    """Accuracy against the delay k, one line per network, with chance level dashed."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.6))
    ax = figure.subplots()
    for name, values in accuracies.items():
        ax.plot(delays, values, "-o", label=name)
    ax.axhline(chance, color="0.5", linestyle="--", label=f"chance ({chance:.2f})")
    ax.set(xlabel="delay k (steps between the marked symbol and the end)", ylabel="accuracy")
    ax.set(ylim=(0, 1.05), title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    return figure
