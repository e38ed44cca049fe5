"""Training a language model with the shared loop: ordered windows, carried state.

One epoch reads the training stream once, as ``batch_size`` parallel rows of consecutive
windows (see :mod:`dlnd.sequence.corpus`). The LSTM's state after window k is the starting
state of window k + 1, so the model can use context far older than one window; the
gradient, though, stops at the window's start (truncated backpropagation through time).
Each epoch starts from a zero state and a stream shifted by a few tokens, so that window
boundaries fall elsewhere every epoch; both depend on the seed and the epoch only, which
keeps ``--resume`` exact.

Validation reads the held-out tail the same way, state carried, and reports the loss in nats
per token and in bits (loss / ln 2): bits per character for a character model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dlnd.distributed import DistState
from dlnd.errors import UserError
from dlnd.runs import RunContext
from dlnd.sequence.corpus import Window, ordered_windows, shard_rows
from dlnd.sequence.language_model import LanguageModel, State
from dlnd.trainer import Monitor, Step, Task, TrainConfig, make_optimizer, make_schedule

VALIDATION_ROWS = 32  # parallel rows of the held-out tail (each starts from a zero state)


def detached(state: State | None) -> State | None:
    """The state's values without their history: the next window starts from them, but its
    gradient stops here instead of reaching back through every earlier window."""
    return None if state is None else (state[0].detach(), state[1].detach())


class LanguageModelTask(Task):
    """``model`` trained on ``train_ids`` (L,) and validated on ``val_ids``; ``unit`` names
    a token in the metrics ("char" -> ``val_bits_per_char``); ``write_sample(model)``
    returns the text saved after each epoch."""

    monitor = Monitor("val_loss", "min")

    def __init__(
        self,
        model: LanguageModel,
        train_ids: torch.Tensor,
        val_ids: torch.Tensor,
        cfg: TrainConfig,
        *,
        seq_len: int,
        unit: str,
        write_sample: Callable[[LanguageModel], str] | None = None,
    ) -> None:
        self.model, self.train_ids, self.val_ids, self.cfg = model, train_ids, val_ids, cfg
        self.seq_len, self.unit, self.write_sample = seq_len, unit, write_sample
        self.state: State | None = None
        self.eval_state: State | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        optimizer = make_optimizer(self.cfg, self.model.parameters())
        return {"model": (optimizer, make_schedule(self.cfg, optimizer, total_steps))}

    def epoch_offset(self, epoch: int) -> int:
        """Where epoch ``epoch``'s stream starts: 0 .. seq_len - 1, from (seed, epoch)."""
        return int(np.random.default_rng([self.cfg.seed % 2**32, epoch]).integers(self.seq_len))

    def train_batches(self, epoch: int, dist: DistState) -> list[Window]:
        rows = self.cfg.batch_size
        if rows % dist.world_size:
            raise UserError(
                f"--batch-size {rows} (parallel rows of text) must be a multiple of the "
                f"{dist.world_size} processes."
            )
        # The same length every epoch (only the start moves), so every epoch has as many
        # windows as the schedule planned for.
        offset = self.epoch_offset(epoch)
        stream = self.train_ids[offset : offset + len(self.train_ids) - self.seq_len]
        windows = ordered_windows(stream, rows, self.seq_len)
        return shard_rows(windows, dist.rank, dist.world_size)

    def start_epoch(self, epoch: int) -> None:
        self.state = None  # the reset rule: every epoch starts from a zero state

    def train_step(self, batch: Window, step: Step) -> dict[str, torch.Tensor]:
        inputs, targets = batch
        with step.autocast():
            _, state, loss = self.model(inputs, self.state, targets=targets)
        step.update("model", loss)
        # Carry the state into the next window, cut from the graph (truncated BPTT).
        self.state = detached(state)
        return {"loss": loss.detach()}

    def eval_batches(self, dist: DistState) -> list[Window]:
        self.eval_state = None
        rows = max(VALIDATION_ROWS // dist.world_size, 1) * dist.world_size
        if len(self.val_ids) <= rows * self.seq_len:
            raise UserError(
                f"The held-out text has {len(self.val_ids)} tokens, too few for {rows} rows of "
                f"{self.seq_len}; use a larger --val-fraction or a smaller --seq-len."
            )
        windows = ordered_windows(self.val_ids, rows, self.seq_len)
        return shard_rows(windows, dist.rank, dist.world_size)

    def eval_step(self, batch: Window, step: Step) -> dict[str, torch.Tensor]:
        inputs, targets = batch
        _, self.eval_state, loss = self.model(inputs, self.eval_state, targets=targets)
        return {"loss": loss, f"bits_per_{self.unit}": loss / math.log(2)}

    def end_epoch(self, epoch: int, ctx: RunContext) -> dict[str, float]:
        if self.write_sample is not None and ctx.is_main:  # rank 0 alone writes the sample
            text = self.write_sample(self.model)
            ctx.save_text(text, f"sample_epoch_{epoch:03d}")
            ctx.info(f"sample after epoch {epoch}: {text[:100]!r}")
        return {}
