"""Plots shared by every recipe: learning curves from a run's per-epoch history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure


def learning_curves(history: Sequence[dict[str, Any]], title: str = "") -> Figure:
    """One panel per quantity (loss, accuracy, ...), train and validation on the same axes.

    ``history`` rows look like
    ``{"epoch": 3, "train_loss": .., "val_loss": .., "val_accuracy": ..}``.
    """
    names = sorted(
        {k.split("_", 1)[1] for row in history for k in row if k.startswith(("train_", "val_"))},
        key=lambda n: (n != "loss", n),
    )
    figure = Figure(figsize=(5 * max(len(names), 1), 3.6))
    axes = figure.subplots(1, max(len(names), 1), squeeze=False)[0]
    epochs = [row["epoch"] for row in history]
    for ax, name in zip(axes, names):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [row.get(f"{split}_{name}") for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
