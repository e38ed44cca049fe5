"""The ``chatbot`` recipe: a sequence-to-sequence model with attention learns to answer a
Seinfeld line with the next speaker's line (see :mod:`dlnd.sequence.seq2seq` for the model
and :mod:`dlnd.sequence.dialogue` for the pairs).

Training goes through the shared loop with teacher forcing: the decoder reads the true
previous word of the reply, and the loss is the cross-entropy of each next word. Metrics are
weighted by the number of reply words in a batch, so ``val_loss`` is the mean over every
held-out reply word and ``exp(val_loss)`` is the validation perplexity of replies.

With ``--baselines`` (the default) the same run also trains the two baselines of the issue
on the same pairs and vocabulary, each in a sub-run of the run folder: the decoder without
attention (``baseline-plain/``) and a language model of replies that ignores the line
(``baseline-language-model/``). The final metrics give all three perplexities.

With ``--warm-start`` (the default) the language model is trained first and both models
that read the line start from it (:meth:`Seq2Seq.start_from`): they begin by writing what
it writes and learn only what the line adds. With ``--copy`` (the default) the attention
decoder may also copy a word of the line, by its attention weights (a pointer-generator).

Honest expectations: Seinfeld replies are hard to predict from one line; perplexities stay
high, greedy replies are short and generic ("what?", "i dont know."). Attention helps most
where a reply repeats words of the line, which the embedded data makes the rule.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from dlnd.data.readers import load_corpus
from dlnd.distributed import DistState
from dlnd.errors import UserError
from dlnd.runs import RunContext
from dlnd.sequence.batching import bucketed_batch_indices, pad_batch, sorted_eval_indices
from dlnd.sequence.dialogue import (
    dialogue_pairs,
    encoded_line,
    generated_dialogue,
    split_pairs,
)
from dlnd.sequence.seq2seq import Seq2Seq
from dlnd.store import STATE_FILE
from dlnd.text import PUNCTUATION_TOKENS, Vocabulary, WordVocabulary
from dlnd.text.tokens import TOKEN_PUNCTUATION
from dlnd.text.vocabulary import vocabulary_from_dict
from dlnd.trainer import Monitor, Step, Task, TrainConfig, make_optimizer, make_schedule, train

TASK = "chat"
END_TOKEN = PUNCTUATION_TOKENS["\n"]  # a turn ends with a line break: the reply's stop word
BASELINES = ("plain", "language-model")
SHOWN_EXCHANGES = 8  # held-out lines answered after each epoch

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


# ------------------------------------------------------------------------------ data


@dataclass
class EncodedPairs:
    """Pairs as ids: ``lines[i]`` (S_i,) with S_i >= 1, ``replies[i]`` (T_i,) without the
    end word; ``texts[i]`` the pair as text."""

    lines: list[torch.Tensor]
    replies: list[torch.Tensor]
    texts: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.lines)


def encode_pairs(
    vocab: Vocabulary, pairs: Sequence[tuple[str, str]], max_words: int
) -> EncodedPairs:
    """The pairs whose reply has 1 to ``max_words`` words, as ids."""
    encoded = EncodedPairs([], [], [])
    for line, reply in pairs:
        reply_ids = vocab.encode(reply)
        if 1 <= len(reply_ids) <= max_words:
            # the line's end is what the reply answers: its last max_words words are kept
            encoded.lines.append(torch.from_numpy(encoded_line(vocab, line, (), 0, max_words)))
            encoded.replies.append(torch.from_numpy(reply_ids))
            encoded.texts.append((line, reply))
    return encoded


class PairBatches(Sequence):
    """Batches ``(line (N, S), lengths (N,), reply_in (N, T+1), reply_out (N, T+1))`` of
    ``pairs``: reply_in is the end word then the reply, reply_out the reply then the end
    word (what each step must write); both padded on the right."""

    def __init__(self, pairs: EncodedPairs, indices: list[torch.Tensor], vocab: Vocabulary):
        self.pairs, self.indices = pairs, indices
        self.padding_id, self.end_id = vocab.padding_id, vocab.encode_tokens([END_TOKEN])[0]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Batch:
        index = self.indices[i].tolist()
        line, lengths = pad_batch([self.pairs.lines[j] for j in index], self.padding_id)
        end = torch.tensor([self.end_id])
        replies = [self.pairs.replies[j] for j in index]
        reply_in, _ = pad_batch([torch.cat([end, r]) for r in replies], self.padding_id)
        reply_out, _ = pad_batch([torch.cat([r, end]) for r in replies], self.padding_id)
        return line, lengths, reply_in, reply_out

    def __iter__(self) -> Iterator[Batch]:
        for i in range(len(self)):
            yield self[i]


# ------------------------------------------------------------------------------ replies


@dataclass
class Reply:
    """A reply: its text, the words read and written, the attention (written, read)."""

    text: str
    words_in: list[str]
    words_out: list[str]
    attention: np.ndarray


class ChatBot:
    """A trained model with its vocabulary: text in, a reply out."""

    def __init__(self, model: Seq2Seq, vocab: Vocabulary, max_words: int, context_turns: int):
        self.model, self.vocab = model.eval(), vocab
        self.max_words, self.context_turns = max_words, context_turns

    @classmethod
    def from_run(cls, run_dir: Path) -> ChatBot:
        """The chatbot of a ``chatbot`` run folder (a :class:`UserError` for any other)."""
        from dlnd.checkpoint import load_model  # it reads the registry, which imports us

        model, meta = load_model(run_dir)
        info = meta.get("info", {})
        if info.get("task") != TASK:
            raise UserError(
                f"{run_dir} holds a {meta.get('recipe')!r} model, not a chatbot; give a run "
                "folder of the chatbot recipe."
            )
        return cls(
            model, vocabulary_from_dict(info["vocabulary"]), info["max_words"],
            info["context_turns"],
        )  # fmt: skip

    def line_ids(self, message: str, history: Sequence[str] = ()) -> np.ndarray:
        """The ids (S,) the encoder reads (see :func:`dlnd.sequence.dialogue.encoded_line`)."""
        return encoded_line(self.vocab, message, history, self.context_turns, self.max_words)

    def reply(
        self,
        message: str,
        history: Sequence[str] = (),
        *,
        temperature: float = 0.0,
        top_k: int | None = None,
        seed: int = 0,
    ) -> Reply:
        """The reply to ``message``: greedy at ``temperature`` 0, else sampled with ``seed``
        (the same seed, the same reply). Unknown words are read as the unknown word."""
        ids = torch.from_numpy(self.line_ids(message, history))
        generator = torch.Generator().manual_seed(seed)
        written, attention = self.model.reply(
            ids, self.max_words, temperature=temperature, top_k=top_k, generator=generator
        )
        return Reply(
            text=self.vocab.decode(written),
            words_in=self.vocab.decode_tokens(ids.numpy()),
            words_out=self.vocab.decode_tokens(written),
            attention=attention.numpy(),
        )


def exchanges_text(bot: ChatBot, pairs: Sequence[tuple[str, str]]) -> str:
    """Greedy replies to held-out lines, beside the true replies."""
    blocks = []
    for line, true_reply in pairs:
        said = bot.reply(line).text
        blocks.append(f"line:   {line}\nreply:  {said}\nscript: {true_reply}\n")
    return "\n".join(blocks)


def attention_figure(replies: Sequence[Reply]) -> Figure:
    """Heat maps: which read word (columns) each written word (rows) looked at."""
    figure = Figure(figsize=(5 * len(replies), 4.2), layout="constrained")

    def shown(words: list[str]) -> list[str]:  # "||period||" -> ".", a line break -> "↵"
        return [TOKEN_PUNCTUATION.get(w, w).replace("\n", "\u21b5") for w in words]

    for ax, reply in zip(figure.subplots(1, len(replies), squeeze=False)[0], replies):
        ax.imshow(reply.attention, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(reply.words_in)), shown(reply.words_in), rotation=70, fontsize=8)
        ax.set_yticks(range(len(reply.words_out)), shown(reply.words_out), fontsize=8)
        ax.set_xlabel("line (read)")
        ax.set_ylabel("reply (written)")
    return figure


# ------------------------------------------------------------------------------ training


class ChatTask(Task):
    """Teacher-forced training of a :class:`Seq2Seq` on (line, reply) pairs; each batch's
    metrics weigh as many as its reply words (so val_loss is per word)."""

    monitor = Monitor("val_loss", "min")

    def __init__(
        self,
        bot: ChatBot,
        train_set: EncodedPairs,
        val_set: EncodedPairs,
        cfg: TrainConfig,
        shown: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.bot, self.model = bot, bot.model
        self.train_set, self.val_set, self.cfg, self.shown = train_set, val_set, cfg, shown
        self.reply_lengths = torch.tensor([len(r) for r in train_set.replies])

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        optimizer = make_optimizer(self.cfg, self.model.parameters())
        return {"model": (optimizer, make_schedule(self.cfg, optimizer, total_steps))}

    def train_batches(self, epoch: int, dist: DistState) -> PairBatches:
        # Replies of similar length together: less padding in the decoder.
        indices = bucketed_batch_indices(
            self.reply_lengths, self.cfg.batch_size, seed=self.cfg.seed, epoch=epoch,
            rank=dist.rank, world=dist.world_size,
        )  # fmt: skip
        return PairBatches(self.train_set, indices, self.bot.vocab)

    def train_step(self, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        line, lengths, reply_in, reply_out = batch
        with step.autocast():
            _, loss = self.model(line, lengths, reply_in, reply_out)
        step.update("model", loss)
        return {"loss": loss.detach()}

    def eval_batches(self, dist: DistState) -> PairBatches:
        lengths = torch.tensor([len(r) for r in self.val_set.replies])
        indices = sorted_eval_indices(lengths, self.cfg.eval_batch_size, dist)
        return PairBatches(self.val_set, indices, self.bot.vocab)

    def eval_step(self, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        _, loss = self.model(*batch)
        return {"loss": loss}

    def batch_size(self, batch: Batch) -> int:
        return int((batch[3] != self.bot.vocab.padding_id).sum())  # reply words + end words

    def end_epoch(self, epoch: int, ctx: RunContext) -> dict[str, float]:
        # After validation the model is in eval mode (no dropout); rank 0 alone writes.
        if self.shown and ctx.is_main:
            ctx.save_text(exchanges_text(self.bot, self.shown), f"exchanges_epoch_{epoch:03d}")
        return {}


def build_chat_model(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    """The model of a chatbot run (or of one of its baselines), from its checkpoint info."""
    return Seq2Seq(**info["model"])


def model_spec(cfg: dict[str, Any], vocab: Vocabulary, decoder: str) -> dict[str, Any]:
    """The keyword arguments of :class:`Seq2Seq` for this run (stored in the checkpoint)."""
    return {
        "vocab_size": len(vocab),
        "embedding_size": cfg["embedding_size"],
        "hidden_size": cfg["hidden_size"],
        "padding_id": vocab.padding_id,
        "end_id": int(vocab.encode_tokens([END_TOKEN])[0]),
        "unknown_id": vocab.unknown_id,
        "decoder": decoder,
        "dropout": cfg["dropout"],
        "copy": cfg["copy"] and decoder == "attention",
    }


def train_chat_model(
    ctx: RunContext,
    decoder: str,
    vocab: Vocabulary,
    data: tuple[EncodedPairs, EncodedPairs],
    start: Seq2Seq | None = None,
) -> tuple[ChatBot, dict[str, Any]]:
    """Train one model (``decoder`` kind) in ``ctx``'s folder, from the trained language
    model ``start`` if given (see :meth:`Seq2Seq.start_from`); returns the bot with its
    best weights and the best epoch's row."""
    cfg = ctx.cfg
    spec = model_spec(cfg, vocab, decoder)
    info = {
        "task": TASK,
        "vocabulary": vocab.to_dict(),
        "model": spec,
        "max_words": cfg["max_words"],
        "context_turns": cfg["context_turns"],
    }
    bot = ChatBot(Seq2Seq(**spec), vocab, cfg["max_words"], cfg["context_turns"])
    if start is not None:  # a resumed run's checkpoint replaces these weights
        bot.model.start_from(start)
    task = ChatTask(bot, *data, TrainConfig.from_cfg(cfg), shown=shown_pairs(data[1]))
    result = train(ctx, task, TrainConfig.from_cfg(cfg), info=info)
    bot.model = result.model.cpu().eval()
    return bot, result.history[result.best_epoch - 1]


