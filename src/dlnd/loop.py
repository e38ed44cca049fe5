"""The one training loop, for every kind of training.

A recipe describes only what differs as a :class:`Task`: its modules, its optimizers, how an
epoch's batches are drawn for this process, and the step itself. The loop owns every
mechanic: per-epoch seeding, progress bars, metrics summed over processes, ``metrics.jsonl``
and learning curves, the best weights and early stopping, atomic checkpoints, an exact
``--resume``, the stop on a NaN/inf loss, bf16 autocast and data-parallel training.

A supervised classifier is one task (:func:`dlnd.trainer.fit`); a GAN is another, with two
modules and two optimizers; a language model carries its hidden state across ordered
batches; style transfer optimises an image held by a module. One epoch of any of them::

    seed this process for (seed, epoch, rank); task.start_epoch(epoch)
    for batch in task.train_batches(epoch, dist):      # this process's share, on the device
        metrics = task.train_step(batch, step)          # calls step.update(...) once or more
    val_metrics = mean of task.eval_step over task.eval_batches(dist), without gradients
    extra = task.end_epoch(epoch, ctx)                  # samples, figures, more metrics
    best weights, early stopping, metrics.jsonl, checkpoint (rank 0 writes)

``step.update(name, loss)`` performs an optimizer update the same way for every task: stop
every process if the loss is NaN or infinite, zero the gradients, backpropagate, average the
gradients over the processes, clip them, step the optimizer, step its schedule.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from dlnd import distributed
from dlnd.config import OPTIMIZERS, SCHEDULES, TrainConfig
from dlnd.distributed import DistState, resolve_device
from dlnd.errors import TrainingDiverged, UserError
from dlnd.plots import learning_curves
from dlnd.runs import RunContext, versions
from dlnd.store import STATE_FILE, load_tensors, save_model, save_tensors

Schedule = Any  # a torch.optim.lr_scheduler object, stepped once per update
OptimizerSetup = tuple[torch.optim.Optimizer, Schedule | None]
STATE_FORMAT = 2  # trainer_state.safetensors layout: named modules and optimizers
# On CUDA, reading whether a loss is finite makes the CPU wait for the GPU; check this often.
LAZY_CHECK_EVERY = 50


@dataclass(frozen=True)
class Monitor:
    """What "best" and early stopping go by: a metric of the epoch's row (``val_loss``,
    ``val_accuracy``, ``val_fid`` ...) and whether lower (``min``) or higher (``max``) is
    better."""

    metric: str
    mode: str

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"Monitor mode must be 'min' or 'max', got {self.mode!r}")

    def better(self, value: float, best: float | None) -> bool:
        if best is None:
            return not math.isnan(value)
        return value < best if self.mode == "min" else value > best


def make_optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names, over ``params`` (parameters or parameter groups)."""
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


def make_schedule(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int
) -> Schedule | None:
    """The learning-rate schedule ``cfg`` names, planned over ``total_steps`` updates."""
    if cfg.schedule == "onecycle":
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=max(total_steps, 1), pct_start=0.25
        )
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if cfg.schedule == "none":
        return None
    raise UserError(f"Unknown schedule {cfg.schedule!r}; choose one of {', '.join(SCHEDULES)}.")


