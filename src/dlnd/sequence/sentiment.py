"""Sentence sentiment: one code path for ``sentiment-rnn`` and ``sentiment-cnn``.

Per fold: a vocabulary from the training sentences -> the model -> the shared loop (the
kept epoch has the best validation accuracy) -> accuracy on the test fold. The two recipes
differ only in the model (:mod:`dlnd.sequence.classifiers`) and its settings, so their
figures are measured the same way on the same folds (:mod:`dlnd.sequence.reviews`).

Honest evaluation: the test fold's labels are never read before its accuracy is
measured, and its sentences never shape the vocabulary, with one exception taken from the
papers that use pretrained vectors: when ``--embeddings`` names a word2vec run, a word of
any MR sentence that has a pretrained vector joins the vocabulary with that vector (the
vectors come from unlabelled text; word2vec may itself have read the MR sentences, never
their labels). With ``--subwords`` (the LSTM's default) every word of any sentence joins the
vocabulary, but a word that no training sentence holds gets no vector of its own: the model
reads only its letters (its character n-grams, whose vectors training learnt from other
words). Without either, every word of a test sentence that training never saw is unknown.

``--folds 10`` runs the published protocol: every fold in turn is the test set, each in a
sub-run ``fold-01/`` ... ``fold-10/`` of the run folder (a complete run directory each:
metrics, learning curves, checkpoint), then the mean and standard deviation of the test
accuracies. ``--resume`` continues fold by fold: finished folds are read back from their
``final.json``, the interrupted fold continues from its checkpoint, the rest start anew.
The run folder's own ``model.safetensors`` is the last finished fold's model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F

from dlnd.distributed import DistState, resolve_device
from dlnd.errors import UserError
from dlnd.io import atomic_write
from dlnd.runs import FINAL_FILE, RunContext, read_config
from dlnd.sequence.batching import (
    EncodedSentences,
    SentenceBatches,
    bucketed_batch_indices,
    encode_sentences,
    sorted_eval_indices,
)
from dlnd.sequence.classifiers import (
    INIT_RANGE,
    SentenceClassifier,
    build_sentence_model,
    padding_mask,
)
from dlnd.sequence.reviews import (
    LABELS,
    WORD_OPTIONS,
    LabelledSentences,
    Split,
    assign_folds,
    fold_split,
    load_reviews,
)
from dlnd.sequence.word2vec import load_word_vectors
from dlnd.store import META_FILE, MODEL_FILE, STATE_FILE
from dlnd.text import Vocabulary, WordVocabulary
from dlnd.text.subwords import subword_table
from dlnd.trainer import (
    Monitor,
    Step,
    Task,
    TrainConfig,
    make_optimizer,
    make_schedule,
    train,
)
from dlnd.trainer import mean_of as float64_mean

# Published 10-fold cross-validation accuracies on MR.
PUBLISHED = {
    "CNN-rand (Kim 2014)": 0.761,
    "NBSVM-bi (Wang & Manning 2012)": 0.794,
    "CNN-non-static (Kim 2014)": 0.815,
}
# The single split is the first fold of this many.
DEFAULT_FOLDS = 10
# The settings of each model kind, read from the run's options.
MODEL_SETTINGS = {
    "lstm": ("hidden_size", "bidirectional", "pooling", "dropout", "word_dropout"),
    "cnn": ("widths", "feature_maps", "dropout", "max_norm", "word_dropout"),
}


@dataclass
class Pretrained:
    """Word vectors (V, D) of a word2vec run, their vocabulary and where they came from."""

    vectors: torch.Tensor
    vocab: Vocabulary
    folder: str


class SentenceTask(Task):
    """Sentence classification for the shared loop: batches ``(ids, lengths, labels)`` of
    similar lengths, cross-entropy, and the model's own constraint after each update."""

    monitor = Monitor("val_accuracy", "max")

    def __init__(
        self,
        model: SentenceClassifier,
        train_set: EncodedSentences,
        val_set: EncodedSentences,
        cfg: TrainConfig,
        adversarial: float = 0.0,
    ):
        self.model, self.train_set, self.val_set, self.cfg = model, train_set, val_set, cfg
        self.adversarial = adversarial

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        trained = [p for p in self.model.parameters() if p.requires_grad]  # frozen: left out
        optimizer = make_optimizer(self.cfg, trained)
        if isinstance(optimizer, torch.optim.Adam):  # Adam or AdamW: the same, fused
            # One kernel per step instead of a chain of them: the same updates, 6-8x faster
            # on a CPU for the embedding table (V x 300 values), which dominates the step.
            settings = {**optimizer.defaults, "fused": True, "foreach": None}
            optimizer = type(optimizer)(trained, **settings)
        return {"model": (optimizer, make_schedule(self.cfg, optimizer, total_steps))}

    def train_batches(self, epoch: int, dist: DistState) -> SentenceBatches:
        indices = bucketed_batch_indices(
            self.train_set.lengths, self.cfg.batch_size, seed=self.cfg.seed, epoch=epoch,
            rank=dist.rank, world=dist.world_size,
        )  # fmt: skip
        return SentenceBatches(self.train_set, indices, self.model.padding_id)

    def train_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        ids, lengths, labels = batch
        with step.autocast():
            vectors = self.model.embed(ids)
            if self.adversarial > 0 and not vectors.requires_grad:  # frozen word2vec vectors
                vectors.requires_grad_(True)  # (the shift still follows their gradient)
            logits = self.model.classify(vectors, lengths).float()
            loss = F.cross_entropy(logits, labels)
            metrics = {"loss": loss.detach()}  # the plain loss, comparable with val_loss
            if self.adversarial > 0:
                shifted = self.adversarial_loss(loss, vectors, lengths, labels)
                metrics["adversarial_loss"] = shifted.detach()
                loss = loss + shifted
        step.update("model", loss)
        self.model.constrain()  # e.g. Kim's max-norm, after every update
        correct = logits.detach().argmax(1) == labels
        return {**metrics, "accuracy": float64_mean(correct)}

    def adversarial_loss(
        self, loss: torch.Tensor, vectors: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Adversarial training on the word vectors (Goodfellow et al. 2015, for text Miyato
        et al. 2017): the loss of the same batch with each sentence's vectors moved by
        ``adversarial`` (an L2 length over the whole sentence) in the direction that raises
        its loss most, to first order, i.e. along the gradient. A model that must hold its
        answer against that small worst-case change of its words cannot lean on any one
        rare word's vector as much: a regulariser for a data set as small as MR."""
        (gradient,) = torch.autograd.grad(loss, vectors, retain_graph=True)
        # Only the real words move (the CNN's windows also see the padding's zero vectors).
        gradient = gradient.masked_fill(padding_mask(lengths, vectors.shape[1]).unsqueeze(2), 0.0)
        norms = gradient.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1)
        shift = self.adversarial * gradient / norms  # a constant: no gradient flows into it
        shifted = self.model.classify(vectors + shift, lengths).float()
        return F.cross_entropy(shifted, labels)

    def eval_batches(self, dist: DistState) -> SentenceBatches:
        indices = sorted_eval_indices(self.val_set.lengths, self.cfg.eval_batch_size, dist)
        return SentenceBatches(self.val_set, indices, self.model.padding_id)

    def eval_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        ids, lengths, labels = batch
        logits = self.model(ids, lengths).float()
        return {
            "loss": F.cross_entropy(logits, labels),
            "accuracy": float64_mean(logits.argmax(1) == labels),
        }