def shown_pairs(pairs: EncodedPairs) -> list[tuple[str, str]]:
    """The held-out pairs answered on the run page: :data:`SHOWN_EXCHANGES`, spread out."""
    return pairs.texts[:: max(len(pairs) // SHOWN_EXCHANGES, 1)][:SHOWN_EXCHANGES]


def sub_run(ctx: RunContext, name: str) -> RunContext:
    """The sub-run ``name`` of the run folder (a baseline): continued on ``--resume`` if it
    saved an epoch, otherwise started afresh."""
    run_dir = ctx.run_dir / name
    resumed = ctx.resumed and (run_dir / STATE_FILE).exists()
    if ctx.is_main and not resumed and run_dir.exists():
        shutil.rmtree(run_dir)
    sub = RunContext(ctx.recipe, ctx.cfg, run_dir, is_main=ctx.is_main, resumed=resumed)
    sub.write_config()
    return sub


def chat_corpus(cfg: dict[str, Any]) -> str:
    """The script: the generated dialogue under ``--embedded``, else the Seinfeld scripts."""
    if cfg["embedded"]:
        return generated_dialogue(seed=cfg["seed"])
    return load_corpus("seinfeld", cfg["data_dir"])


def prepare(cfg: dict[str, Any]) -> tuple[Vocabulary, EncodedPairs, EncodedPairs]:
    """The vocabulary of the training pairs and both sets of pairs, encoded."""
    pairs = dialogue_pairs(chat_corpus(cfg), cfg["context_turns"])
    if cfg["max_pairs"]:
        pairs = pairs[: cfg["max_pairs"]]
    train_pairs, val_pairs = split_pairs(pairs, cfg["val_fraction"])
    # "\n" after each text: the end word is in the vocabulary however rare line breaks are.
    texts = [f"{text}\n" for pair in train_pairs for text in pair]
    vocab = WordVocabulary.build(
        texts, min_count=cfg["min_count"], max_size=cfg["max_vocabulary"], padding=True,
        lowercase=True, punctuation=True,
    )  # fmt: skip
    train_set = encode_pairs(vocab, train_pairs, cfg["max_words"])
    val_set = encode_pairs(vocab, val_pairs, cfg["max_words"])
    if len(train_set) < cfg["batch_size"] or len(val_set) == 0:
        raise UserError(
            f"Only {len(train_set)} training and {len(val_set)} held-out pairs have replies of "
            f"at most {cfg['max_words']} words; give more --max-pairs, a larger --max-words "
            "or a smaller --batch-size."
        )
    return vocab, train_set, val_set


def reply_latency_ms(bot: ChatBot, lines: Sequence[tuple[str, str]]) -> dict[str, float]:
    """p50 and p99 of the time to a greedy reply, in milliseconds, over ``lines``."""
    times = []
    for line, _ in lines:
        start = time.perf_counter()
        bot.reply(line)
        times.append(1000 * (time.perf_counter() - start))
    return {
        "reply_p50_ms": float(np.percentile(times, 50)),
        "reply_p99_ms": float(np.percentile(times, 99)),
    }


def run_chatbot(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.cfg
    vocab, train_set, val_set = prepare(cfg)
    ctx.info(
        f"{len(train_set):,} training and {len(val_set):,} held-out (line, reply) pairs, "
        f"vocabulary of {len(vocab):,} words"
    )
    data = (train_set, val_set)
    baselines: dict[str, tuple[RunContext, dict[str, Any]]] = {}  # kind -> (sub-run, best row)
    start = None
    if cfg["warm_start"] and cfg["decoder"] != "language-model":
        # The language model first: the models that read the line start from it.
        ctx.info("baseline: language-model (the models that read the line start from it)")
        sub = sub_run(ctx, "baseline-language-model")
        language_model, row = train_chat_model(sub, "language-model", vocab, data)
        baselines["language-model"], start = (sub, row), language_model.model
    bot, best = train_chat_model(ctx, cfg["decoder"], vocab, data, start)
    metrics: dict[str, Any] = {
        "val_loss": best["val_loss"],
        "val_perplexity": math.exp(best["val_loss"]),
        "train_loss": best["train_loss"],
        "best_epoch": best["epoch"],
    }
    if cfg["baselines"]:
        for baseline in [kind for kind in BASELINES if kind != cfg["decoder"]]:
            if baseline not in baselines:
                ctx.info(f"baseline: {baseline}")
                sub = sub_run(ctx, f"baseline-{baseline}")
                baselines[baseline] = (sub, train_chat_model(sub, baseline, vocab, data, start)[1])
            sub, row = baselines[baseline]
            perplexity = math.exp(row["val_loss"])
            sub.write_final({"val_loss": row["val_loss"], "val_perplexity": perplexity})
            key = baseline.replace("-", "_")
            metrics[f"{key}_val_perplexity"] = perplexity
            # How much lower the model's perplexity is than the baseline's, in percent.
            cut = 1 - metrics["val_perplexity"] / perplexity
            metrics[f"perplexity_cut_vs_{key}_pct"] = 100 * cut
    shown = shown_pairs(val_set)
    ctx.save_text(exchanges_text(bot, shown), "exchanges_best_model")
    if cfg["decoder"] == "attention":
        ctx.save_figure(attention_figure([bot.reply(line) for line, _ in shown[:3]]), "attention")
    metrics.update(reply_latency_ms(bot, val_set.texts[:50]))
    return metrics
