"""Two small tasks that are not supervised classification, trained by the shared loop.

- ``toy-gan``: a generator and a discriminator with two optimizers and alternating updates
  (and fixed noise kept across ``--resume``);
- ``toy-lm``: a recurrent language model whose hidden state is carried across ordered
  batches (truncated backpropagation through time) and reset at each epoch.

Loaded with ``DLND_RECIPE_MODULES=toy_tasks`` (this folder on ``PYTHONPATH``); used by the
loop's tests only, never shipped as recipes.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from dlnd import distributed
from dlnd.checkpoint import save_tensors
from dlnd.config import non_negative_float, positive_int, text
from dlnd.recipes import Option, Recipe, register
from dlnd.trainer import (
    TRAINER_OPTIONS,
    Monitor,
    Step,
    Task,
    TrainConfig,
    batch_indices,
    make_optimizer,
    make_schedule,
    train,
)

TEST_OPTIONS = (
    Option("--epoch-sleep", non_negative_float, 0.0, "seconds to sleep per epoch (kill tests)"),
    Option("--dump-params", text, "", "folder to write each rank's final parameters"),
)


def dump_params(ctx, modules: dict[str, nn.Module]) -> None:
    if ctx.cfg["dump_params"]:
        tensors = {
            f"{name}.{key}": value
            for name, module in modules.items()
            for key, value in module.state_dict().items()
        }
        rank = distributed.state().rank
        save_tensors(f"{ctx.cfg['dump_params']}/rank{rank}.safetensors", tensors, {})


# --- a GAN: two modules, two optimizers --------------------------------------------------------


class ToyGan(nn.Module):
    """Both networks in one module, so that a saved run can be rebuilt (``build_model``)."""

    def __init__(self, noise_size: int = 2, hidden_size: int = 16):
        super().__init__()
        self.generator = nn.Sequential(
            nn.Linear(noise_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1)
        )
        self.discriminator = nn.Sequential(
            nn.Linear(1, hidden_size), nn.LeakyReLU(0.2), nn.Linear(hidden_size, 1)
        )


def gan_data(n: int = 512, noise_size: int = 2) -> TensorDataset:
    """Real samples from N(3, 0.5^2) paired with the noise the generator gets for them: the
    noise is part of the data, so that the shards of a batch make up exactly that batch."""
    generator = torch.Generator().manual_seed(99)
    real = 3.0 + 0.5 * torch.randn(n, 1, generator=generator)
    noise = torch.randn(n, noise_size, generator=generator)
    return TensorDataset(real, noise)


class GanTask(Task):
    monitor = None  # a GAN keeps its last weights

    def __init__(self, gan: ToyGan, data: TensorDataset, cfg: TrainConfig, sleep: float):
        self.gan, self.data, self.cfg, self.sleep = gan, data, cfg, sleep
        self.fixed_noise = torch.randn(64, 2)
        self.restored_noise: torch.Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.gan.generator, "discriminator": self.gan.discriminator}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        made = {}
        for name, module in self.modules().items():
            optimizer = make_optimizer(self.cfg, module.parameters())
            made[name] = (optimizer, make_schedule(self.cfg, optimizer, total_steps))
        return made

    def train_batches(self, epoch: int, dist) -> list[Any]:
        indices = batch_indices(
            len(self.data), self.cfg.batch_size, shuffle=True, seed=self.cfg.seed,
            epoch=epoch, rank=dist.rank, world=dist.world_size,
        )  # fmt: skip
        return [self.data[index] for index in indices]

    def train_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        real, noise = batch
        ones, zeros = torch.ones(len(real), 1), torch.zeros(len(real), 1)
        generator, discriminator = self.gan.generator, self.gan.discriminator
        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        fake = generator(noise)
        d_loss = F.binary_cross_entropy_with_logits(
            discriminator(real), ones
        ) + F.binary_cross_entropy_with_logits(discriminator(fake.detach()), zeros)
        step.update("discriminator", d_loss)
        # (2) Update G: maximise log D(G(z))
        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
        step.update("generator", g_loss)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    def end_epoch(self, epoch: int, ctx) -> dict[str, float]:
        if self.sleep:
            time.sleep(self.sleep)
        with torch.no_grad():
            samples = self.gan.generator(self.fixed_noise.to(next(self.gan.parameters()).device))
        return {"fake_mean": float(samples.mean()), "fake_std": float(samples.std())}

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {"fixed_noise": self.fixed_noise}, {"noise_size": 2}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.fixed_noise = tensors["fixed_noise"]
        self.restored_noise = tensors["fixed_noise"]


def build_gan(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    return ToyGan(hidden_size=config["hidden_size"])


def run_gan(ctx) -> dict[str, float]:
    cfg = TrainConfig.from_cfg(ctx.cfg)
    task = GanTask(build_gan(ctx.cfg, {}), gan_data(), cfg, ctx.cfg["epoch_sleep"])
    result = train(ctx, task, cfg, info={"task": "toy-gan"})
    dump_params(ctx, result.modules)
    last = result.history[-1]
    return {"fake_mean": last["fake_mean"], "fake_std": last["fake_std"]}


TOY_GAN = register(
    Recipe(
        name="toy-gan",
        summary="A one-dimensional GAN: two modules, two optimizers (loop tests only).",
        dataset="generated",
        target="the generator's samples move towards mean 3",
        run=run_gan,
        options=(
            Option("--hidden-size", positive_int, 16, "hidden units of both networks"),
            *TEST_OPTIONS,
            *TRAINER_OPTIONS,
        ),
        defaults={"epochs": 6, "batch_size": 64, "lr": 0.01},
        in_tour=False,
        build_model=build_gan,
    )
)


# --- a language model with carried hidden state ------------------------------------------------

PATTERN = [0, 1, 0, 2, 0, 1, 0, 3]  # after "0" the next token depends on the phase


def token_stream(n: int, offset: int = 0) -> torch.Tensor:
    """A periodic stream of tokens: predicting it well needs to remember the phase."""
    return torch.tensor([PATTERN[(i + offset) % len(PATTERN)] for i in range(n)])


class TinyLM(nn.Module):
    """tokens (N, T) -> next-token logits (N, T, V); ``forward`` can return its own loss."""

    def __init__(self, vocab_size: int = 4, hidden_size: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens, hidden=None, targets=None):
        outputs, hidden = self.rnn(self.embed(tokens), hidden)
        logits = self.head(outputs)
        if targets is None:
            return logits, hidden
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, hidden, loss


def ordered_windows(stream: torch.Tensor, rows: int, seq_len: int) -> list[tuple[Any, Any]]:
    """Cut ``stream`` into ``rows`` parallel streams, then consecutive windows of
    ``seq_len``: window k+1 of each row continues where window k ended."""
    columns = (len(stream) - 1) // rows
    x = stream[: rows * columns].view(rows, columns)
    y = stream[1 : rows * columns + 1].view(rows, columns)
    return [
        (x[:, start : start + seq_len], y[:, start : start + seq_len])
        for start in range(0, columns - seq_len + 1, seq_len)
    ]


class LanguageModelTask(Task):
    monitor = Monitor("val_loss", "min")

    def __init__(self, model: TinyLM, cfg: TrainConfig, seq_len: int, carry: bool, sleep: float):
        self.model, self.cfg, self.seq_len, self.carry, self.sleep = (
            model,
            cfg,
            seq_len,
            carry,
            sleep,
        )
        self.train_windows = ordered_windows(token_stream(4096), cfg.batch_size, seq_len)
        self.val_windows = ordered_windows(token_stream(1024, offset=3), 8, seq_len)
        self.hidden = None

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        optimizer = make_optimizer(self.cfg, self.model.parameters())
        return {"model": (optimizer, make_schedule(self.cfg, optimizer, total_steps))}

    @staticmethod
    def shard(windows: list[tuple[Any, Any]], dist) -> list[tuple[Any, Any]]:
        """Rank r keeps rows r, r+W, ... of every window: its own parallel streams."""
        return [
            (x[dist.rank :: dist.world_size], y[dist.rank :: dist.world_size]) for x, y in windows
        ]

    def start_epoch(self, epoch: int) -> None:
        self.hidden = None  # the reset rule: each epoch starts from a zero state

    def train_batches(self, epoch: int, dist) -> list[tuple[Any, Any]]:
        return self.shard(self.train_windows, dist)

    def train_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        x, y = batch
        with step.autocast():
            _, hidden, loss = self.model(x, self.hidden, targets=y)
        step.update("model", loss)
        # Carry the state into the next window, but cut the graph: backpropagation stops at
        # the window's start (truncated BPTT), or each step would reach back to the epoch's.
        self.hidden = hidden.detach() if self.carry else None
        return {"loss": loss.detach()}

    def eval_batches(self, dist) -> list[tuple[Any, Any]]:
        self.eval_hidden = None
        return self.shard(self.val_windows, dist)

    def eval_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        x, y = batch
        logits, self.eval_hidden, loss = self.model(x, self.eval_hidden, targets=y)
        accuracy = (logits.argmax(-1) == y).double().mean()
        return {"loss": loss, "accuracy": accuracy}

    def end_epoch(self, epoch: int, ctx) -> dict[str, float]:
        if self.sleep:
            time.sleep(self.sleep)
        return {}


def build_lm(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    return TinyLM(hidden_size=config["hidden_size"])


def run_lm(ctx) -> dict[str, float]:
    cfg = TrainConfig.from_cfg(ctx.cfg)
    task = LanguageModelTask(
        build_lm(ctx.cfg, {}), cfg, ctx.cfg["seq_len"], ctx.cfg["carry"], ctx.cfg["epoch_sleep"]
    )
    result = train(ctx, task, cfg, info={"task": "toy-lm"})
    dump_params(ctx, result.modules)
    best = result.history[result.best_epoch - 1]
    return {"val_loss": best["val_loss"], "val_accuracy": best["val_accuracy"]}


TOY_LM = register(
    Recipe(
        name="toy-lm",
        summary="A GRU language model with its state carried across ordered batches "
        "(loop tests only).",
        dataset="generated",
        target="predicts the periodic stream",
        run=run_lm,
        options=(
            Option("--hidden-size", positive_int, 16, "GRU hidden units"),
            Option("--seq-len", positive_int, 4, "tokens per window (truncated BPTT length)"),
            Option("--carry", bool, True, "carry the hidden state across windows"),
            *TEST_OPTIONS,
            *TRAINER_OPTIONS,
        ),
        defaults={"epochs": 5, "batch_size": 16, "lr": 0.01},
        in_tour=False,
        build_model=build_lm,
    )
)
