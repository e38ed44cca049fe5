"""The text recipes: ``word2vec``, ``sentiment-rnn``, ``sentiment-cnn`` and ``chatbot``.

Each is data: options, defaults, quick settings and a run function from
:mod:`dlnd.sequence.word2vec` or :mod:`dlnd.sequence.sentiment`. The two sentiment
recipes share every option but the model's own, and the same run function.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from dlnd.config import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    positive_int_list,
    text,
    unit_interval,
)
from dlnd.recipes import Option, Recipe, register
from dlnd.runs import RunContext
from dlnd.sequence import word2vec
from dlnd.sequence.chatbot import build_chat_model, run_chatbot
from dlnd.sequence.classifiers import POOLINGS, build_sentence_model
from dlnd.sequence.recipes import held_out_fraction
from dlnd.sequence.sentiment import run_sentiment
from dlnd.sequence.seq2seq import DECODERS
from dlnd.trainer import TRAINER_OPTIONS

WORD2VEC = register(
    Recipe(
        name="word2vec",
        summary="Word vectors by skip-gram with negative sampling: nearest neighbours, "
        "a 2-D projection, vectors saved for the sentiment recipes.",
        dataset="anna + seinfeld + MR sentences (or one of them, or text8)",
        target="neighbours that share meaning; >= 3x the words/s of the course's loop",
        run=word2vec.run_word2vec,
        options=(
            Option("--corpus", text, "all", "text to learn from", choices=tuple(word2vec.CORPORA)),
            Option("--embedding-dim", positive_int, 300, "size D of each word vector"),
            Option("--window", positive_int, 5, "largest distance of a context word"),
            Option("--negatives", positive_int, 5, "noise words K per (centre, context) pair"),
            Option("--min-count", positive_int, 5, "drop words seen fewer times"),
            Option(
                "--subsample",
                non_negative_float,
                1e-4,
                "threshold t of the subsampling of frequent words (0 = keep every word)",
            ),
            Option("--max-tokens", non_negative_int, 0, "read only the first N words (0 = all)"),
            Option("--words", text, "", "comma-separated words whose neighbours to show"),
            Option(
                "--schedule",
                text,
                "linear",
                "learning rate: falling linearly to 0 over the run, or constant",
                choices=("linear", "none"),
            ),
        ),
        # --batch-size counts centre words; each brings about window + 1 pairs
        defaults={"epochs": 5, "batch_size": 1024, "lr": 0.2},
        quick={"epochs": 4, "embedding_dim": 32, "min_count": 1, "subsample": 0.0},
        build_model=word2vec.build_model,
    )
)


def build_classifier(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    """A sentence classifier of the shape its checkpoint's ``info["model"]`` records."""
    return build_sentence_model(info["model"])


SENTENCE_OPTIONS = (
    Option(
        "--folds",
        positive_int,
        1,
        "1: one fixed stratified split (fold 1 of 10 is the test set); "
        "10: the published 10-fold cross-validation (mean +- std)",
    ),
    Option("--max-folds", non_negative_int, 0, "run only the first N folds (0 = all)"),
    Option("--embeddings", text, "", "a word2vec run folder whose vectors start the embeddings"),
    Option("--freeze-embeddings", bool, False, "keep the word2vec vectors fixed (Kim's static)"),
    Option("--embedding-dim", positive_int, 300, "size of the word vectors (random start)"),
    Option("--min-count", positive_int, 1, "words seen fewer times in training are unknown"),
    Option(
        "--dropout",
        unit_interval,
        0.5,
        "dropout before the output layer (and, in the LSTM, on the word vectors)",
    ),
    Option("--word-dropout", unit_interval, 0.0, "chance of reading a word as unknown in training"),
    Option(
        "--subwords",
        non_negative_int,
        0,
        "add to each word's vector the mean of its character 3- to 5-grams' vectors, hashed "
        "into this many rows, so rare and unseen words are read by their pieces (0 = off)",
    ),
    Option(
        "--adversarial",
        non_negative_float,
        0.0,
        "adversarial training: also learn from each sentence's word vectors moved this far "
        "(L2) the way that hurts most (0 = off; about 2x the time per step)",
    ),
)


def run_rnn(ctx: RunContext) -> dict[str, Any]:
    return run_sentiment(ctx, "lstm")


def run_cnn(ctx: RunContext) -> dict[str, Any]:
    return run_sentiment(ctx, "cnn")


