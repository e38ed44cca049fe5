"""The ``word2vec`` recipe: word vectors from raw text by skip-gram with negative sampling.

The maths is in :mod:`dlnd.sequence.skipgram`; this module turns a corpus into a stream of
word ids, trains :class:`~dlnd.sequence.skipgram.SkipGram` with the shared loop (sparse
updates with Adagrad, the learning rate falling linearly to zero as in word2vec),
shows what the vectors learned (nearest neighbours, a 2-D projection) and saves them for
other recipes: ``embeddings.safetensors`` (the vectors) and ``vocabulary.json`` (their
words), read back by :func:`load_word_vectors`.

Corpora: Anna Karenina, the Seinfeld scripts, the MR sentences (their text only, never
their labels) or all three (the default), and text8 (17 million words of Wikipedia,
downloaded through the data catalogue). Words seen fewer than ``--min-count`` times are
dropped from the stream, as word2vec does. The last 5 % of the stream (at most 20,000
words) is held out: its loss, with fixed noise words, picks the kept epoch.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from dlnd import distributed
from dlnd.data.readers import load_corpus, load_mr_sentiment
from dlnd.distributed import DistState
from dlnd.errors import UserError
from dlnd.runs import RunContext
from dlnd.sequence.reviews import WORD_OPTIONS, generated_reviews
from dlnd.sequence.skipgram import (
    SkipGram,
    SkipGramBatches,
    context_pairs,
    keep_probabilities,
    noise_distribution,
)
from dlnd.store import load_tensors, save_tensors
from dlnd.text import Vocabulary, WordVocabulary, load_vocabulary, split_words
from dlnd.trainer import Monitor, Step, Task, TrainConfig, train

EMBEDDINGS_FILE = "embeddings.safetensors"
VOCABULARY_FILE = "vocabulary.json"
EMBEDDINGS_FORMAT = "dlnd-word-vectors"
# Which catalogue data sets each --corpus reads ("mr-sentiment": the sentences only).
CORPORA: dict[str, tuple[str, ...]] = {
    "all": ("anna", "seinfeld", "mr-sentiment"),
    "anna": ("anna",),
    "seinfeld": ("seinfeld",),
    "mr": ("mr-sentiment",),
    "text8": ("text8",),
}
# Words whose neighbours are shown when --words is not given (those in the vocabulary).
PROBE_WORDS = (
    "good", "bad", "funny", "film", "love", "happy", "money", "three",
    "anna", "levin", "jerry", "elaine", "king", "city",
)  # fmt: skip
VAL_FRACTION, MAX_VAL_WORDS = 0.05, 20_000


@dataclass
class Corpus:
    """A text as a stream of word ids: ``stream`` (M,) int64 over ``vocab`` (rare words
    left out), ``counts`` (V,) occurrences of each word in the stream."""

    vocab: Vocabulary
    stream: np.ndarray
    counts: np.ndarray
    source: str


def corpus_texts(
    corpus: str, data_dir: str | None, embedded: bool, seed: int
) -> tuple[list[str], str]:
    """The texts of ``--corpus`` (one string per book or sentence) and where they came from."""
    if embedded:
        reviews = generated_reviews(4000, seed)
        return reviews.sentences, f"embedded: {len(reviews.sentences)} generated review sentences"
    texts: list[str] = []
    for name in CORPORA[corpus]:
        if name == "mr-sentiment":
            texts += load_mr_sentiment(data_dir)[0]  # the sentences; the labels are not read
        else:
            texts.append(load_corpus(name, data_dir))
    return texts, " + ".join(CORPORA[corpus])


def build_corpus(texts: list[str], source: str, min_count: int, max_tokens: int = 0) -> Corpus:
    """Split ``texts`` into words (see ``WORD_OPTIONS``), keep the first ``max_tokens``
    (0 = all), and drop the words seen fewer than ``min_count`` times."""
    tokens = [token for text in texts for token in split_words(text, **WORD_OPTIONS)]
    if max_tokens:
        tokens = tokens[:max_tokens]
    vocab = WordVocabulary.from_counts(Counter(tokens), min_count=min_count, **WORD_OPTIONS)
    ids = vocab.encode_tokens(tokens)
    stream = ids[ids != vocab.unknown_id]
    if len(vocab) < 3 or len(stream) < 100:
        raise UserError(
            f"{source} leaves {len(stream)} words of {len(vocab) - 1} kinds after --min-count "
            f"{min_count}; word2vec needs more text (lower --min-count or raise --max-tokens)."
        )
    counts = np.bincount(stream, minlength=len(vocab))
    return Corpus(vocab, stream, counts, source)


class Word2VecTask(Task):
    """Skip-gram on a stream of word ids: each epoch subsamples the stream afresh, draws a
    window for every kept word and visits the centre words in a random order, both from
    (seed, epoch) alone; the noise words are drawn by the model from the loop's seeded
    generator."""

    monitor = Monitor("val_loss", "min")

    def __init__(
        self, model: SkipGram, corpus: Corpus, cfg: TrainConfig, window: int, subsample: float
    ):
        self.model, self.cfg, self.window = model, cfg, window
        held_out = min(int(VAL_FRACTION * len(corpus.stream)), MAX_VAL_WORDS)
        self.train_stream = torch.from_numpy(corpus.stream[: len(corpus.stream) - held_out])
        self.val_batches = self.validation_pairs(corpus.stream[len(self.train_stream) :])
        # keep probabilities from the training part's own counts
        counts = np.bincount(self.train_stream.numpy(), minlength=len(corpus.vocab))
        self.keep = torch.from_numpy(keep_probabilities(counts, subsample))
        self.epoch_words, self.epoch_started, self.last_step = 0, 0.0, 0.0

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        # Adagrad: each coordinate's step shrinks with its past gradients, so rare words
        # (few, large updates) and frequent ones (many) both learn at a fitting pace.
        # Its sparse updates build tensors that autograd made, already valid: checking
        # them again costs time, so say so explicitly (PyTorch warns when left implicit).
        torch.sparse.check_sparse_tensor_invariants.disable()
        optimizer = torch.optim.Adagrad(self.model.parameters(), lr=self.cfg.lr)
        if self.cfg.schedule == "none":
            return {"model": (optimizer, None)}
        # word2vec's schedule: the rate falls linearly from lr to (almost) 0 over the run
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: max(1.0 - step / total_steps, 1e-4)
        )
        return {"model": (optimizer, schedule)}

    def train_batches(self, epoch: int, dist: DistState) -> SkipGramBatches:
        generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        kept = (
            torch.rand(len(self.train_stream), generator=generator) < self.keep[self.train_stream]
        )
        stream = self.train_stream[kept]
        windows = torch.randint(1, self.window + 1, (len(stream),), generator=generator)
        order = torch.randperm(len(stream), generator=generator)
        batches = SkipGramBatches(
            stream, windows, list(order.split(self.cfg.batch_size)), self.window
        )
        self.epoch_words = batches.words
        return batches

    def start_epoch(self, epoch: int) -> None:
        self.epoch_started = time.perf_counter()

    def batch_size(self, batch: Any) -> int:
        return len(batch[1])  # the loss is a mean over pairs

    def train_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        centres, contexts, owners = batch
        with step.autocast():
            loss = self.model(centres, contexts, owners)
        step.update("model", loss)
        self.last_step = time.perf_counter()
        return {"loss": loss.detach()}

    def validation_pairs(self, stream: np.ndarray) -> list[tuple[torch.Tensor, ...]]:
        """Every pair of the held-out stream with the full window, with fixed noise words."""
        stream_t = torch.from_numpy(stream)
        windows = torch.full((len(stream_t),), self.window)
        generator = torch.Generator().manual_seed(self.cfg.seed)
        batches = []
        for centres in torch.arange(len(stream_t)).split(1024):
            words, contexts, owners = context_pairs(stream_t, centres, windows, self.window)
            pool, picks = self.model.draw_noise(len(contexts), generator)
            batches.append((words, contexts, owners, (pool, picks)))
        return batches

    def eval_batches(self, dist: DistState) -> list[tuple[torch.Tensor, ...]] | None:
        return self.val_batches if self.val_batches else None

    def eval_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        return {"loss": self.model(*batch)}

    def end_epoch(self, epoch: int, ctx: RunContext) -> dict[str, float]:
        seconds = max(self.last_step - self.epoch_started, 1e-9)
        return {"words_per_second": self.epoch_words / seconds, "epoch_words": self.epoch_words}


# --- what the vectors learned ----------------------------------------------------------------


def is_word(token: str) -> bool:
    """True for words; False for punctuation tokens ("||period||") and special tokens."""
    return not (token.startswith("||") or token.startswith("<"))


def nearest_neighbours(
    vectors: torch.Tensor, vocab: Vocabulary, words: list[str], k: int = 8
) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` words of highest cosine similarity to each of ``words`` (those in the
    vocabulary), with the similarity: cos(a, b) = a . b / (|a| |b|)."""
    unit = torch.nn.functional.normalize(vectors.detach().float().cpu(), dim=1)
    candidates = torch.tensor([is_word(t) for t in vocab.tokens])
    found: dict[str, list[tuple[str, float]]] = {}
    for word in words:
        if word not in vocab:
            continue
        index = int(vocab.encode_tokens([word])[0])
        similarity = unit @ unit[index]
        similarity[~candidates] = -2.0
        similarity[index] = -2.0  # not the word itself
        best = similarity.topk(min(k, int(candidates.sum()) - 1))
        found[word] = [(vocab.tokens[i], float(s)) for s, i in zip(best.values, best.indices)]
    return found


