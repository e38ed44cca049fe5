"""A small deterministic recipe for testing the trainer through the real command line.

Loaded with ``DLND_RECIPE_MODULES=tiny_recipes`` (this folder on ``PYTHONPATH``).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from dlnd import distributed
from dlnd.checkpoint import save_tensors
from dlnd.recipes import Option, Recipe, register
from dlnd.trainer import TRAINER_OPTIONS, TrainConfig, evaluate, fit


def make_data(seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Two classes separated by a random hyperplane in 8 dimensions."""
    generator = torch.Generator().manual_seed(1234)
    x = torch.randn(600, 8, generator=generator)
    w = torch.randn(8, generator=generator)
    y = (x @ w > 0).long()
    return TensorDataset(x[:500], y[:500]), TensorDataset(x[500:], y[500:])


def build_model(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    return nn.Sequential(
        nn.Linear(8, 32), nn.Tanh(), nn.Dropout(config["dropout"]), nn.Linear(32, 2)
    )


class NanAfter:
    """Cross-entropy that turns into NaN from a given epoch on (for the divergence test)."""

    def __init__(self, epoch: int, steps_per_epoch: int):
        self.limit = (epoch - 1) * steps_per_epoch
        self.calls = 0

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(outputs, targets)
        if outputs.requires_grad:
            self.calls += 1
            if self.calls > self.limit:
                return loss * float("nan")
        return loss


def run(ctx) -> dict[str, float]:
    cfg = TrainConfig.from_cfg(ctx.cfg)
    train, val = make_data()
    loss_fn: Any = nn.CrossEntropyLoss()
    if ctx.cfg["nan_at_epoch"]:
        loss_fn = NanAfter(ctx.cfg["nan_at_epoch"], -(-len(train) // cfg.batch_size))
    sleep = ctx.cfg["epoch_sleep"]
    metrics = {
        "accuracy": lambda out, y: (
            (time.sleep(sleep / 10) if sleep else None) or (out.argmax(1) == y).float()
        )
    }
    result = fit(ctx, build_model(ctx.cfg, {}), train, val, cfg, loss_fn=loss_fn, metrics=metrics)
    if ctx.cfg["dump_params"]:
        rank = distributed.state().rank
        save_tensors(
            f"{ctx.cfg['dump_params']}/rank{rank}.safetensors", result.model.state_dict(), {}
        )
    scores = evaluate(result.model, val, cfg, loss_fn=nn.CrossEntropyLoss())
    return {"val_accuracy": scores["accuracy"], "val_loss": scores["loss"]}


register(
    Recipe(
        name="tiny",
        summary="A tiny linear-separable problem for testing the trainer.",
        dataset="generated",
        target="val_accuracy > 0.9",
        run=run,
        options=(
            Option("--dropout", float, 0.0, "dropout probability"),
            Option("--nan-at-epoch", int, 0, "make the loss NaN from this epoch on"),
            Option("--epoch-sleep", float, 0.0, "seconds to sleep per epoch (for kill tests)"),
            Option("--dump-params", str, "", "folder to write each rank's final parameters"),
            *TRAINER_OPTIONS,
        ),
        defaults={"epochs": 5, "batch_size": 32, "lr": 0.05, "optimizer": "momentum"},
        in_tour=False,
        build_model=build_model,
    )
)
