"""The one training loop every PyTorch recipe uses.

Recipes differ in data, model and metric; the mechanics live here: deterministic shuffling
and sharding, optimisers and learning-rate schedules, bf16 autocast, gradient clipping,
early stopping with the best weights restored, per-epoch metrics, atomic checkpoints,
``--resume``, a stop with a clear message on a NaN/inf loss, and data-parallel training
under ``torchrun`` through exactly the same code path as a single process.

Datasets are anything that returns a whole batch for a *list* of indices
(``torch.utils.data.TensorDataset`` does): data sets here fit in memory, so a batch is one
indexing operation instead of a Python loop over examples.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from dlnd import distributed
from dlnd.checkpoint import STATE_FILE, load_tensors, save_model, save_tensors
from dlnd.errors import TrainingDiverged, UserError
from dlnd.plots import learning_curves
from dlnd.recipes import Option
from dlnd.runs import RunContext, versions

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Transform = Callable[[torch.Tensor], torch.Tensor]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("none", "onecycle", "cosine")


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example correctness of the arg-max class: outputs (N, C), targets (N,) -> (N,)."""
    return (outputs.argmax(dim=1) == targets).float()


@dataclass
class TrainConfig:
    """Every knob of the loop, with its default. Built from a run's config by :meth:`from_cfg`."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    clip_grad: float = 0.0  # max global gradient norm; 0 = no clipping
    patience: int = 0  # early stopping after this many epochs without improvement; 0 = off
    monitor: str = "val_loss"  # what early stopping and the saved "best" model go by
    bf16: bool = False
    channels_last: bool = False
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 1000

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any], **overrides: Any) -> TrainConfig:
        """Take the fields present in a run's ``cfg`` dict, then ``overrides``."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in cfg.items() if k in known and v is not None}
        values.update(overrides)
        return cls(**values)

    @property
    def monitor_mode(self) -> str:
        """'min' for losses and errors, 'max' for everything else (accuracy, ...)."""
        return "min" if ("loss" in self.monitor or "mse" in self.monitor) else "max"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_DEFAULT = TrainConfig()
TRAINER_OPTIONS = (
    Option("--optimizer", str, _DEFAULT.optimizer, "optimiser", choices=OPTIMIZERS),
    Option("--momentum", float, _DEFAULT.momentum, "momentum for sgd-style optimisers"),
    Option("--weight-decay", float, _DEFAULT.weight_decay, "L2 weight decay"),
    Option("--schedule", str, _DEFAULT.schedule, "learning-rate schedule", choices=SCHEDULES),
    Option("--clip-grad", float, _DEFAULT.clip_grad, "clip the global gradient norm (0 = off)"),
    Option(
        "--patience",
        _positive_int,
        _DEFAULT.patience,
        "early-stopping patience in epochs (0 = off)",
    ),
    Option(
        "--bf16", bool, _DEFAULT.bf16, "bf16 autocast (fast on CPUs with AVX-512 bf16 and on GPUs)"
    ),
)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; asking for one that is absent is a user error."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if cuda else "mps" if mps else "cpu"
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise UserError(
            f"--device {name} was asked for but is not available here; use --device cpu."
        )
    if name == "cuda":
        return torch.device("cuda", distributed.state().local_rank)
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict[str, Any]]
    best_epoch: int
    device: str
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _to_device(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, targets = batch
    return inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


def _make_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer in ("sgd", "momentum", "nesterov"):
        momentum = 0.0 if cfg.optimizer == "sgd" else cfg.momentum
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=momentum,
            nesterov=cfg.optimizer == "nesterov",
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise UserError(f"Unknown optimizer {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")


def _make_schedule(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps: int) -> Any:
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=0.25
        )
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    if cfg.schedule == "none":
        return None
    raise UserError(f"Unknown schedule {cfg.schedule!r}; choose one of {', '.join(SCHEDULES)}.")


def _batches_of(dataset: Any, indices: list[torch.Tensor]) -> Any:
    for index in indices:
        yield dataset[index]