class Step:
    """What a task's step gets from the loop: where to compute, bf16, and :meth:`update`."""

    def __init__(self, cfg: TrainConfig, device: torch.device, optimizers: dict[str, Any]):
        self.cfg = cfg
        self.device = device
        self.epoch = 0
        self.optimizers: dict[str, OptimizerSetup] = optimizers
        self.checkpoint_note = "No checkpoint was written yet"
        # Reading a CUDA value waits for the GPU; there, non-finite losses are counted on
        # the device and read every LAZY_CHECK_EVERY updates and at the end of each epoch.
        self.lazy = device.type == "cuda"
        self._nonfinite = torch.zeros((), device=device)
        self._updates = 0
        self._last_bad: tuple[str, str] | None = None

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast for the forward pass when ``--bf16`` is on (a no-op otherwise)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def update(self, name: str, loss: torch.Tensor | Callable[[], torch.Tensor]) -> None:
        """One update of optimizer ``name`` to lower ``loss``.

        ``loss`` is a scalar tensor, or a function computing it for optimizers that
        re-evaluate the loss (L-BFGS). Raises :class:`TrainingDiverged` on every process
        when any process's loss is NaN or infinite.
        """
        if name not in self.optimizers:
            known = ", ".join(self.optimizers)
            raise KeyError(f"No optimizer named {name!r}; the task made: {known}.")
        optimizer, schedule = self.optimizers[name]
        params = [p for group in optimizer.param_groups for p in group["params"]]

        def backward(value: torch.Tensor) -> None:
            self._guard(value, name)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            # Sync point: every process's gradients become their mean over all processes.
            distributed.average_gradients(params)
            if self.cfg.clip_grad > 0:
                nn.utils.clip_grad_norm_(params, self.cfg.clip_grad)

        if callable(loss):

            def closure() -> torch.Tensor:
                value = loss()
                backward(value)
                return value

            optimizer.step(closure)
        else:
            backward(loss)
            optimizer.step()
        if schedule is not None:
            schedule.step()

    def _guard(self, loss: torch.Tensor, name: str) -> None:
        self._updates += 1
        bad = ~torch.isfinite(loss.detach())
        self._nonfinite += bad
        if not self.lazy:
            if bad:
                self._last_bad = (name, f"{float(loss.detach()):g}")
            self.check_finite()
        elif self._updates % LAZY_CHECK_EVERY == 0:
            self.check_finite()

    def check_finite(self) -> None:
        """Stop every process if any loss since the start was NaN or infinite."""
        flag = self._nonfinite.detach().clone()
        distributed.all_reduce_sum(flag)  # sync point: every rank stops together
        if flag.item() == 0:
            return
        name, value = self._last_bad or ("", "NaN or infinite")
        what = "training loss" if name in ("", "model") else f"{name} loss"
        raise TrainingDiverged(
            f"The {what} became {value} in epoch {self.epoch}; stopping. "
            f"{self.checkpoint_note}. Try a lower --lr, --clip-grad 1.0, or check the data "
            "for NaN values."
        )


class Task:
    """What a recipe gives the loop. Subclass it and fill in what your training needs.

    Required: :meth:`modules`, :meth:`optimizers`, :meth:`train_batches`, :meth:`train_step`.
    Optional: validation (:meth:`eval_batches`, :meth:`eval_step`), per-epoch hooks and
    extra state that must survive ``--resume``. ``monitor`` says what "best" means; with
    ``None`` the loop keeps the last weights (a GAN, say) and early stopping is off.
    """

    monitor: Monitor | None = Monitor("val_loss", "min")

    def modules(self) -> dict[str, nn.Module]:
        """The trained modules by name; the loop moves, saves and restores them."""
        raise NotImplementedError

    def optimizers(self, total_steps: int) -> dict[str, OptimizerSetup]:
        """Optimizer and schedule (or ``None``) by name; ``total_steps`` updates per optimizer
        are planned (epochs x batches per epoch). Called once the modules are on the device."""
        raise NotImplementedError

    def train_batches(self, epoch: int, dist: DistState) -> Sequence[Any]:
        """This process's batches of epoch ``epoch`` (tensors, or tuples/dicts of tensors;
        the loop moves them to the device). Every process must get the same number."""
        raise NotImplementedError

    def train_step(self, batch: Any, step: Step) -> dict[str, Any]:
        """Train on one batch through ``step.update``; return batch means to report
        (``{"loss": ...}``), each averaged over the epoch, weighted by :meth:`batch_size`."""
        raise NotImplementedError

    def eval_batches(self, dist: DistState) -> Sequence[Any] | None:
        """This process's validation batches, or ``None`` for no validation."""
        return None

    def eval_step(self, batch: Any, step: Step) -> dict[str, Any]:
        """Batch means on one validation batch (run without gradients, modules in eval mode)."""
        raise NotImplementedError

    def batch_size(self, batch: Any) -> int:
        """How many examples ``batch`` holds (the weight of its metrics)."""
        first = batch[0] if isinstance(batch, tuple | list) else batch
        return len(first)

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch's first batch, modules in train mode (reset a carried
        hidden state, unfreeze layers...). Must depend on ``epoch`` alone for ``--resume``."""

    def end_epoch(self, epoch: int, ctx: RunContext) -> dict[str, float]:
        """Called after validation on every process: save samples or figures (rank 0 writes)
        and return extra metrics for the epoch's row (the same on every process)."""
        return {}

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and JSON that ``--resume`` must restore besides modules and optimizers."""
        return {}, {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the modules (best weights loaded) and the history."""

    modules: dict[str, nn.Module]
    history: list[dict[str, Any]]
    best_epoch: int
    device: str
    stopped_early: bool = False

    @property
    def model(self) -> nn.Module:
        """The trained module of a single-module task."""
        if len(self.modules) != 1:
            raise AttributeError(f"This task trained several modules: {', '.join(self.modules)}")
        return next(iter(self.modules.values()))