def neighbours_text(neighbours: dict[str, list[tuple[str, float]]]) -> str:
    return "".join(
        f"{word}: " + ", ".join(f"{other} ({sim:.2f})" for other, sim in near) + "\n"
        for word, near in neighbours.items()
    )


def projection_figure(vectors: torch.Tensor, vocab: Vocabulary, words: int = 150) -> Figure:
    """The vectors of frequent words projected on their two principal components (PCA),
    labelled: words used alike land close together. The 30 most frequent words (mostly
    "the", "and", ...) are left out of large vocabularies."""
    skip = 30 if len(vocab) > 10 * words else 0
    chosen = [i for i, t in enumerate(vocab.tokens) if is_word(t)][skip : skip + words]
    points = vectors.detach().float().cpu()[chosen].numpy()
    centred = points - points.mean(axis=0)
    # the principal directions are the right singular vectors of the centred points
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ directions[:2].T
    figure = Figure(figsize=(9, 9))
    ax = figure.subplots()
    ax.scatter(xy[:, 0], xy[:, 1], s=6, color="#1f77b4")
    for (x, y), index in zip(xy, chosen):
        ax.annotate(vocab.tokens[index], (x, y), fontsize=7, alpha=0.8)
    ax.set_title(f"word vectors of {len(chosen)} frequent words, 2-D PCA projection")
    ax.set_xticks([])
    ax.set_yticks([])
    return figure