def evaluate(
    model: nn.Module,
    dataset: Any,
    cfg: TrainConfig,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    metrics: dict[str, Metric] | None = None,
    prepare: Transform | None = None,
) -> dict[str, float]:
    """Mean loss and metrics of ``model`` over ``dataset``, summed over every process."""
    dist = distributed.state()
    metrics = metrics if metrics is not None else {"accuracy": accuracy}
    indices = batch_indices(
        len(dataset),
        cfg.eval_batch_size * dist.world_size,
        shuffle=False,
        seed=0,
        epoch=0,
        rank=dist.rank,
        world=dist.world_size,
    )
    # With world > 1 a tail of fewer than world examples is left out by batch_indices; give
    # it to rank 0 so that every example is counted exactly once.
    covered = sum(len(i) for i in indices) * dist.world_size
    if dist.is_main and covered < len(dataset):
        indices.append(torch.arange(covered, len(dataset)))
    sums = torch.zeros(2 + len(metrics), dtype=torch.float64)  # [count, loss, *metrics]
    for outputs, targets in _outputs(model, dataset, indices, cfg, prepare):
        loss = float(loss_fn(outputs, targets)) if loss_fn is not None else 0.0
        _add_batch(sums, outputs, targets, loss, metrics)
    distributed.all_reduce_sum(sums)
    count = max(float(sums[0]), 1.0)
    result = {"loss": float(sums[1]) / count} if loss_fn is not None else {}
    result.update({name: float(sums[2 + i]) / count for i, name in enumerate(metrics)})
    return result