def predict_probabilities(
    model: SentenceClassifier, data: EncodedSentences, batch_size: int = 500
) -> torch.Tensor:
    """Class probabilities (N, classes) of every sentence of ``data``, in its order."""
    device = next(model.parameters()).device
    order = torch.sort(data.lengths, stable=True).indices
    probabilities = torch.empty(len(data), model.classes)
    model.eval()
    with torch.no_grad():
        for index in order.split(batch_size):
            ids, lengths, _ = SentenceBatches(data, [index], model.padding_id)[0]
            logits = model(ids.to(device), lengths.to(device)).float()
            probabilities[index] = logits.softmax(dim=1).cpu()
    return probabilities


# --- vocabulary and embeddings -------------------------------------------------------------


def fold_vocabulary(
    sentences: list[str], train: np.ndarray, min_count: int, pretrained: Pretrained | None
) -> Vocabulary:
    """The words of the training sentences seen at least ``min_count`` times; with
    pretrained vectors also every word of any sentence that has one (see the module's
    note on honest evaluation)."""
    vocab = WordVocabulary.build(
        [sentences[i] for i in train], min_count=min_count, padding=True, **WORD_OPTIONS
    )
    if pretrained is None:
        return vocab
    return with_more_words(vocab, sentences, lambda word: word in pretrained.vocab)


