"""Supervised training with the shared loop: ``fit(ctx, model, train_set, val_set, cfg)``.

Most recipes train one model on ``(inputs, targets)`` pairs drawn in shuffled order; this
module is that case, written as one :class:`dlnd.loop.Task`. Everything else about training
(checkpoints, ``--resume``, early stopping, bf16, data-parallel) lives in :mod:`dlnd.loop`.

Datasets are anything that returns a whole batch for a *tensor* of indices
(``torch.utils.data.TensorDataset`` does): data sets here fit in memory, so a batch is one
indexing operation instead of a Python loop over examples.

This is also the one import point of the loop for recipes: ``from dlnd.trainer import
Task, Step, Monitor, train, fit, TrainConfig, TRAINER_OPTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from dlnd import distributed
from dlnd.config import TRAINER_OPTIONS, TrainConfig
from dlnd.distributed import DistState, resolve_device
from dlnd.errors import UserError
from dlnd.loop import (
    Monitor,
    Step,
    Task,
    TrainResult,
    evaluate_task,
    make_optimizer,
    make_schedule,
    seed_epoch,
    to_device,
    train,
)
from dlnd.runs import RunContext

__all__ = [
    "TRAINER_OPTIONS",
    "Monitor",
    "Step",
    "SupervisedTask",
    "Task",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "batch_indices",
    "evaluate",
    "fit",
    "make_optimizer",
    "make_schedule",
    "predict",
    "resolve_device",
    "seed_epoch",
    "train",
]

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Transform = Callable[[torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example correctness of the arg-max class: outputs (N, C), targets (N,) -> (N,)."""
    return (outputs.argmax(dim=1) == targets).float()


