"""A chatbot run -> two ONNX graphs and a model card, served by :mod:`dlnd.serve.chat`.

A reply is a loop: encode the line once, then one decoder step per written word, each step
choosing the next word from the last. The loop stays in the server (a few lines of NumPy),
and ONNX Runtime runs the two graphs it calls, one line at a time (batch 1, so no padding
and no mask)::

    encoder.onnx       ids (1, S) int64 -> memory (1, S, 2H), keys (1, S, H), state (1, 1, H)
    decoder_step.onnx  word (1, 1) int64, state (1, 1, H), memory, keys[, ids]
                       -> logits (1, V), state (1, 1, H), attention (1, S)

A model that copies words of the line (``--copy``) takes the line's ``ids`` at each step
too, and its "logits" are log-probabilities (softmax of either is p(word)).

The card carries the vocabulary, so the server needs neither PyTorch nor the run folder.
The export is checked against PyTorch: the greedy replies of both to a few lines must be
the same words, and the first step's logits must agree within :data:`TOLERANCE`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlnd.errors import UserError
from dlnd.io import atomic_write, atomic_write_text
from dlnd.recipes import get_recipe
from dlnd.sequence.chatbot import ChatBot
from dlnd.sequence.seq2seq import Seq2Seq
from dlnd.serve.card import (
    CARD_FILE,
    CARD_VERSION,
    file_facts,
    portable_config,
    read_final_metrics,
    utc_stamp,
)
from dlnd.serve.extras import import_extra

ENCODER_FILE, STEP_FILE = "encoder.onnx", "decoder_step.onnx"
TOLERANCE = 1e-4
CHECK_LINES = ("what is the deal with the soup?", "hello.", "i dont know, jerry. i dont know!")


class EncoderGraph(nn.Module):
    """One line through the encoder: ids (1, S) -> memory, keys (W_a m_s) and first state."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.model
        memory, final = m.encoder(m.embedding(ids))  # one unpadded line: no packing needed
        state = torch.tanh(m.bridge(torch.cat([final[0], final[1]], dim=-1)))[None]
        return memory, m.key(memory), state