def with_spelled_words(vocab: Vocabulary, sentences: list[str]) -> Vocabulary:
    """``vocab`` and, after its words, every other word of any sentence: words known by
    their spelling alone (their character n-grams, see :mod:`dlnd.text.subwords`). They
    get no vector of their own, so training never reads anything of them but their
    letters; a test sentence's rare word is then read by its pieces instead of as the
    unknown word."""
    return with_more_words(vocab, sentences, lambda word: True)


def with_more_words(
    vocab: Vocabulary, sentences: list[str], wanted: Callable[[str], bool]
) -> Vocabulary:
    """``vocab`` with the ``wanted`` words of ``sentences`` it lacks after its own, in order
    of first appearance (its words keep their ids)."""
    extra: dict[str, None] = {}  # an ordered set: first appearance
    for sentence in sentences:
        for word in vocab.split(sentence):
            if word not in vocab and wanted(word):
                extra[word] = None
    return WordVocabulary([*vocab.tokens, *extra], padding=vocab.padding, **WORD_OPTIONS)


def initial_vectors(
    vocab: Vocabulary, pretrained: Pretrained, seed: int
) -> tuple[torch.Tensor, int]:
    """The embedding table (V, D) for ``vocab``: each word's pretrained vector where there
    is one, rescaled so that their standard deviation is that of the U(-0.25, 0.25) rows
    the other words get; also how many words had a vector."""
    generator = torch.Generator().manual_seed(seed)
    dim = pretrained.vectors.shape[1]
    table = torch.rand(len(vocab), dim, generator=generator) * 2 * INIT_RANGE - INIT_RANGE
    source_ids = torch.from_numpy(pretrained.vocab.encode_tokens(vocab.tokens))
    found = source_ids != pretrained.vocab.unknown_id
    scale = (INIT_RANGE / 3**0.5) / pretrained.vectors.std().clamp_min(1e-12)
    table[found] = pretrained.vectors[source_ids[found]] * scale
    return table, int(found.sum())


def read_pretrained(folder: str, freeze: bool) -> Pretrained | None:
    """The vectors ``--embeddings`` names, or None for random embeddings."""
    if not folder:
        if freeze:
            raise UserError(
                "--freeze-embeddings keeps pretrained vectors fixed; give --embeddings "
                "WORD2VEC_RUN as well (random vectors are always trained)."
            )
        return None
    vectors, vocab = load_word_vectors(folder)
    return Pretrained(vectors, vocab, folder)


def model_spec(
    kind: str,
    options: dict[str, Any],
    vocab: Vocabulary,
    dim: int,
    known_words: int,
    subwords: np.ndarray | None,
) -> dict:
    """What :func:`build_sentence_model` needs to rebuild the model (JSON); ``subwords`` is
    the n-gram table of :func:`dlnd.text.subwords.subword_table`, if any."""
    settings = {name: options[name] for name in MODEL_SETTINGS[kind]}
    if "widths" in settings:
        settings["widths"] = list(settings["widths"])
    spelling = {}
    if subwords is not None:
        spelling = {
            "subword_buckets": options["subwords"],
            "subword_slots": subwords.shape[1],
            "known_words": known_words,
        }
    return {
        "kind": kind,
        "vocab_size": len(vocab),
        "embedding_dim": dim,
        "padding_id": vocab.padding_id,
        "unknown_id": vocab.unknown_id,
        "classes": len(LABELS),
        **settings,
        **spelling,
    }