# --- files for reuse -------------------------------------------------------------------------


def save_word_vectors(run_dir: Path, vectors: torch.Tensor, vocab: Vocabulary, source: str) -> None:
    """``embeddings.safetensors`` (``vectors`` (V, D) float32) and ``vocabulary.json``."""
    vocab.save(Path(run_dir) / VOCABULARY_FILE)
    meta = {"format": EMBEDDINGS_FORMAT, "vocabulary": VOCABULARY_FILE, "source": source}
    save_tensors(Path(run_dir) / EMBEDDINGS_FILE, {"vectors": vectors.float()}, meta)


def load_word_vectors(folder: str | Path) -> tuple[torch.Tensor, Vocabulary]:
    """The vectors (V, D) and vocabulary a ``word2vec`` run saved in ``folder``."""
    folder = Path(folder)
    if not (folder / EMBEDDINGS_FILE).exists():
        raise UserError(
            f"{folder} holds no {EMBEDDINGS_FILE}; give the folder of a finished "
            "'dlnd run word2vec' (it is printed at the start of the run)."
        )
    tensors, meta = load_tensors(folder / EMBEDDINGS_FILE)
    vocab = load_vocabulary(folder / VOCABULARY_FILE)
    vectors = tensors.get("vectors")
    if (
        meta.get("format") != EMBEDDINGS_FORMAT
        or vectors is None
        or vectors.dim() != 2
        or len(vectors) != len(vocab)
    ):
        raise UserError(
            f"{folder / EMBEDDINGS_FILE} does not hold one vector per word of "
            f"{folder / VOCABULARY_FILE}; give the folder of a finished 'dlnd run word2vec'."
        )
    return vectors.float(), vocab


