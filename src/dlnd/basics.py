"""PyTorch basics: tensors, autograd and an ``nn.Module`` trained by the shared loop.

The ``spirals`` recipe classifies points of three interleaved spirals with a small MLP. It
needs no data files (the spirals are generated), trains in seconds, and shows the decision
regions a network carves out of the plane.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset

from dlnd.config import positive_int
from dlnd.recipes import Option, Recipe, register
from dlnd.runs import RunContext
from dlnd.trainer import TRAINER_OPTIONS, TrainConfig, evaluate, fit


def make_spirals(n_per_class: int, n_classes: int = 3, noise: float = 0.5, seed: int = 0):
    """Points on ``n_classes`` interleaved spiral arms.

    Returns x: (n_per_class * n_classes, 2) float32 and y: (n,) int64.
    """
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.05, 1.0, n_per_class), n_classes)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    # arm k starts at angle 2*pi*k/K and winds once around while moving outwards
    angle = labels * 2 * math.pi / n_classes + radius * 2 * math.pi
    angle = angle + rng.normal(0.0, noise, angle.shape) * radius
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(labels)


class SpiralNet(nn.Module):
    """x: (batch, 2) -> class scores (batch, n_classes)."""

    def __init__(self, hidden_size: int = 64, n_classes: int = 3):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(2, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build_model(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    return SpiralNet(config["hidden_size"], len(info["classes"]))


def decision_regions(model: nn.Module, points: torch.Tensor, labels: torch.Tensor) -> Figure:
    """The class the model picks at every point of the plane, with the data on top."""
    grid = torch.linspace(-1.2, 1.2, 200)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    with torch.no_grad():
        regions = model(torch.stack([xx.flatten(), yy.flatten()], 1)).argmax(1).reshape(xx.shape)
    colours = ListedColormap(["#d62728", "#1f77b4", "#2ca02c"])
    figure = Figure(figsize=(5, 5))
    ax = figure.subplots()
    ax.contourf(xx, yy, regions, levels=np.arange(-0.5, 3.5), cmap=colours, alpha=0.25)
    ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=colours, s=6, vmin=0, vmax=2)
    ax.set_title("decision regions")
    ax.set_aspect("equal")
    return figure


def run(ctx: RunContext) -> dict[str, float]:
    cfg = TrainConfig.from_cfg(ctx.cfg)
    n = ctx.cfg["points_per_class"]
    x, y = make_spirals(n, seed=ctx.cfg["seed"])
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(ctx.cfg["seed"]))
    split = int(0.8 * len(y))
    train = TensorDataset(x[order[:split]], y[order[:split]])
    val = TensorDataset(x[order[split:]], y[order[split:]])
    info = {"task": "point-classification", "classes": ["arm 0", "arm 1", "arm 2"]}
    result = fit(ctx, build_model(ctx.cfg, info), train, val, cfg, info=info)
    ctx.save_figure(decision_regions(result.model.cpu(), x, y), "decision_regions")
    scores = evaluate(result.model, val, cfg, loss_fn=nn.CrossEntropyLoss())
    return {
        "val_accuracy": scores["accuracy"],
        "val_loss": scores["loss"],
        "best_epoch": result.best_epoch,
    }


SPIRALS = register(
    Recipe(
        name="spirals",
        summary="An nn.Module MLP learns three interleaved spirals (PyTorch basics).",
        dataset="generated spirals",
        target="validation accuracy >= 95%",
        run=run,
        options=(
            Option("--hidden-size", positive_int, 64, "units in each hidden layer"),
            Option("--points-per-class", positive_int, 500, "generated points per spiral arm"),
            *TRAINER_OPTIONS,
        ),
        defaults={"epochs": 60, "batch_size": 64, "lr": 0.01},
        quick={"epochs": 30},
        build_model=build_model,
    )
)