# --- one fold ------------------------------------------------------------------------------


@dataclass
class FoldResult:
    """What one train/validation/test split gave."""

    test_accuracy: float
    val_accuracy: float
    best_epoch: int
    model: SentenceClassifier
    test_probabilities: torch.Tensor  # (n_test, classes)
    test_set: EncodedSentences


def train_split(
    ctx: RunContext,
    kind: str,
    data: LabelledSentences,
    split: Split,
    pretrained: Pretrained | None,
    fold: int,
) -> FoldResult:
    """Train on ``split.train``, keep the epoch best on ``split.val``, test on ``split.test``.

    The model's starting weights depend on (seed, fold) alone: a fold trains the same
    whether it runs first, after others, or after ``--resume``, and the single split is
    exactly fold 1 of the 10-fold protocol.
    """
    options, cfg = ctx.cfg, TrainConfig.from_cfg(ctx.cfg)
    vocab = fold_vocabulary(data.sentences, split.train, options["min_count"], pretrained)
    known_words, subwords = len(vocab), None
    if options.get("subwords"):  # (runs made before the option have none)
        vocab = with_spelled_words(vocab, data.sentences)
        skip = (vocab.padding_id, vocab.unknown_id)
        subwords = subword_table(vocab.tokens, options["subwords"], skip)
        ctx.info(
            f"{len(vocab) - known_words:,} more words known by their spelling alone; "
            f"character 3- to 5-grams in {options['subwords']:,} hashed rows"
        )
    dim = pretrained.vectors.shape[1] if pretrained else options["embedding_dim"]
    spec = model_spec(kind, options, vocab, dim, known_words, subwords)
    torch.manual_seed(cfg.seed * 1000 + fold)
    model = build_sentence_model(spec)
    if subwords is not None:
        model.set_subwords(subwords)
    embeddings: dict[str, Any] = {"init": "random"}
    if pretrained is not None:
        table, found = initial_vectors(vocab, pretrained, cfg.seed)
        model.set_embeddings(table, freeze=options["freeze_embeddings"])
        embeddings = {
            "init": "word2vec",
            "from": pretrained.folder,
            "frozen": options["freeze_embeddings"],
            "words_with_vectors": found,
        }
        ctx.info(f"{found:,} of {len(vocab):,} words start from word2vec vectors (size {dim})")

    def subset(indices: np.ndarray) -> EncodedSentences:
        return encode_sentences(vocab, [data.sentences[i] for i in indices], data.labels[indices])

    info = {
        "task": "text-classification",
        "labels": LABELS,
        "vocabulary": vocab.to_dict(),
        "model": spec,
        "embeddings": embeddings,
        "source": data.source,
    }
    task = SentenceTask(model, subset(split.train), subset(split.val), cfg, options["adversarial"])
    result = train(ctx, task, cfg, info=info)
    test_set = subset(split.test)  # the test labels are read only now
    probabilities = predict_probabilities(result.model, test_set)
    test_accuracy = float((probabilities.argmax(1) == test_set.labels).double().mean())
    best = result.history[result.best_epoch - 1]
    return FoldResult(
        test_accuracy, best["val_accuracy"], result.best_epoch, result.model, probabilities,
        test_set,
    )  # fmt: skip


# --- the runs ------------------------------------------------------------------------------


def run_sentiment(ctx: RunContext, kind: str) -> dict[str, Any]:
    """A ``sentiment-*`` recipe with model ``kind`` ("lstm" or "cnn"): one split, or
    ``--folds`` cross-validation."""
    options = ctx.cfg
    resolve_device(options["device"])  # an unavailable --device fails before reading data
    pretrained = read_pretrained(options["embeddings"], options["freeze_embeddings"])
    data = load_reviews(options["data_dir"], options["embedded"], options["seed"])
    ctx.info(f"{data.source}: {len(data.sentences):,} sentences")
    if options["folds"] == 1:
        return run_single_split(ctx, kind, data, pretrained)
    return run_folds(ctx, kind, data, pretrained)