# --- the run ------------------------------------------------------------------------------


def build_model(config: dict[str, Any], info: dict[str, Any]) -> SkipGram:
    """An untrained skip-gram of the checkpoint's size (its noise distribution is saved
    with the weights)."""
    vocab_size = len(info["vocabulary"]["tokens"])
    return SkipGram(
        vocab_size, config["embedding_dim"], torch.ones(vocab_size), config["negatives"]
    )


def run_word2vec(ctx: RunContext) -> dict[str, float]:
    """The ``word2vec`` recipe: train, show neighbours and a projection, save the vectors."""
    cfg = TrainConfig.from_cfg(ctx.cfg)
    options = ctx.cfg
    if distributed.state().enabled:
        raise UserError(
            "word2vec trains in one process: its sparse embedding updates are not averaged "
            "across processes; run it without torchrun."
        )
    texts, source = corpus_texts(
        options["corpus"], options["data_dir"], options["embedded"], cfg.seed
    )
    corpus = build_corpus(texts, source, options["min_count"], options["max_tokens"])
    ctx.info(f"{source}: {len(corpus.stream):,} words, vocabulary of {len(corpus.vocab):,}")
    model = SkipGram(
        len(corpus.vocab),
        options["embedding_dim"],
        torch.from_numpy(noise_distribution(corpus.counts)),
        options["negatives"],
    )
    task = Word2VecTask(model, corpus, cfg, options["window"], options["subsample"])
    info = {"task": "word-embeddings", "vocabulary": corpus.vocab.to_dict(), "source": source}
    result = train(ctx, task, cfg, info=info)
    vectors = result.model.vectors.detach().cpu()
    if ctx.is_main:
        save_word_vectors(ctx.run_dir, vectors, corpus.vocab, source)
    asked = [w.strip().lower() for w in options["words"].split(",") if w.strip()]
    unknown = [word for word in asked if word not in corpus.vocab]
    if unknown:
        ctx.info(f"not in the vocabulary (no neighbours shown): {', '.join(unknown)}")
    neighbours = nearest_neighbours(vectors, corpus.vocab, asked or list(PROBE_WORDS))
    ctx.save_text(neighbours_text(neighbours), "nearest_neighbours")
    ctx.info(neighbours_text(neighbours).rstrip())
    ctx.save_figure(projection_figure(vectors, corpus.vocab), "projection")
    best = result.history[result.best_epoch - 1]
    speeds = [row["words_per_second"] for row in result.history]
    return {
        "val_loss": best["val_loss"],
        "words_per_second": float(np.mean(speeds)) if speeds else 0.0,
        "epoch_words": result.history[-1]["epoch_words"] if result.history else 0,
        "vocabulary": len(corpus.vocab),
        "words": len(corpus.stream),
        "best_epoch": result.best_epoch,
    }
