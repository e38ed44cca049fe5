"""Sentences labelled positive or negative: the Movie Review data, generated reviews, folds.

MR (Pang & Lee, 2005) holds 5,331 positive and 5,331 negative one-sentence movie reviews
and has no official test set: Kim (2014) and the papers he compares with report the mean
accuracy of 10-fold cross-validation. Here each fold is a stratified tenth of the data
(classes in proportion); for each fold as the test set, a stratified tenth of the other
nine is held out for validation (the kept epoch is the one with the best validation
accuracy, as Kim's early stopping), and the model trains on the rest. The default single
split is the first of those ten folds: 81 % train, 9 % validation, 10 % test.

The generated reviews stand in for MR in the tour and the tests: short sentences whose
label needs word order ("not good" is negative; in "dull, but the acting is superb" the
clause after "but" decides), produced by a small grammar with a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlnd.data.readers import load_mr_sentiment, stratified_split

LABELS = ["negative", "positive"]  # label 0, label 1
# How every text recipe here splits text into words: lower case, punctuation marks as
# tokens of their own ("good!" -> "good", "||exclamation_mark||"); word2vec and the
# sentence classifiers must agree so that pretrained vectors find their words.
WORD_OPTIONS = {"lowercase": True, "punctuation": True}


@dataclass
class LabelledSentences:
    """``sentences[i]`` with label ``labels[i]`` (``labels``: (N,) int64, 1 = positive);
    ``source`` says in words where they came from."""

    sentences: list[str]
    labels: np.ndarray
    source: str


def load_reviews(data_dir: str | Path | None, embedded: bool, seed: int) -> LabelledSentences:
    """MR from the data catalogue, or generated reviews when ``embedded``."""
    if embedded:
        return generated_reviews(2000, seed)
    sentences, labels = load_mr_sentiment(data_dir)
    return LabelledSentences(sentences, labels, "MR sentence polarity v1.0 (Pang & Lee, 2005)")


# --- generated reviews ---------------------------------------------------------------------

_POSITIVE = (
    "good", "great", "wonderful", "brilliant", "moving", "funny",
    "charming", "clever", "beautiful", "gripping", "delightful", "superb",
)  # fmt: skip
_NEGATIVE = (
    "bad", "awful", "boring", "dull", "terrible", "clumsy",
    "tedious", "lifeless", "predictable", "weak", "silly", "painful",
)  # fmt: skip
_SUBJECTS = (
    "the film", "this movie", "the story", "the acting", "the script", "the plot",
    "the cast", "the ending", "the dialogue", "the direction", "the soundtrack", "the picture",
)  # fmt: skip
_INTENSIFIERS = ("", "very", "really", "truly", "quite", "so", "utterly")
_OPENERS = ("", "honestly ,", "overall ,", "in the end ,", "frankly ,", "all in all ,")


def _clause(rng: random.Random, positive: bool) -> str:
    """A clause that says ``positive`` (True) or negative (False), sometimes by negation."""
    negated = rng.random() < 0.3
    adjective = rng.choice(_POSITIVE if positive != negated else _NEGATIVE)
    subject, intensifier = rng.choice(_SUBJECTS), rng.choice(_INTENSIFIERS)
    verb = rng.choice(("is not", "never feels")) if negated else rng.choice(("is", "feels"))
    return " ".join(w for w in (subject, verb, intensifier, adjective) if w)


def generated_review(rng: random.Random, positive: bool) -> str:
    """One review sentence whose last clause carries the label."""
    last = _clause(rng, positive)
    form = rng.random()
    if form < 0.5:
        sentence = f"{rng.choice(_OPENERS)} {last} ."
    elif form < 0.8:
        sentence = f"{_clause(rng, rng.random() < 0.5)} , but {last} ."
    else:
        sentence = f"although {_clause(rng, rng.random() < 0.5)} , {last} ."
    return sentence.strip()


def generated_reviews(n: int, seed: int) -> LabelledSentences:
    """``n`` generated review sentences, half positive, in a seeded random order."""
    rng = random.Random(seed)
    labels = np.array([i % 2 for i in range(n)], dtype=np.int64)
    rng.shuffle(labels)
    sentences = [generated_review(rng, bool(label)) for label in labels]
    source = f"embedded: {n} generated review sentences (negation and 'but' decide the label)"
    return LabelledSentences(sentences, labels, source)


# --- folds ---------------------------------------------------------------------------------


@dataclass
class Split:
    """Indices of the training, validation and test sentences (each (n,) int64, sorted)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def assign_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each example: (N,) int64.

    Each class's examples are dealt round-robin in a seeded random order, so every fold
    holds the classes in proportion and the sizes of two folds differ by at most one per
    class.
    """
    labels = np.asarray(labels)
    fold_of = np.empty(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        fold_of[members] = np.arange(len(members)) % folds
    return fold_of


def fold_split(
    labels: np.ndarray, fold_of: np.ndarray, fold: int, seed: int, val_fraction: float = 0.1
) -> Split:
    """Fold ``fold`` as the test set; a stratified ``val_fraction`` of the rest for
    validation (drawn with ``seed`` and the fold), the remainder for training."""
    labels = np.asarray(labels)
    test = np.flatnonzero(fold_of == fold)
    rest = np.flatnonzero(fold_of != fold)
    n_val = max(1, round(val_fraction * len(rest)))
    train_pos, val_pos = stratified_split(labels[rest], n_val, seed=seed * 1000 + fold)
    return Split(rest[train_pos], rest[val_pos], test)