def seed_epoch(seed: int, rank: int, epoch: int) -> None:
    """Seed every random generator for one epoch of one process.

    The seed depends on (seed, rank, epoch) only, so an epoch run after ``--resume`` draws
    the same dropout masks and noise as the uninterrupted run, on every rank.
    """
    value = int(np.random.SeedSequence([seed % 2**32, rank, epoch]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (also inside tuples, lists, dicts) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


class Meter:
    """Weighted sums of a step's metrics, kept on the device: no host sync per step."""

    def __init__(self, device: torch.device):
        self.device = device
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.names: list[str] | None = None
        self.sums: torch.Tensor | None = None  # [metric sums..., examples]

    def add(self, values: dict[str, Any], count: int) -> None:
        if self.names is None:
            self.names = list(values)
            self.sums = torch.zeros(len(self.names) + 1, dtype=self.dtype, device=self.device)
        elif list(values) != self.names:
            raise ValueError(f"A step returned metrics {list(values)}; earlier {self.names}.")
        row = [
            torch.as_tensor(v).detach().to(self.device, self.dtype).reshape(())
            for v in values.values()
        ]
        self.sums[:-1] += torch.stack(row) * count
        self.sums[-1] += count

    def running_mean(self) -> float:
        """The first metric's mean so far on this process (reads the device)."""
        return float(self.sums[0] / self.sums[-1]) if self.sums is not None else math.nan

    def means(self) -> dict[str, float]:
        """Means over every process (a sync point: every rank calls it)."""
        names = distributed.broadcast_object(self.names)  # a rank without batches learns them
        if names is None:
            return {}
        if self.sums is None:
            self.sums = torch.zeros(len(names) + 1, dtype=self.dtype, device=self.device)
        distributed.all_reduce_sum(self.sums)
        count = max(float(self.sums[-1]), 1.0)
        return {name: float(total) / count for name, total in zip(names, self.sums[:-1])}


def evaluate_task(task: Task, step: Step, dist: DistState) -> dict[str, float]:
    """Means of ``task.eval_step`` over this process's validation batches, summed over every
    process; ``{}`` when the task has no validation."""
    batches = task.eval_batches(dist)
    if batches is None:
        return {}
    for module in task.modules().values():
        module.eval()
    meter = Meter(step.device)
    with torch.no_grad(), step.autocast():
        for batch in batches:
            batch = to_device(batch, step.device)
            meter.add(task.eval_step(batch, step), task.batch_size(batch))
    return meter.means()


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{name}": value for name, value in values.items()}


class _Loop:
    """State of one :func:`train` call; each method reads on one screen."""

    def __init__(self, ctx: RunContext, task: Task, cfg: TrainConfig, info: dict[str, Any]):
        self.ctx, self.task, self.cfg, self.info = ctx, task, cfg, info
        self.dist = distributed.state()
        self.device = resolve_device(cfg.device)
        self.modules = task.modules()
        if not self.modules or not all(isinstance(m, nn.Module) for m in self.modules.values()):
            raise TypeError("Task.modules() must return a non-empty dict of nn.Module")
        if cfg.patience > 0 and task.monitor is None:
            raise UserError(
                f"{ctx.recipe.name} keeps its last weights (it has no metric to watch), so "
                "--patience (early stopping) does not apply; leave it out."
            )
        memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
        for module in self.modules.values():
            module.to(self.device, memory_format=memory_format)
            distributed.broadcast_module(module)  # sync point: every rank starts from rank 0's
        steps_per_epoch = len(task.train_batches(1, self.dist))
        if steps_per_epoch == 0:
            raise UserError("The training set is too small for one batch; check the data.")
        self.optimizers = task.optimizers(cfg.epochs * steps_per_epoch)
        self.step = Step(cfg, self.device, self.optimizers)
        self.history: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, dict[str, torch.Tensor]] | None = None
        self.bad_epochs = 0
        self.start_epoch = 1

    # --- one epoch ----------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, float]:
        batches = self.task.train_batches(epoch, self.dist)
        meter = Meter(self.device)
        bar = tqdm(
            batches,
            total=len(batches),
            leave=False,
            desc=f"epoch {epoch}/{self.cfg.epochs}",
            disable=None if self.dist.is_main else True,
        )
        for i, batch in enumerate(bar):
            batch = to_device(batch, self.device)
            meter.add(self.task.train_step(batch, self.step), self.task.batch_size(batch))
            if not bar.disable and (not self.step.lazy or i % LAZY_CHECK_EVERY == 0):
                bar.set_postfix({meter.names[0]: f"{meter.running_mean():.4f}"}, refresh=False)
        self.step.check_finite()
        return meter.means()

    def run_epoch(self, epoch: int) -> dict[str, Any]:
        started = time.time()
        self.step.epoch = epoch
        seed_epoch(self.cfg.seed, self.dist.rank, epoch)
        for module in self.modules.values():
            module.train()
        self.task.start_epoch(epoch)
        row: dict[str, Any] = {"epoch": epoch, **_prefixed("train_", self.train_epoch(epoch))}
        for module in self.modules.values():
            distributed.average_buffers(module)  # sync point: one set of batch-norm statistics
        row.update(_prefixed("val_", evaluate_task(self.task, self.step, self.dist)))
        row.update(self.task.end_epoch(epoch, self.ctx))
        row.update(self.learning_rates())
        row["time_s"] = round(time.time() - started, 3)
        return row

    def learning_rates(self) -> dict[str, float]:
        rates = {name: opt.param_groups[0]["lr"] for name, (opt, _) in self.optimizers.items()}
        if len(rates) == 1:
            return {"lr": next(iter(rates.values()))}
        return _prefixed("lr_", rates)

    def run(self) -> TrainResult:
        for epoch in range(self.start_epoch, self.cfg.epochs + 1):
            row = self.run_epoch(epoch)
            self.history.append(row)
            # rank 0 decides, so that every rank stops at the same epoch
            stop = distributed.broadcast_object(self.track_best(row, epoch))
            self.ctx.log_epoch(row)
            self.ctx.info(format_row(row))
            self.save(epoch)
            if stop:
                self.ctx.info(
                    f"early stopping: no better {self.task.monitor.metric} for "
                    f"{self.cfg.patience} epochs"
                )
                break
        if self.best_state is not None:
            for name, module in self.modules.items():
                module.load_state_dict(self.best_state[name])
        if self.ctx.is_main and self.history:
            figure = learning_curves(self.history, self.ctx.recipe.name)
            self.ctx.save_figure(figure, "learning_curves")
        stopped_early = bool(self.history) and self.history[-1]["epoch"] < self.cfg.epochs
        return TrainResult(
            self.modules, self.history, self.best_epoch, str(self.device), stopped_early
        )

    def track_best(self, row: dict[str, Any], epoch: int) -> bool:
        """Remember the best weights; True when early stopping says stop."""
        monitor = self.task.monitor
        if monitor is None:
            self.best_epoch = epoch  # the last weights are the ones kept
            return False
        if monitor.metric not in row:
            raise KeyError(
                f"The monitored metric {monitor.metric!r} is not among this epoch's "
                f"metrics: {', '.join(row)}."
            )
        value = row[monitor.metric]
        if monitor.better(value, self.best_value):
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = {
                name: copy.deepcopy(module.state_dict()) for name, module in self.modules.items()
            }
            return False
        self.bad_epochs += 1
        return self.cfg.patience > 0 and self.bad_epochs >= self.cfg.patience

    # --- checkpoints --------------------------------------------------------------------
    def kept_states(self) -> dict[str, dict[str, torch.Tensor]]:
        """The weights ``model.safetensors`` holds: the best, or the last without a monitor."""
        if self.best_state is not None:
            return self.best_state
        return {name: module.state_dict() for name, module in self.modules.items()}

    def save(self, epoch: int) -> None:
        """Write the resume state, then the kept model; each file atomically (rank 0 only)."""
        if self.ctx.is_main:
            tensors, meta = self.resume_state(epoch)
            save_tensors(self.ctx.run_dir / STATE_FILE, tensors, meta)
            save_model(self.ctx.run_dir, model_tensors(self.kept_states()), self.model_meta())
        self.step.checkpoint_note = f"Last good checkpoint: epoch {epoch} in {self.ctx.run_dir}"

    def model_meta(self) -> dict[str, Any]:
        best = self.history[self.best_epoch - 1] if self.best_epoch else {}
        return {
            "recipe": self.ctx.recipe.name,
            "config": self.ctx.cfg,
            "info": self.info,
            "modules": list(self.modules),
            "epoch": self.best_epoch,
            "metrics": best,
            "versions": versions(),
        }

    def resume_state(self, epoch: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything ``--resume`` needs, in O(1) size per epoch (the history stays in
        ``metrics.jsonl``), with every module and optimizer under its own name."""
        tensors: dict[str, torch.Tensor] = {}
        for name, module in self.modules.items():
            tensors.update(_with_prefix(f"module.{name}.", module.state_dict()))
        if self.best_state is not None:
            for name, state in self.best_state.items():
                tensors.update(_with_prefix(f"best.{name}.", state))
        optimizers, schedules = {}, {}
        for name, (optimizer, schedule) in self.optimizers.items():
            optimizers[name] = flatten_optimizer(
                optimizer.state_dict(), tensors, f"optimizer.{name}."
            )
            schedules[name] = _json_safe(schedule.state_dict()) if schedule is not None else None
        extra_tensors, extra_meta = self.task.extra_state()
        tensors.update(_with_prefix("task.", extra_tensors))
        meta = {
            "format": STATE_FORMAT,
            "epoch": epoch,
            "modules": list(self.modules),
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "bad_epochs": self.bad_epochs,
            "optimizers": optimizers,
            "schedules": schedules,
            "task": extra_meta,
        }
        return tensors, meta

    def restore(self) -> None:
        """Continue from ``trainer_state.safetensors`` in the run directory (``--resume``)."""
        path = self.ctx.run_dir / STATE_FILE
        if not path.exists():
            self.ctx.info(f"nothing to resume in {self.ctx.run_dir}; starting at epoch 1")
            return
        tensors, meta = load_tensors(path)
        if meta.get("format") != STATE_FORMAT or meta.get("modules") != list(self.modules):
            raise UserError(
                f"{path} was written by another version of dlnd or another model; --resume "
                "cannot continue it. Start a new run."
            )
        for name, module in self.modules.items():
            module.load_state_dict(_only_prefix(f"module.{name}.", tensors))
        if any(key.startswith("best.") for key in tensors):
            self.best_state = {
                name: _only_prefix(f"best.{name}.", tensors) for name in self.modules
            }
        for name, (optimizer, schedule) in self.optimizers.items():
            state = unflatten_optimizer(meta["optimizers"][name], tensors, f"optimizer.{name}.")
            optimizer.load_state_dict(state)
            if schedule is not None and meta["schedules"].get(name):
                schedule.load_state_dict(meta["schedules"][name])
        self.task.load_extra_state(_only_prefix("task.", tensors), meta["task"])
        epoch = meta["epoch"]
        self.history = self.ctx.truncate_metrics(epoch)
        if len(self.history) != epoch:
            raise UserError(
                f"{self.ctx.run_dir / 'metrics.jsonl'} holds {len(self.history)} epochs but the "
                f"checkpoint is at epoch {epoch}; this run cannot be continued."
            )
        self.best_epoch, self.best_value = meta["best_epoch"], meta["best_value"]
        self.bad_epochs = meta["bad_epochs"]
        self.start_epoch = epoch + 1
        self.step.checkpoint_note = f"Last good checkpoint: epoch {epoch} in {self.ctx.run_dir}"
        self.ctx.info(f"resuming {self.ctx.run_dir} after epoch {epoch}")


def train(
    ctx: RunContext, task: Task, cfg: TrainConfig, *, info: dict[str, Any] | None = None
) -> TrainResult:
    """Train ``task`` for ``cfg.epochs`` epochs (continuing the run on ``--resume``).

    ``info`` (JSON) is stored in the checkpoint so that the model can be rebuilt and fed
    later (see ``Recipe.build_model``). Returns the modules with the kept weights loaded.
    """
    if cfg.epochs < 1 or cfg.batch_size < 1 or not math.isfinite(cfg.lr) or cfg.lr <= 0:
        raise UserError(
            f"epochs, batch size and learning rate must be positive (got {cfg.epochs}, "
            f"{cfg.batch_size}, {cfg.lr})."
        )
    loop = _Loop(ctx, task, cfg, info or {})
    if ctx.resumed:
        loop.restore()
    return loop.run()


def model_tensors(states: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors``: one module's state dict as it is, several
    modules' under ``<name>.`` (the state dict of a module holding them as attributes)."""
    if len(states) == 1:
        return next(iter(states.values()))
    return {
        key: value
        for name, state in states.items()
        for key, value in _with_prefix(f"{name}.", state).items()
    }


def format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']:>3}"]
    parts += [
        f"{k} {v:.4f}"
        for k, v in row.items()
        if k not in ("epoch", "time_s") and not k.startswith("lr")
    ]
    parts.append(f"({row['time_s']:.1f}s)")
    return "  ".join(parts)


def _with_prefix(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{key}": value for key, value in tensors.items()}


def _only_prefix(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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


def flatten_optimizer(
    state_dict: dict[str, Any], tensors: dict[str, torch.Tensor], prefix: str
) -> dict[str, Any]:
    """Move an optimizer's tensors into ``tensors`` under ``prefix``; return the JSON rest."""
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{param_id}.{key}"] = value
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor], prefix: str
) -> dict[str, Any]:
    """The optimizer state dict :func:`flatten_optimizer` took apart."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in _only_prefix(prefix, tensors).items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    for param_id, values in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}