def batch_indices(
    n: int, batch_size: int, *, shuffle: bool, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[torch.Tensor]:
    """This process's share of each global batch of one epoch.

    The permutation depends only on (seed, epoch), so a resumed run sees the same order, and
    rank r takes positions r, r+W, r+2W, ... of every global batch: the W shards of a batch
    together are exactly the batch a single process would use. A last batch too small to
    give every rank an example is dropped.
    """
    if shuffle:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    batches = []
    for start in range(0, n, batch_size):
        batch = order[start : start + batch_size]
        batch = batch[: len(batch) - len(batch) % world]
        if len(batch):
            batches.append(batch[rank::world])
    return batches


def eval_indices(n: int, batch_size: int, dist: DistState) -> list[torch.Tensor]:
    """This process's share of a data set in order, every example counted exactly once."""
    indices = batch_indices(
        n, batch_size * dist.world_size, shuffle=False, seed=0, epoch=0,
        rank=dist.rank, world=dist.world_size,
    )  # fmt: skip
    # batch_indices leaves out a tail of fewer than world examples: rank 0 takes it.
    covered = sum(len(i) for i in indices) * dist.world_size
    if dist.is_main and covered < n:
        indices.append(torch.arange(covered, n))
    return indices


class IndexedBatches(Sequence):
    """The batches ``dataset[index]`` for a list of index tensors, made when iterated."""

    def __init__(self, dataset: Any, indices: list[torch.Tensor]):
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[self.indices[i]]

    def __iter__(self) -> Iterator[Any]:
        for index in self.indices:
            yield self.dataset[index]


def mean_of(values: torch.Tensor) -> torch.Tensor:
    """The mean, computed in float64 where the device has it (so that sums of means over
    shards equal the whole set's sum exactly)."""
    dtype = torch.float32 if values.device.type == "mps" else torch.float64
    return values.to(dtype).mean()


class SupervisedTask(Task):
    """One model, one optimizer, ``(inputs, targets)`` batches in shuffled order.

    ``prepare`` runs on every batch on the device (e.g. uint8 -> float), ``augment`` on
    training batches only; ``metrics`` map names to per-example values (default accuracy).
    """

    def __init__(
        self,
        model: nn.Module,
        train_set: Any,
        val_set: Any | None,
        cfg: TrainConfig,
        *,
        loss_fn: LossFn | None = None,
        metrics: dict[str, Metric] | None = None,
        prepare: Transform | None = None,
        augment: Transform | None = None,
        monitor: Monitor | None = None,
    ):
        self.model, self.train_set, self.val_set, self.cfg = model, train_set, val_set, cfg
        self.loss_fn = loss_fn
        self.metrics = metrics if metrics is not None else {"accuracy": accuracy}
        self.prepare, self.augment = prepare, augment
        default = Monitor("val_loss" if val_set is not None else "train_loss", "min")
        self.monitor = monitor or default

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        optimizer = make_optimizer(self.cfg, self.model.parameters())
        return {"model": (optimizer, make_schedule(self.cfg, optimizer, total_steps))}

    def train_batches(self, epoch: int, dist: DistState) -> IndexedBatches:
        indices = batch_indices(
            len(self.train_set), self.cfg.batch_size, shuffle=True, seed=self.cfg.seed,
            epoch=epoch, rank=dist.rank, world=dist.world_size,
        )  # fmt: skip
        return IndexedBatches(self.train_set, indices)

    def eval_batches(self, dist: DistState) -> IndexedBatches | None:
        if self.val_set is None:
            return None
        indices = eval_indices(len(self.val_set), self.cfg.eval_batch_size, dist)
        return IndexedBatches(self.val_set, indices)

    def inputs(self, inputs: torch.Tensor, training: bool) -> torch.Tensor:
        if self.prepare is not None:
            inputs = self.prepare(inputs)
        if training and self.augment is not None:
            inputs = self.augment(inputs)
        if self.cfg.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def scores(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: mean_of(metric(outputs, targets)) for name, metric in self.metrics.items()}

    def train_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        inputs, targets = batch
        with step.autocast():
            outputs = self.model(self.inputs(inputs, training=True))
            loss = self.loss_fn(outputs.float(), targets)
        step.update("model", loss)
        return {"loss": loss.detach(), **self.scores(outputs.detach().float(), targets)}

    def eval_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        inputs, targets = batch
        outputs = self.model(self.inputs(inputs, training=False)).float()
        loss = {"loss": self.loss_fn(outputs, targets)} if self.loss_fn is not None else {}
        return {**loss, **self.scores(outputs, targets)}


def fit(
    ctx: RunContext,
    model: nn.Module,
    train_set: Any,
    val_set: Any | None,
    cfg: TrainConfig,
    *,
    loss_fn: LossFn | None = None,
    metrics: dict[str, Metric] | None = None,
    prepare: Transform | None = None,
    augment: Transform | None = None,
    info: dict[str, Any] | None = None,
    monitor: Monitor | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_set``, validating on ``val_set`` after every epoch.

    ``loss_fn(outputs, targets)`` returns the mean loss (default: cross-entropy);
    ``metrics`` map names to per-example values, averaged over a data set (default:
    accuracy); ``prepare`` runs on every batch on the device (e.g. uint8 -> float),
    ``augment`` on training batches only. ``monitor`` picks the kept weights (default: the
    lowest validation loss). ``info`` (JSON) is stored in the checkpoint so the model can be
    rebuilt and fed later. Returns the model with its best weights loaded.
    """
    if len(train_set) == 0:
        raise UserError("The training set is empty; check --data-dir and the recipe's options.")
    task = SupervisedTask(
        model,
        train_set,
        val_set,
        cfg,
        loss_fn=loss_fn or nn.CrossEntropyLoss(),
        metrics=metrics,
        prepare=prepare,
        augment=augment,
        monitor=monitor,
    )
    return train(ctx, task, cfg, info=info)


def evaluate(
    model: nn.Module,
    dataset: Any,
    cfg: TrainConfig,
    *,
    loss_fn: LossFn | None = None,
    metrics: dict[str, Metric] | None = None,
    prepare: Transform | None = None,
) -> dict[str, float]:
    """Mean loss (if ``loss_fn`` is given) and metrics of ``model`` over ``dataset``, summed
    over every process."""
    task = SupervisedTask(
        model, None, dataset, cfg, loss_fn=loss_fn, metrics=metrics, prepare=prepare
    )
    device = next(model.parameters()).device
    return evaluate_task(task, Step(cfg, device, {}), distributed.state())


def predict(
    model: nn.Module, dataset: Any, cfg: TrainConfig, *, prepare: Transform | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """All outputs and targets for ``dataset`` in order: ((N, C) float32 on the CPU, (N,))."""
    device = next(model.parameters()).device
    indices = batch_indices(len(dataset), cfg.eval_batch_size, shuffle=False, seed=0, epoch=0)
    step = Step(cfg, device, {})
    outputs, targets = [], []
    model.eval()
    with torch.no_grad(), step.autocast():
        for batch in IndexedBatches(dataset, indices):
            inputs, batch_targets = to_device(batch, device)
            if prepare is not None:
                inputs = prepare(inputs)
            outputs.append(model(inputs).float().cpu())
            targets.append(batch_targets.cpu())
    return torch.cat(outputs), torch.cat(targets)