class DecoderStepGraph(nn.Module):
    """One decoder step of one line (see :meth:`Seq2Seq.decode`, T = 1, no padding)."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        word: torch.Tensor,
        state: torch.Tensor,
        memory: torch.Tensor,
        keys: torch.Tensor,
        ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.model  # in eval mode: its dropout does nothing
        mask = torch.ones(memory.shape[:2], dtype=torch.bool)
        logits, state, weights, features = m.decode_parts(word, state, memory, mask, keys)
        if m.copies:
            logits = m.copy_mixture(logits, features, weights, ids)
        return logits[:, 0], state, weights[:, 0]


def write_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str]],
    dynamic: tuple[dict[int, Any] | None, ...],
    path: Path,
) -> None:
    """Export ``module`` to ONNX at ``path`` (atomically) with the given free dimensions."""
    import_extra("onnxscript")
    # The exporter's notes on its own internals (deprecations, the GRU's flat weights, one
    # name for two axes) are about torch, not this model: the check below is what counts.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        program = torch.onnx.export(
            module, example, input_names=names[0], output_names=names[1],
            dynamic_shapes=dynamic, external_data=False, verbose=False,
        )  # fmt: skip
        atomic_write(path, lambda tmp: program.save(str(tmp), external_data=False))


def export_graphs(model: Seq2Seq, out_dir: Path) -> None:
    """Write ``encoder.onnx`` and ``decoder_step.onnx`` of ``model`` into ``out_dir``."""
    words = torch.export.Dim("words", min=1, max=4096)
    model.eval()  # no dropout in the graphs
    with torch.no_grad():
        ids = torch.tensor([[4, 5, 6]])
        write_graph(EncoderGraph(model), (ids,), (["ids"], ["memory", "keys", "state"]),
                    ({1: words},), out_dir / ENCODER_FILE)  # fmt: skip
        memory, keys, state = EncoderGraph(model)(ids)
        word = torch.tensor([[model.end_id]])
        example, inputs = [word, state, memory, keys], ["word", "state", "memory", "keys"]
        dynamic = [None, None, {1: words}, {1: words}]
        if model.copies:  # the step also reads the line's ids
            example, inputs, dynamic = [*example, ids], [*inputs, "ids"], [*dynamic, {1: words}]
        write_graph(DecoderStepGraph(model), tuple(example),
                    (inputs, ["logits", "next_state", "attention"]), tuple(dynamic),
                    out_dir / STEP_FILE)  # fmt: skip


def check_export(bot: ChatBot, out_dir: Path) -> float:
    """The largest difference of first-step logits between ONNX and PyTorch over
    :data:`CHECK_LINES` (of the probabilities, for a model that copies: its scores are
    log-probabilities, and the logarithm magnifies float32 rounding in the tiny ones); a
    RuntimeError if it is too large or a greedy reply differs."""
    from dlnd.serve.chat import OnnxChatModel

    exported = OnnxChatModel(out_dir / ENCODER_FILE, out_dir / STEP_FILE, bot.model.end_id,
                             bot.model.never_written)  # fmt: skip
    largest = 0.0
    for line in CHECK_LINES:
        ids = torch.from_numpy(bot.vocab.encode(line)[-bot.max_words :])
        with torch.no_grad():
            expected, _ = bot.model.reply(ids, bot.max_words)
            memory, state, mask = bot.model.encode(ids[None], torch.tensor([len(ids)]))
            start = torch.tensor([[bot.model.end_id]])
            logits, _, _ = bot.model.decode(start, state, memory, mask, ids[None])
        first, expected_first = exported.first_logits(ids.numpy()), logits[0, 0].numpy()
        if bot.model.copies:
            first, expected_first = np.exp(first), np.exp(expected_first)
        largest = max(largest, float(np.abs(first - expected_first).max()))
        written, _ = exported.reply(ids.numpy(), bot.max_words)
        if written != expected:
            raise RuntimeError(
                f"The exported chatbot replies {written} to {line!r}; PyTorch {expected}."
            )
    if not largest <= TOLERANCE:
        raise RuntimeError(f"The exported chatbot differs from PyTorch by {largest:.2e}.")
    return largest


def export_chat_run(run_dir: Path, out: Path | None = None, name: str | None = None) -> Path:
    """Export a ``chatbot`` run (its attention model) for serving; returns the folder
    (default ``RUN_DIR/export-onnx``)."""
    from dlnd.checkpoint import load_model

    run_dir = Path(run_dir)
    bot = ChatBot.from_run(run_dir)
    if bot.model.decoder_kind != "attention":
        raise UserError(
            f"{run_dir} holds a {bot.model.decoder_kind!r} decoder; the server shows attention, "
            "so it serves the attention model (the run folder itself, not a baseline)."
        )
    _, meta = load_model(run_dir)
    out_dir = Path(out) if out is not None else run_dir / "export-onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    export_graphs(bot.model.float(), out_dir)
    difference = check_export(bot, out_dir)
    info = meta["info"]
    card = {
        "card_version": CARD_VERSION,
        "name": name or meta["recipe"],
        "task": info["task"],
        "recipe": meta["recipe"],
        "dataset": get_recipe(meta["recipe"]).dataset,
        "format": "onnx",
        **file_facts(out_dir / ENCODER_FILE),
        "decoder_step": file_facts(out_dir / STEP_FILE),
        "input": {
            "name": "message",
            "max_words": info["max_words"],
            "context_turns": info["context_turns"],
        },  # fmt: skip
        "vocabulary": info["vocabulary"],
        "end_id": bot.model.end_id,
        "never_written": bot.model.never_written,
        "metrics": {"final": read_final_metrics(run_dir), "epoch": meta.get("epoch")},
        "config": portable_config(meta.get("config", {})),
        "verification": {
            "inputs": list(CHECK_LINES),
            "greedy_replies": "identical to PyTorch",
            "max_abs_diff_vs_pytorch": difference,
            "tolerance": TOLERANCE,
        },
        "exported": utc_stamp(),
    }
    atomic_write_text(out_dir / CARD_FILE, json.dumps(card, indent=2, default=float))
    return out_dir