def run_single_split(
    ctx: RunContext, kind: str, data: LabelledSentences, pretrained: Pretrained | None
) -> dict[str, Any]:
    fold_of = assign_folds(data.labels, DEFAULT_FOLDS, ctx.cfg["seed"])
    split = fold_split(data.labels, fold_of, 0, ctx.cfg["seed"])
    result = train_split(ctx, kind, data, split, pretrained, fold=0)
    ctx.info(f"test accuracy {result.test_accuracy:.4f} on {len(split.test)} sentences")
    test_sentences = [data.sentences[i] for i in split.test]
    ctx.save_figure(accuracy_by_length(result), "accuracy_by_length")
    ctx.save_text(confident_mistakes(result, test_sentences), "confident_mistakes")
    return {
        "test_accuracy": result.test_accuracy,
        "val_accuracy": result.val_accuracy,
        "best_epoch": result.best_epoch,
        "test_sentences": len(split.test),
    }


def fold_context(ctx: RunContext, fold: int) -> RunContext:
    """The sub-run of fold ``fold`` (0-based): continued if ``--resume`` finds its
    checkpoint, otherwise started afresh in an emptied folder."""
    run_dir = ctx.run_dir / f"fold-{fold + 1:02d}"
    resumed = ctx.resumed and (run_dir / STATE_FILE).exists()
    if ctx.is_main and not resumed and run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished fold that saved no epoch
    sub = RunContext(ctx.recipe, ctx.cfg, run_dir, is_main=ctx.is_main, resumed=resumed)
    sub.write_config()
    return sub


def finished_fold(ctx: RunContext, fold: int) -> dict[str, Any] | None:
    """The metrics of fold ``fold`` if an earlier attempt of this run finished it."""
    run_dir = ctx.run_dir / f"fold-{fold + 1:02d}"
    if not (ctx.resumed and (run_dir / FINAL_FILE).exists()):
        return None
    read_config(run_dir)  # a damaged fold folder is an error, not a silent restart
    return json.loads((run_dir / FINAL_FILE).read_text(encoding="utf-8"))["metrics"]


def run_folds(
    ctx: RunContext, kind: str, data: LabelledSentences, pretrained: Pretrained | None
) -> dict[str, Any]:
    folds, seed = ctx.cfg["folds"], ctx.cfg["seed"]
    if folds > len(data.labels) // 2:
        raise UserError(f"--folds {folds} is more than the {len(data.labels)} sentences allow.")
    fold_of = assign_folds(data.labels, folds, seed)
    count = min(folds, ctx.cfg["max_folds"] or folds)
    rows: list[dict[str, Any]] = []
    for fold in range(count):
        metrics = finished_fold(ctx, fold)
        if metrics is not None:
            ctx.info(f"fold {fold + 1}/{folds}: finished earlier, read back")
        else:
            ctx.info(f"fold {fold + 1}/{folds}")
            sub = fold_context(ctx, fold)
            split = fold_split(data.labels, fold_of, fold, seed)
            result = train_split(sub, kind, data, split, pretrained, fold)
            metrics = {
                "test_accuracy": result.test_accuracy,
                "val_accuracy": result.val_accuracy,
                "best_epoch": result.best_epoch,
                "test_sentences": len(split.test),
            }
            sub.write_final(metrics, device=str(next(result.model.parameters()).device))
            keep_checkpoint_of(sub.run_dir, ctx)
        rows.append(metrics)
        ctx.info(f"fold {fold + 1}: test accuracy {metrics['test_accuracy']:.4f}")
    accuracies = np.array([row["test_accuracy"] for row in rows])
    summary = fold_summary(accuracies, folds)
    ctx.info(summary)
    ctx.save_text(summary, "folds")
    ctx.save_figure(folds_figure(accuracies, folds, ctx.recipe.name), "folds")
    return {
        "test_accuracy": float(accuracies.mean()),
        "test_accuracy_std": float(accuracies.std(ddof=1)) if len(accuracies) > 1 else 0.0,
        "folds": len(rows),
        "val_accuracy": float(np.mean([row["val_accuracy"] for row in rows])),
        "fold_test_accuracies": [round(float(a), 4) for a in accuracies],
    }


