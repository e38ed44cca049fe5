"""The chat task: a message in, the chatbot's reply out (exported by
:mod:`dlnd.serve.chat_export`).

``POST /v1/models/{name}/reply`` takes ``{"message": str, "history": [str], "seed": int}``
(and optionally ``temperature``, ``top_k``, ``attention``) and answers ``{"reply": str,
"attention": [[float]] | null, "words_in": [...], "words_out": [...]}``; ``attention[i][j]``
is how much written word i looked at read word j, given when ``"attention": true``.

The reply loop runs here in NumPy around two ONNX Runtime graphs, in a worker thread of the
parse pool (so the event loop keeps answering, and at most that many replies run at once).
Greedy replies (``temperature`` 0, the default) are the same words as ``dlnd chat``'s;
sampled ones follow the seed (NumPy's generator, so not the same draws as PyTorch's).
Unknown words are read as the unknown word: no message is refused for its words, only for
its size (422 with one sentence).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dlnd.sequence.dialogue import encoded_line
from dlnd.serve.extras import import_extra
from dlnd.serve.task import (
    Endpoint,
    ParsePool,
    ServedModel,
    ServeSettings,
    TaskPage,
    check_value_count,
    parse_json,
)
from dlnd.text.vocabulary import vocabulary_from_dict

MAX_MESSAGE = 1000  # characters of a message or of one turn of history
MAX_HISTORY = 20  # turns of history
MAX_SEED = 2**32 - 1


class ChatRequest(BaseModel):
    """A message, the conversation so far and how to choose the reply's words."""

    model_config = ConfigDict(extra="forbid", strict=True)

    message: str = Field(max_length=MAX_MESSAGE, description="What you say.")
    history: list[str] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description="Earlier turns, oldest first (read if the model was trained with context).",
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of a sampled reply.")
    temperature: float = Field(
        0.0, ge=0.0, le=10.0, description="0: the likeliest word each step; above: sampled."
    )
    top_k: int = Field(0, ge=0, le=100_000, description="Sample from the k likeliest (0: all).")
    attention: bool = Field(False, description="Also return the attention weights.")


class ChatResponse(BaseModel):
    """The reply, and which read word each written word looked at."""

    model: str
    reply: str
    words_in: list[str]
    words_out: list[str]
    attention: list[list[float]] | None


CHAT_PAGE = TaskPage(tab="chat", title="Chat", html="chat.html", script="chat.js")


class OnnxChatModel:
    """The encoder and decoder-step graphs, and the reply loop around them."""

    def __init__(
        self,
        encoder: Path,
        step: Path,
        end_id: int,
        never_written: Sequence[int],
        threads: int = 1,
    ) -> None:
        ort = import_extra("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.encoder = ort.InferenceSession(str(encoder), options, ["CPUExecutionProvider"])
        self.step = ort.InferenceSession(str(step), options, ["CPUExecutionProvider"])
        self.end_id, self.never_written = end_id, list(never_written)
        # A model that copies words of the line reads the line's ids at every step.
        self.copies = "ids" in {node.name for node in self.step.get_inputs()}

    def _encode(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(self.encoder.run(None, {"ids": ids[None].astype(np.int64)}))

    def _step(
        self, word: int, state: np.ndarray, memory: np.ndarray, keys: np.ndarray, ids: np.ndarray
    ) -> list:
        feed = {"word": np.array([[word]], np.int64), "state": state, "memory": memory,
                "keys": keys}  # fmt: skip
        if self.copies:
            feed["ids"] = ids[None].astype(np.int64)
        return self.step.run(None, feed)

    def first_logits(self, ids: np.ndarray) -> np.ndarray:
        """The logits (V,) of the first written word of a reply to ``ids`` (S,)."""
        memory, keys, state = self._encode(ids)
        return self._step(self.end_id, state, memory, keys, ids)[0][0]

    def reply(
        self,
        ids: np.ndarray,
        max_words: int,
        temperature: float = 0.0,
        top_k: int = 0,
        seed: int = 0,
    ) -> tuple[list[int], np.ndarray]:
        """The reply's ids to a line ``ids`` (S,) (S >= 1) and the attention (written, S)."""
        rng = np.random.default_rng(seed)
        memory, keys, state = self._encode(ids)
        word, written, rows = self.end_id, [], []
        for _ in range(max_words):
            logits, state, attention = self._step(word, state, memory, keys, ids)
            scores = logits[0].astype(np.float64)
            scores[self.never_written] = -np.inf
            word = choose(scores, temperature, top_k, rng)
            if word == self.end_id:
                break
            written.append(word)
            rows.append(attention[0])
        return written, np.array(rows, np.float32).reshape(len(rows), len(ids))


def choose(scores: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    """The likeliest word at ``temperature`` 0, else one drawn from softmax(scores / T) over
    the ``top_k`` likeliest (all if 0)."""
    if temperature == 0:
        return int(np.argmax(scores))
    scaled = scores / temperature
    if 0 < top_k < len(scaled):
        scaled[scaled < np.sort(scaled)[-top_k]] = -np.inf
    probabilities = np.exp(scaled - scaled.max())
    return int(rng.choice(len(scaled), p=probabilities / probabilities.sum()))


class ChatModel(ServedModel):
    """A chatbot: the ``reply`` endpoint."""

    task = "chat"
    endpoints = (Endpoint("reply", "The chatbot's reply to a message.", ChatResponse),)
    page = CHAT_PAGE

    def __init__(
        self,
        name: str,
        card: dict[str, Any],
        folder: Path,
        settings: ServeSettings,
        parse_pool: ParsePool,
    ) -> None:
        super().__init__(name, card, folder, settings, parse_pool)
        self.vocab = vocabulary_from_dict(card["vocabulary"])
        self.max_words = card["input"]["max_words"]
        self.context_turns = card["input"]["context_turns"]
        self.model = OnnxChatModel(
            folder / card["file"], folder / card["decoder_step"]["file"], card["end_id"],
            card["never_written"], threads=settings.threads,
        )  # fmt: skip
        self.model.reply(np.array([self.vocab.unknown_id]), 2)  # warm up

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "context_turns": self.context_turns}

    def request_schema(self, endpoint: str) -> dict[str, Any]:
        return ChatRequest.model_json_schema()

    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any]:
        check_value_count(body, MAX_HISTORY + 8, f"{MAX_HISTORY} turns of history")
        return await self.parse_pool.run(self.respond, body)

    def respond(self, body: bytes) -> dict[str, Any]:
        """Parse the request and write the reply (in a worker thread)."""
        request = parse_json(ChatRequest, body)
        ids = encoded_line(
            self.vocab, request.message, request.history, self.context_turns, self.max_words
        )
        written, attention = self.model.reply(
            ids, self.max_words, request.temperature, request.top_k, request.seed
        )
        return {
            "model": self.name,
            "reply": self.vocab.decode(written),
            "words_in": self.vocab.decode_tokens(ids),
            "words_out": self.vocab.decode_tokens(written),
            "attention": attention.round(4).tolist() if request.attention else None,
        }

    def close(self) -> None:
        """Nothing of its own to release: replies run in the shared parse pool."""