# Quick settings: a small model on the generated reviews, a few seconds.
QUICK_SENTENCES = {"epochs": 4, "embedding_dim": 32, "batch_size": 32, "lr": 0.005}

SENTIMENT_RNN = register(
    Recipe(
        name="sentiment-rnn",
        summary="An LSTM reads each movie-review sentence whole (packed, no padding) and "
        "says positive or negative.",
        dataset="MR sentence polarity (rt-polarity.pos/.neg)",
        target="10-fold accuracy >= 79% (NBSVM 79.4%); more with word2vec vectors",
        run=run_rnn,
        options=(
            *SENTENCE_OPTIONS,
            Option("--hidden-size", positive_int, 128, "LSTM units in each direction"),
            Option("--bidirectional", bool, True, "a second LSTM reads each sentence backwards"),
            Option("--pooling", text, "max", "outputs -> one vector", choices=POOLINGS),
            *TRAINER_OPTIONS,
        ),
        defaults={
            "epochs": 8,
            "batch_size": 50,
            "lr": 1e-3,
            "word_dropout": 0.25,
            "adversarial": 1.0,
            "subwords": 20000,
        },
        # (the adversarial shift scaled with the vectors' length: sqrt(32 / 300) ~ 0.3)
        quick={
            **QUICK_SENTENCES,
            "hidden_size": 32,
            "word_dropout": 0.0,
            "adversarial": 0.3,
            "subwords": 2000,
        },
        build_model=build_classifier,
    )
)

SENTIMENT_CNN = register(
    Recipe(
        name="sentiment-cnn",
        summary="Kim's (2014) CNN for sentence classification, the published baseline, on "
        "the same folds as sentiment-rnn.",
        dataset="MR sentence polarity (rt-polarity.pos/.neg)",
        target="10-fold accuracy within 1 point of the published CNN-rand 76.1%",
        run=run_cnn,
        options=(
            *SENTENCE_OPTIONS,
            Option("--widths", positive_int_list, (3, 4, 5), "words per convolution window"),
            Option("--feature-maps", positive_int, 100, "feature maps per window width"),
            Option("--max-norm", positive_float, 3.0, "largest L2 norm of an output weight vector"),
            *TRAINER_OPTIONS,
        ),
        defaults={"epochs": 10, "batch_size": 50, "lr": 1e-3},
        quick={**QUICK_SENTENCES, "feature_maps": 16},
        build_model=build_classifier,
    )
)

CHATBOT = register(
    Recipe(
        name="chatbot",
        summary="A GRU encoder-decoder with Luong attention (and copying of the line's words) "
        "answers a Seinfeld line; trained beside two baselines (no attention, no line).",
        dataset="seinfeld (Seinfeld scripts, 3.5 MB): (line, reply) pairs",
        target="reply perplexity below both baselines (decoder without attention, language "
        "model of replies)",
        run=run_chatbot,
        options=(
            Option("--decoder", text, "attention", "the model trained", choices=DECODERS),
            Option("--baselines", bool, True, "also train the two baselines, same pairs"),
            Option("--embedding-size", positive_int, 64, "size of each word's vector"),
            Option("--hidden-size", positive_int, 128, "GRU units (each direction, encoder)"),
            Option("--dropout", unit_interval, 0.3, "dropout on word vectors and outputs"),
            Option("--max-words", positive_int, 20, "longest reply kept; lines keep their end"),
            Option("--context-turns", non_negative_int, 2, "earlier turns read with the line"),
            Option("--copy", bool, True, "the attention decoder may copy words of the line"),
            Option(
                "--warm-start",
                bool,
                True,
                "train the language model first; the models that read the line start from it",
            ),
            Option("--min-count", positive_int, 2, "words seen fewer times are unknown"),
            Option("--max-vocabulary", positive_int, 8000, "most words kept, specials included"),
            Option("--max-pairs", non_negative_int, 0, "use the first N pairs only (0 = all)"),
            Option("--val-fraction", held_out_fraction, 0.1, "held-out tail of the pairs"),
            *TRAINER_OPTIONS,
        ),
        defaults={
            "epochs": 5,
            "batch_size": 64,
            "lr": 4e-3,
            "clip_grad": 5.0,
            "schedule": "onecycle",
            "eval_batch_size": 256,
        },
        quick={
            "epochs": 6,
            "batch_size": 32,
            "embedding_size": 16,
            "hidden_size": 32,
            "dropout": 0.0,
            "context_turns": 0,
            "min_count": 1,
            "lr": 0.02,
        },
        build_model=build_chat_model,
    )
)