def keep_checkpoint_of(fold_dir: Path, ctx: RunContext) -> None:
    """Copy a finished fold's model into the run folder (atomically): the run then holds a
    model, and an interruption never deletes finished folds."""
    if not ctx.is_main:
        return
    for name in (MODEL_FILE, META_FILE):
        source = fold_dir / name
        atomic_write(ctx.run_dir / name, lambda tmp, source=source: shutil.copyfile(source, tmp))


# --- reports ---------------------------------------------------------------------------------


def fold_summary(accuracies: np.ndarray, folds: int) -> str:
    """A table of the folds' test accuracies with their mean and standard deviation."""
    lines = [f"fold {i + 1:>2}: {a:.4f}" for i, a in enumerate(accuracies)]
    std = accuracies.std(ddof=1) if len(accuracies) > 1 else 0.0
    lines.append(
        f"mean {accuracies.mean():.4f} +- {std:.4f} (sample standard deviation) over "
        f"{len(accuracies)} of {folds} folds"
    )
    lines += [f"published: {name} {value:.3f}" for name, value in PUBLISHED.items()]
    return "\n".join(lines) + "\n"


def folds_figure(accuracies: np.ndarray, folds: int, title: str) -> Figure:
    """Test accuracy of each fold, their mean, and the published 10-fold figures."""
    figure = Figure(figsize=(7, 4))
    ax = figure.subplots()
    ax.bar(np.arange(1, len(accuracies) + 1), accuracies, color="#1f77b4", alpha=0.8)
    ax.axhline(accuracies.mean(), color="black", label=f"mean {accuracies.mean():.3f}")
    for (name, value), colour in zip(PUBLISHED.items(), ("#d62728", "#ff7f0e", "#2ca02c")):
        ax.axhline(value, color=colour, linestyle="--", label=name)
    low = min(float(accuracies.min()), min(PUBLISHED.values())) - 0.03
    ax.set_ylim(max(low, 0.0), min(float(accuracies.max()) + 0.03, 1.0))
    ax.set_xlabel(f"fold (of {folds})")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{title}: {len(accuracies)}-fold test accuracy")
    ax.legend(fontsize=8, loc="lower right")
    return figure


def accuracy_by_length(result: FoldResult) -> Figure:
    """Test accuracy for sentences of different lengths (in tokens)."""
    lengths = result.test_set.lengths.numpy()
    correct = (result.test_probabilities.argmax(1) == result.test_set.labels).numpy()
    edges = [1, 11, 21, 31, 41, 10_000]
    names, values, counts = [], [], []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (lengths >= low) & (lengths < high)
        if inside.any():
            names.append(f"{low}-{high - 1}" if high < 10_000 else f"{low}+")
            values.append(correct[inside].mean())
            counts.append(int(inside.sum()))
    figure = Figure(figsize=(6, 3.6))
    ax = figure.subplots()
    bars = ax.bar(names, values, color="#2ca02c", alpha=0.8)
    for bar, count in zip(bars, counts):
        ax.annotate(f"n={count}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)  # fmt: skip
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("sentence length (tokens)")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy by sentence length")
    return figure


def confident_mistakes(result: FoldResult, sentences: list[str], count: int = 12) -> str:
    """The test sentences the model got wrong with the highest confidence."""
    predicted = result.test_probabilities.argmax(1)
    confidence = result.test_probabilities.max(1).values
    wrong = torch.nonzero(predicted != result.test_set.labels).flatten()
    ranked = wrong[confidence[wrong].argsort(descending=True)][:count]
    return "".join(
        f"said {LABELS[int(predicted[i])]} ({float(confidence[i]):.2f}), is "
        f"{LABELS[int(result.test_set.labels[i])]}: {sentences[int(i)]}\n"
        for i in ranked
    )
