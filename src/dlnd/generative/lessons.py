"""Two training lessons DCGAN rests on, each a set of networks trained side by side on the
same batches, in the same order, by the shared loop.

**Weight initialisation.** The same MLP starting from different weights. All zeros or all
ones make every unit of a layer compute the same thing and receive the same gradient, so
they stay identical forever (zeros also pass no gradient through ReLU): training is stuck
near chance. Weights drawn from [0, 1) are all positive: activations grow with the fan-in
n. Scaling by 1/sqrt(n) keeps the variance of each layer's output near that of its input,
Var(sum_i w_i x_i) = n Var(w) Var(x): the "general rule" U(-1/sqrt(n), 1/sqrt(n)), N(0, 1/n),
Xavier (Var(w) = 2 / (n_in + n_out)) and He (Var(w) = 2 / n_in, for ReLU, which zeroes half
of its inputs) all train, as does PyTorch's default (uniform within +-1/sqrt(n)).

**Batch normalisation** (Ioffe & Szegedy, 2015). Each unit's pre-activation x is
standardised over the batch and then given a learned scale and shift:

    y = gamma * (x - mu_B) / sqrt(var_B + eps) + beta

so every layer sees inputs of a steady scale whatever the layers below do, and a larger
learning rate trains. In eval mode the batch statistics are replaced by running averages
gathered during training: a prediction must not depend on which other images share its
batch. The recipe shows both: learning curves with and without batch norm, and the test
accuracy of the batch-norm network in eval mode and in train mode.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from dlnd.distributed import DistState
from dlnd.report import table_lines
from dlnd.runs import RunContext
from dlnd.trainer import (
    IndexedBatches,
    Step,
    Task,
    TrainConfig,
    batch_indices,
    eval_indices,
    make_optimizer,
    make_schedule,
)

# --- the network ------------------------------------------------------------------------------


class LessonMLP(nn.Module):
    """images (N, 1, 28, 28) in [0, 1] -> logits (N, 10) through ReLU hidden layers, each
    optionally with batch normalisation (then without a bias: beta replaces it) and dropout."""

    def __init__(
        self,
        sizes: Sequence[int] = (784, 256, 128, 10),
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            layers.append(nn.Linear(n_in, n_out, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# --- weight initialisation schemes ------------------------------------------------------------


def _general_rule(weight: torch.Tensor) -> None:
    bound = 1 / math.sqrt(weight.shape[1])  # y = 1/sqrt(n), n = inputs of each unit
    nn.init.uniform_(weight, -bound, bound)


def _normal_rule(weight: torch.Tensor) -> None:
    nn.init.normal_(weight, 0.0, 1 / math.sqrt(weight.shape[1]))


INIT_SCHEMES: dict[str, Callable[[torch.Tensor], Any] | None] = {
    "zeros": nn.init.zeros_,
    "ones": nn.init.ones_,
    "uniform": nn.init.uniform_,  # U(0, 1)
    "general_rule": _general_rule,  # U(-1/sqrt(n), 1/sqrt(n))
    "normal_rule": _normal_rule,  # N(0, 1/n)
    "xavier": nn.init.xavier_uniform_,  # U(-a, a), a = sqrt(6 / (n_in + n_out))
    "he": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),  # N(0, 2 / n_in)
    "default": None,  # PyTorch's own: weights and biases U(-1/sqrt(n), 1/sqrt(n))
}


def initialise(model: nn.Module, scheme: str) -> nn.Module:
    """Give every linear layer of ``model`` the weights ``scheme`` draws and zero biases
    (``"default"`` keeps PyTorch's initialisation). Returns ``model``."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(INIT_SCHEMES)}")
    draw = INIT_SCHEMES[scheme]
    if draw is None:
        return model
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            draw(layer.weight.data)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return model


# --- training several networks side by side ----------------------------------------------------


class SideBySideTask(Task):
    """Several classifiers, each with its own optimizer, trained on the same batches.

    Reports each network's training loss ``loss_<name>`` and validation loss and accuracy
    (``val_loss_<name>``, ``val_accuracy_<name>``), and keeps the loss of every batch of the
    first epoch (where the differences show) for the figure.
    """

    monitor = None  # a comparison after a fixed number of epochs: keep the last weights

    def __init__(
        self,
        models: dict[str, nn.Module],
        train_set: TensorDataset,
        val_set: TensorDataset,
        cfg: TrainConfig,
    ):
        self.models, self.train_set, self.val_set, self.cfg = models, train_set, val_set, cfg
        self.epoch = 0
        self.batch_losses: list[torch.Tensor] = []  # this epoch's (networks,) loss rows
        self.first_epoch_losses: torch.Tensor | None = None  # (batches, networks)

    def modules(self) -> dict[str, nn.Module]:
        return self.models

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        made = {}
        for name, model in self.models.items():
            optimizer = make_optimizer(self.cfg, model.parameters())
            made[name] = (optimizer, make_schedule(self.cfg, optimizer, total_steps))
        return made

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.batch_losses = []

    def train_batches(self, epoch: int, dist: DistState) -> IndexedBatches:
        indices = batch_indices(
            len(self.train_set), self.cfg.batch_size, shuffle=True, seed=self.cfg.seed,
            epoch=epoch, rank=dist.rank, world=dist.world_size,
        )  # fmt: skip
        return IndexedBatches(self.train_set, indices)

    def eval_batches(self, dist: DistState) -> IndexedBatches:
        indices = eval_indices(len(self.val_set), self.cfg.eval_batch_size, dist)
        return IndexedBatches(self.val_set, indices)

    def train_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        images, labels = batch
        x = images.float() / 255
        metrics, losses = {}, []
        for name, model in self.models.items():  # the same batch for every network
            with step.autocast():
                logits = model(x).float()
            loss = F.cross_entropy(logits, labels)
            step.update(name, loss)
            losses.append(loss.detach())
            metrics[f"loss_{name}"] = losses[-1]
        if self.epoch == 1:
            self.batch_losses.append(torch.stack(losses))
        return metrics

    def eval_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        images, labels = batch
        metrics = {}
        for name, model in self.models.items():
            logits = model(images.float() / 255).float()
            metrics[f"loss_{name}"] = F.cross_entropy(logits, labels)
            metrics[f"accuracy_{name}"] = (logits.argmax(1) == labels).double().mean()
        return metrics

    def end_epoch(self, epoch: int, ctx: RunContext) -> dict[str, float]:
        if epoch == 1:
            self.first_epoch_losses = torch.stack(self.batch_losses).float().cpu()
        return {}

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if self.first_epoch_losses is None:
            return {}, {}
        return {"first_epoch_losses": self.first_epoch_losses}, {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.first_epoch_losses = tensors.get("first_epoch_losses")


class SideBySide(nn.Module):
    """The compared networks in one module, as the loop saves them (``<name>.*`` keys)."""

    def __init__(self, models: dict[str, nn.Module]) -> None:
        super().__init__()
        for name, model in models.items():
            self.add_module(name, model)


@torch.no_grad()
def accuracy_in_mode(
    model: nn.Module, test_set: TensorDataset, batch_size: int, train_mode: bool
) -> float:
    """Accuracy on ``test_set`` in eval mode, or in train mode (batch norm then normalises
    with each test batch's own statistics). A copy is evaluated: the model's running
    statistics stay as they are."""
    model = copy.deepcopy(model).train(train_mode)
    images, labels = test_set.tensors
    device = next(model.parameters()).device
    correct = 0
    for index in batch_indices(len(labels), batch_size, shuffle=False, seed=0, epoch=0):
        logits = model(images[index].to(device).float() / 255)
        correct += int((logits.argmax(1).cpu() == labels[index]).sum())
    return correct / len(labels)


# --- figures ------------------------------------------------------------------------------------


def moving_average(values: torch.Tensor, window: int) -> torch.Tensor:
    """The mean of each run of ``window`` consecutive values (T,) -> (T - window + 1,)."""
    window = max(1, min(window, len(values)))
    return values.unfold(0, window, 1).mean(dim=1)


def comparison_figure(
    history: Sequence[dict[str, Any]],
    first_epoch_losses: torch.Tensor | None,
    names: Sequence[str],
    title: str,
) -> Figure:
    """Three panels, one line per network: the training loss of each batch of the first
    epoch (moving average of 10), the validation loss and the validation accuracy per epoch.
    Losses above 3 (a diverging start) are off the chart; chance is ln 10 = 2.30."""
    figure = Figure(figsize=(16, 4.2))
    batches, losses, accuracies = figure.subplots(1, 3)
    epochs = [row["epoch"] for row in history]
    for k, name in enumerate(names):
        label = name.replace("_", " ")
        if first_epoch_losses is not None:
            smooth = moving_average(first_epoch_losses[:, k], 10)
            batches.plot(range(10, 10 + len(smooth)), smooth.numpy(), label=label)
        losses.plot(epochs, [row[f"val_loss_{name}"] for row in history], "-o", ms=3, label=label)
        accuracies.plot(
            epochs, [100 * row[f"val_accuracy_{name}"] for row in history], "-o", ms=3, label=label
        )
    batches.set(title="first epoch: training loss per batch", xlabel="batch", ylabel="loss")
    losses.set(title="validation loss", xlabel="epoch", ylabel="loss")
    accuracies.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for ax in (batches, losses):
        ax.axhline(math.log(10), ls=":", c="grey", label="chance (ln 10)")
        ax.set_ylim(0, 3)
    accuracies.axhline(10, ls=":", c="grey", label="chance")
    for ax in (losses, accuracies):
        ax.set_xticks(epochs)
    for ax in (batches, losses, accuracies):
        ax.grid(alpha=0.3)
    accuracies.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def results_table(
    history: Sequence[dict[str, Any]], names: Sequence[str], extra: dict[str, list[str]]
) -> str:
    """A plain-text table: validation loss and accuracy after the first and the last epoch
    for each network, and ``extra`` columns (header -> one value per network)."""
    first, last = history[0], history[-1]
    header = [
        "network",
        "val acc (epoch 1)",
        f"val acc (epoch {last['epoch']})",
        "val loss",
        *extra,
    ]
    rows = [
        [
            name.replace("_", " "),
            f"{100 * first[f'val_accuracy_{name}']:.1f} %",
            f"{100 * last[f'val_accuracy_{name}']:.1f} %",
            f"{last[f'val_loss_{name}']:.4g}",
            *(column[k] for column in extra.values()),
        ]
        for k, name in enumerate(names)
    ]
    lines = table_lines(header, rows)
    return "\n".join(lines) + "\n"


# --- the two recipes' runs ------------------------------------------------------------------------


def build_networks(info: dict[str, Any]) -> dict[str, nn.Module]:
    """The compared networks a checkpoint's ``info`` names (before any training)."""
    if info["lesson"] == "weight-init":
        return {name: LessonMLP(dropout=0.2) for name in info["networks"]}
    if info["lesson"] == "batch-norm":
        return {"plain": LessonMLP(), "batch_norm": LessonMLP(batch_norm=True)}
    raise ValueError(f"unknown lesson {info['lesson']!r}")


def lesson_data(ctx: RunContext) -> Any:
    from dlnd.vision import datasets

    cfg = ctx.cfg
    data = datasets.mnist_data("mnist", cfg["data_dir"], cfg["seed"], cfg["embedded"])
    ctx.info(data.source)
    return data


def train_side_by_side(
    ctx: RunContext, models: dict[str, nn.Module], data: Any, info: dict[str, Any], title: str
) -> tuple[list[dict[str, Any]], dict[str, nn.Module]]:
    """Train ``models`` on the same batches; save the comparison figure (as the run's
    learning curves). Returns the history and the trained networks."""
    from dlnd.trainer import train

    cfg = TrainConfig.from_cfg(ctx.cfg)
    task = SideBySideTask(models, data.train, data.val, cfg)
    result = train(ctx, task, cfg, info=info)
    if ctx.is_main:
        figure = comparison_figure(result.history, task.first_epoch_losses, list(models), title)
        ctx.save_figure(figure, "learning_curves")
    return result.history, result.modules


def run_weight_init(ctx: RunContext) -> dict[str, Any]:
    """The same MLP from every initialisation scheme, trained side by side."""
    data = lesson_data(ctx)
    info = {"task": "comparison", "lesson": "weight-init", "networks": list(INIT_SCHEMES)}
    models = {name: initialise(net, name) for name, net in build_networks(info).items()}
    title = f"{ctx.recipe.name}: one MLP 784-256-128-10 (ReLU, dropout 0.2), eight starting points"
    history, _ = train_side_by_side(ctx, models, data, info, title)
    table = results_table(history, list(models), {})
    ctx.info(table)
    ctx.save_text(table, "results")
    last = history[-1]
    return {f"val_accuracy_{name}": last[f"val_accuracy_{name}"] for name in models}


def run_batch_norm(ctx: RunContext) -> dict[str, Any]:
    """The same MLP with and without batch norm; then the batch-norm network's test accuracy
    in eval mode and in train mode."""
    data = lesson_data(ctx)
    info = {"task": "comparison", "lesson": "batch-norm", "networks": ["plain", "batch_norm"]}
    models = build_networks(info)
    title = f"{ctx.recipe.name}: MLP 784-256-128-10 (ReLU) without and with batch normalisation"
    history, trained = train_side_by_side(ctx, models, data, info, title)
    batch_size = ctx.cfg["batch_size"]
    modes = {
        "test (eval mode)": [
            accuracy_in_mode(m, data.test, batch_size, False) for m in trained.values()
        ],
        f"test (train mode, batches of {batch_size})": [
            accuracy_in_mode(m, data.test, batch_size, True) for m in trained.values()
        ],
        "test (train mode, batches of 4)": [
            accuracy_in_mode(m, data.test, 4, True) for m in trained.values()
        ],
    }
    columns = {header: [f"{100 * v:.1f} %" for v in values] for header, values in modes.items()}
    table = results_table(history, list(models), columns)
    ctx.info(table)
    ctx.save_text(table, "results")
    plain, normalised = (history[-1][f"val_accuracy_{name}"] for name in models)
    eval_mode, train_mode, small_batches = (values[1] for values in modes.values())
    return {
        "val_accuracy_plain": plain,
        "val_accuracy_batch_norm": normalised,
        "test_accuracy_batch_norm_eval_mode": eval_mode,
        "test_accuracy_batch_norm_train_mode": train_mode,
        "test_accuracy_batch_norm_batches_of_4": small_batches,
    }