def predict(
    model: nn.Module, dataset: Any, cfg: TrainConfig, *, prepare: Transform | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """All outputs and targets for ``dataset`` in order: ((N, C) float32, (N,))."""
    indices = batch_indices(len(dataset), cfg.eval_batch_size, shuffle=False, seed=0, epoch=0)
    pairs = [(out.cpu(), y.cpu()) for out, y in _outputs(model, dataset, indices, cfg, prepare)]
    return torch.cat([out for out, _ in pairs]), torch.cat([y for _, y in pairs])


def _outputs(
    model: nn.Module,
    dataset: Any,
    indices: list[torch.Tensor],
    cfg: TrainConfig,
    prepare: Transform | None,
) -> Any:
    """(outputs as float32, targets) for each batch of ``indices``, in eval mode, no gradients."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad(), _autocast(device, cfg.bf16):
        for batch in _batches_of(dataset, indices):
            inputs, targets = _to_device(batch, device)
            if prepare is not None:
                inputs = prepare(inputs)
            yield model(inputs).float(), targets


def _add_batch(
    sums: torch.Tensor,
    outputs: torch.Tensor,
    targets: torch.Tensor,
    loss: float,
    metrics: dict[str, Metric],
) -> None:
    """Add one batch to ``sums`` = [examples, loss sum, metric sums...] (means come later)."""
    with torch.no_grad():
        sums[0] += len(targets)
        sums[1] += loss * len(targets)
        for i, metric in enumerate(metrics.values()):
            sums[2 + i] += float(metric(outputs, targets).sum())


def _autocast(device: torch.device, enabled: bool) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


class _Loop:
    """State of one ``fit`` call; split into methods so each reads on one screen."""

    def __init__(
        self, ctx, model, train_set, val_set, cfg, loss_fn, metrics, prepare, augment, info
    ):
        self.ctx, self.cfg = ctx, cfg
        self.train_set, self.val_set = train_set, val_set
        self.loss_fn, self.prepare, self.augment = loss_fn, prepare, augment
        self.metrics = metrics if metrics is not None else {"accuracy": accuracy}
        self.info = info or {}
        self.dist = distributed.state()
        self.device = resolve_device(cfg.device)
        memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=memory_format)
        self.module = self.model  # the unwrapped model, for checkpoints
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.optimizer = _make_optimizer(cfg, self.model.parameters())
        self.steps_per_epoch = len(self._train_batches(0))
        self.schedule = _make_schedule(cfg, self.optimizer, cfg.epochs * self.steps_per_epoch)
        self.history: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.best_epoch = 0
        self.best_state = copy.deepcopy(self.module.state_dict())
        self.bad_epochs = 0
        self.start_epoch = 1

    def _train_batches(self, epoch: int) -> list[torch.Tensor]:
        return batch_indices(
            len(self.train_set),
            self.cfg.batch_size,
            shuffle=True,
            seed=self.cfg.seed,
            epoch=epoch,
            rank=self.dist.rank,
            world=self.dist.world_size,
        )

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        self.model.train()
        sums = torch.zeros(2 + len(self.metrics), dtype=torch.float64)
        batches = self._train_batches(epoch)
        bar = tqdm(
            _batches_of(self.train_set, batches),
            total=len(batches),
            leave=False,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=None if self.dist.is_main else True,
        )
        for batch in bar:
            inputs, targets = _to_device(batch, self.device)
            if self.prepare is not None:
                inputs = self.prepare(inputs)
            if self.augment is not None:
                inputs = self.augment(inputs)
            if cfg.channels_last and inputs.dim() == 4:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with _autocast(self.device, cfg.bf16):
                outputs = self.model(inputs)
                loss = self.loss_fn(outputs.float(), targets)
            loss_value = float(loss.detach())
            self._check_finite(loss_value, epoch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
            self.optimizer.step()
            if self.schedule is not None:
                self.schedule.step()
            _add_batch(sums, outputs.float(), targets, loss_value, self.metrics)
            bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
        distributed.all_reduce_sum(sums)
        count = max(float(sums[0]), 1.0)
        row = {"train_loss": float(sums[1]) / count}
        row.update(
            {f"train_{name}": float(sums[2 + i]) / count for i, name in enumerate(self.metrics)}
        )
        return row

    def _check_finite(self, loss: float, epoch: int) -> None:
        bad = torch.tensor([0.0 if math.isfinite(loss) else 1.0])
        distributed.all_reduce_sum(bad)  # every rank stops together
        if bad.item() > 0:
            kept = f"epoch {epoch - 1}" if epoch > 1 else "none yet"
            raise TrainingDiverged(
                f"The training loss became {loss} in epoch {epoch}; stopping. "
                f"Last good checkpoint: {kept} in {self.ctx.run_dir}. "
                "Try a lower --lr, --clip-grad 1.0, or check the data for NaN values."
            )

    def run(self) -> TrainResult:
        for epoch in range(self.start_epoch, self.cfg.epochs + 1):
            started = time.time()
            row = {"epoch": epoch, **self.train_epoch(epoch)}
            if self.val_set is not None:
                scores = evaluate(
                    self.module,
                    self.val_set,
                    self.cfg,
                    loss_fn=self.loss_fn,
                    metrics=self.metrics,
                    prepare=self.prepare,
                )
                row.update({f"val_{k}": v for k, v in scores.items()})
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            row["time_s"] = round(time.time() - started, 3)
            self.history.append(row)
            stop = self._track_best(row, epoch)
            self.ctx.log_epoch(row)
            self.ctx.info(_format_row(row))
            self._save(epoch)
            if stop:
                self.ctx.info(
                    f"early stopping: no better {self.cfg.monitor} for {self.cfg.patience} epochs"
                )
                break
        self.module.load_state_dict(self.best_state)
        if self.ctx.is_main and self.history:
            self.ctx.save_figure(
                learning_curves(self.history, self.ctx.recipe.name), "learning_curves"
            )
        stopped_early = bool(self.history) and self.history[-1]["epoch"] < self.cfg.epochs
        return TrainResult(
            self.module, self.history, self.best_epoch, str(self.device), stopped_early
        )

    def _track_best(self, row: dict[str, Any], epoch: int) -> bool:
        """Remember the best weights; True when early stopping says stop."""
        value = row.get(self.cfg.monitor, row.get("train_loss"))
        monitor_mode = self.cfg.monitor_mode if self.cfg.monitor in row else "min"
        if _is_better(value, self.best_value, monitor_mode):
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = copy.deepcopy(self.module.state_dict())
            return False
        self.bad_epochs += 1
        return self.cfg.patience > 0 and self.bad_epochs >= self.cfg.patience

    # --- checkpoints -------------------------------------------------------------------
    def _save(self, epoch: int) -> None:
        """Write the resume state, then the best model; each file atomically (rank 0 only)."""
        if not self.ctx.is_main:
            return
        tensors: dict[str, torch.Tensor] = {}
        tensors.update({f"model.{k}": v for k, v in self.module.state_dict().items()})
        tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        optim_meta = _flatten_optimizer(self.optimizer.state_dict(), tensors)
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {
            "epoch": epoch,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "bad_epochs": self.bad_epochs,
            "optimizer": optim_meta,
            "schedule": _json_safe(self.schedule.state_dict()) if self.schedule else None,
        }
        save_tensors(self.ctx.run_dir / STATE_FILE, tensors, meta)
        best_metrics = self.history[self.best_epoch - 1] if self.best_epoch else {}
        save_model(
            self.ctx.run_dir, self.best_state, self._model_meta(self.best_epoch, best_metrics)
        )

    def _model_meta(self, epoch: int, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "recipe": self.ctx.recipe.name,
            "config": self.ctx.cfg,
            "info": self.info,
            "epoch": epoch,
            "metrics": metrics,
            "versions": versions(),
        }

    def restore(self) -> None:
        """Continue from ``trainer_state.safetensors`` in the run directory (``--resume``)."""
        path = self.ctx.run_dir / STATE_FILE
        if not path.exists():
            self.ctx.info(f"nothing to resume in {self.ctx.run_dir}; starting at epoch 1")
            return
        tensors, meta = load_tensors(path)
        self.module.load_state_dict(_prefixed(tensors, "model."))
        self.best_state = _prefixed(tensors, "best.")
        self.optimizer.load_state_dict(_unflatten_optimizer(meta["optimizer"], tensors))
        if self.schedule is not None and meta["schedule"]:
            self.schedule.load_state_dict(meta["schedule"])
        torch.set_rng_state(tensors["rng.torch"])
        self.history = meta["history"]
        self.best_epoch, self.best_value = meta["best_epoch"], meta["best_value"]
        self.bad_epochs = meta["bad_epochs"]
        self.start_epoch = meta["epoch"] + 1
        self.ctx.truncate_metrics(meta["epoch"])
        self.ctx.info(f"resuming {self.ctx.run_dir} after epoch {meta['epoch']}")


def _format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']:>3}"]
    parts += [f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "lr", "time_s")]
    parts.append(f"({row['time_s']:.1f}s)")
    return "  ".join(parts)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _json_safe(value: Any) -> Any:
    """Drop what JSON cannot hold (functions, tensors) from a scheduler's state dict."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items() if _is_jsonable(v)}
    return value


def _is_jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _flatten_optimizer(
    state_dict: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Move the optimizer's tensors into ``tensors``; return the JSON-able rest."""
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{param_id}.{key}"] = value
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, param_id, key = name.split(".", 2)
            state.setdefault(int(param_id), {})[key] = value
    for param_id, values in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def fit(
    ctx: RunContext,
    model: nn.Module,
    train_set: Any,
    val_set: Any | None,
    cfg: TrainConfig,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    metrics: dict[str, Metric] | None = None,
    prepare: Transform | None = None,
    augment: Transform | None = None,
    info: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_set``, validating on ``val_set`` after every epoch.

    ``loss_fn(outputs, targets)`` returns the mean loss (default: cross-entropy);
    ``metrics`` map names to per-example values, averaged over a data set (default:
    accuracy); ``prepare`` runs on every batch on the device (e.g. uint8 -> float),
    ``augment`` on training batches only. ``info`` (JSON) is stored in the checkpoint so the
    model can be rebuilt and fed later. Returns the model with its best weights loaded.
    """
    if len(train_set) == 0:
        raise UserError("The training set is empty; check --data-dir and the recipe's options.")
    if cfg.epochs < 1 or cfg.batch_size < 1 or not math.isfinite(cfg.lr) or cfg.lr <= 0:
        raise UserError(
            f"epochs, batch size and learning rate must be positive (got {cfg.epochs}, "
            f"{cfg.batch_size}, {cfg.lr})."
        )
    loop = _Loop(
        ctx,
        model,
        train_set,
        val_set,
        cfg,
        loss_fn or nn.CrossEntropyLoss(),
        metrics,
        prepare,
        augment,
        info,
    )
    # Each process draws its own dropout/augmentation noise; rank 0 matches one process.
    torch.manual_seed(cfg.seed + loop.dist.rank)
    if ctx.resumed:
        loop.restore()
    return loop.run()
