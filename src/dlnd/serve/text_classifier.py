"""The text-classification task: a sentence in, its classes (negative, positive) with
probabilities out.

``POST /v1/models/{name}/predict`` takes ``{"text": "a gripping, moving film", "top_k": 2}``
and answers as image classification does, plus how many words the model read::

    {"model": ..., "predictions": [{"label": "positive", "index": 1, "probability": 0.97},
     ...], "tokens": 5, "truncated": false}

The text is split into words by the model's own vocabulary (:mod:`dlnd.text`, no PyTorch);
a word it does not know is its unknown token, never an error. A text of more than
:data:`MAX_TOKENS` words is read up to that word and the answer says ``truncated``.

Concurrent requests share forward passes through the micro-batcher. Its examples must
share one shape, so each request is one row ``[length, id_1, ..., id_MAX_TOKENS]`` (padding
after the sentence). A recurrent model pays for every step of every row, padding included:
one batch of MR sentences (median 21 words, the longest near 50) cut to its longest
sentence spends about half its work on padding. So the batch is sorted by length and run
as a few groups of similar length (:func:`length_groups`), each cut to its own longest
sentence. The models never look at the padding (:mod:`dlnd.sequence.classifiers`), so a
sentence gets the same scores in any group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dlnd.errors import UserError
from dlnd.serve.batching import MicroBatcher
from dlnd.serve.classifier import Prediction, softmax
from dlnd.serve.errors import InputError
from dlnd.serve.runtime import OnnxModel
from dlnd.serve.task import Endpoint, ParsePool, ServedModel, ServeSettings, TaskPage, parse_json
from dlnd.text import Vocabulary, load_vocabulary

MAX_TEXT_CHARS = 10_000
MAX_TOKENS = 400  # words read of one text; MR's longest sentence has about 60
MAX_TOP_K = 1000
GROUP_SHORTEST_SHARE = 0.75  # a batch's length groups: see length_groups


class TextPredictRequest(BaseModel):
    """A text to classify."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description=f"A sentence or a short review; the model reads its first {MAX_TOKENS} "
        "words (words it does not know are read as unknown).",
    )
    top_k: int | None = Field(
        None, ge=1, le=MAX_TOP_K, description="How many classes to return (default: all)."
    )


class TextPredictResponse(BaseModel):
    """The classes, most probable first, and how much of the text was read."""

    model: str
    predictions: list[Prediction]
    tokens: int
    truncated: bool


def length_groups(
    lengths: np.ndarray, shortest_share: float = GROUP_SHORTEST_SHARE
) -> list[np.ndarray]:
    """The indices of ``lengths`` (N,) in groups of similar length, longest first.

    Going down the lengths in decreasing order, a group ends before the first length
    below ``shortest_share`` of the group's longest: each row of a group pads at most
    ``1 - shortest_share`` of the group's steps. Each group is one more forward pass
    (about ten sentence-steps of fixed cost for the MR model), so groups of any narrower
    share would cost more passes than they save padding; with 3/4, a batch of 64 MR
    sentences is 6 to 8 groups and pads 12 % of its steps instead of 53 %.
    """
    order = np.argsort(-lengths, kind="stable")
    longest_of_group = lengths[order[0]]
    starts = [0]
    for position, index in enumerate(order[1:], start=1):
        if lengths[index] < shortest_share * longest_of_group:
            starts.append(position)
            longest_of_group = lengths[index]
    return np.split(order, starts[1:])


class SentenceBatch:
    """The exported classifier on micro-batcher rows ``(N, 1 + MAX_TOKENS)`` int64:
    column 0 the length, then the ids (padding after the sentence)."""

    def __init__(self, path: Path, threads: int) -> None:
        self.session = OnnxModel(path, threads=threads).session

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """rows (N, 1 + MAX_TOKENS) -> logits (N, classes), one forward pass per group of
        similar length (:func:`length_groups`)."""
        lengths = rows[:, 0]
        groups = length_groups(lengths)
        scores = []
        for group in groups:
            group_lengths = lengths[group]
            ids = rows[group, 1 : 1 + int(group_lengths[0])]  # the group's longest comes first
            scores.append(self.session.run(None, {"ids": ids, "lengths": group_lengths})[0])
        logits = np.empty((len(rows), scores[0].shape[1]), scores[0].dtype)
        logits[np.concatenate(groups)] = np.concatenate(scores)
        return logits


def encode_row(vocab: Vocabulary, text: str) -> tuple[np.ndarray, int]:
    """A text -> its batcher row ``(1 + MAX_TOKENS,)`` and how many words it holds."""
    ids = vocab.encode(text)
    if len(ids) == 0:
        raise InputError("The text holds no words; send a sentence to classify.")
    kept = ids[:MAX_TOKENS]
    row = np.full(1 + MAX_TOKENS, vocab.padding_id, np.int64)
    row[0] = len(kept)
    row[1 : 1 + len(kept)] = kept
    return row, len(ids)


TEXT_PAGE = TaskPage(
    tab="reviews",
    title="Reviews",
    html="text-classification.html",
    script="text-classification.js",
)


class TextClassifier(ServedModel):
    """An exported sentence classifier run by ONNX Runtime behind a micro-batcher."""

    task = "text-classification"
    endpoints = (
        Endpoint("predict", "The most probable classes of one text.", TextPredictResponse),
    )
    page = TEXT_PAGE

    def __init__(
        self,
        name: str,
        card: dict[str, Any],
        folder: Path,
        settings: ServeSettings,
        parse_pool: ParsePool,
    ) -> None:
        super().__init__(name, card, folder, settings, parse_pool)
        try:
            self.classes = [str(label) for label in card["classes"]]
            self.vocab: Vocabulary = load_vocabulary(folder / Path(card["vocabulary"]).name)
        except (KeyError, TypeError) as err:
            raise UserError(
                f"{folder} holds a damaged {self.task} model card (at {err}); export it again."
            ) from err
        if self.vocab.padding_id is None:
            raise UserError(f"The vocabulary in {folder} has no padding token; export it again.")
        forward = SentenceBatch(folder / card["file"], settings.threads)
        warm_up, _ = encode_row(self.vocab, "warm up")
        forward(np.stack([warm_up] * settings.max_batch))
        self.batcher = MicroBatcher(forward, settings.max_batch, settings.max_wait_ms, name)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "classes": self.classes, "max_tokens": MAX_TOKENS}

    def request_schema(self, endpoint: str) -> dict[str, Any]:
        return TextPredictRequest.model_json_schema()

    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any]:
        row, tokens, top_k = await self.parse_pool.run(self.json_to_row, body)
        probabilities = softmax(await self.batcher.run(row))
        best = np.argsort(-probabilities, kind="stable")[:top_k]
        return {
            "model": self.name,
            "predictions": [
                {"label": self.classes[i], "index": int(i), "probability": float(probabilities[i])}
                for i in best
            ],
            "tokens": tokens,
            "truncated": tokens > MAX_TOKENS,
        }

    def json_to_row(self, body: bytes) -> tuple[np.ndarray, int, int]:
        """A JSON body -> (batcher row, words in the text, top_k); runs in the parse pool."""
        request = parse_json(TextPredictRequest, body)
        row, tokens = encode_row(self.vocab, request.text)
        return row, tokens, request.top_k or len(self.classes)

    def close(self) -> None:
        self.batcher.close()
