"""The text-generation task: a prime in, the language model's continuation out.

``POST /v1/models/{name}/generate`` takes ``{"prime": "Anna", "length": 200,
"temperature": 0.8, "top_k": 5, "seed": 1}`` and answers ``{"model": ..., "text": ...}``.
With ``"stream": true`` the answer is a stream of server-sent events instead, as the text is
written: ``data: {"text": "<the next piece>"}`` events, then ``event: done``; the pieces
joined are the text the same request answers without streaming.

The exported graph is one step of the LSTM (:mod:`dlnd.serve.text_export`); the sampling
loop runs here in NumPy, as :meth:`dlnd.sequence.language_model.LanguageModel.generate`
does in PyTorch: read the prime token by token, then draw each next token from
softmax(logits / temperature) restricted to the ``top_k`` likeliest, never the unknown
token, and feed it back in. The same seed gives the same text. A generation is a loop of
small forward passes, not one batchable call, so each request runs whole in a worker thread
of the model's own pool: long generations neither block each other (up to the pool's size)
nor the event loop that answers ``/healthz``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse

from dlnd.errors import UserError
from dlnd.serve.errors import InputError
from dlnd.serve.runtime import OnnxModel
from dlnd.serve.task import Endpoint, ParsePool, ServedModel, ServeSettings, TaskPage, parse_json
from dlnd.text import Vocabulary, continuation, load_vocabulary, never_written

MAX_PRIME_CHARS = 2_000
MAX_LENGTH = 2_000  # tokens one request may write
MAX_TEMPERATURE = 10.0
MAX_TOP_K = 100_000
MAX_SEED = 2**63 - 1
GENERATE_THREADS = 4  # generations that run at once per model; more wait their turn
STREAM_EVERY = 4  # tokens per streamed piece
T = TypeVar("T")


class GenerateRequest(BaseModel):
    """How to write: the prime, how many tokens, and how to sample them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prime: str = Field(
        min_length=1,
        max_length=MAX_PRIME_CHARS,
        description="The text to continue; characters or words the model does not know are "
        "read as its unknown token.",
    )
    length: int = Field(200, ge=1, le=MAX_LENGTH, description="Tokens (characters or words).")
    temperature: float = Field(
        1.0,
        gt=0.0,
        le=MAX_TEMPERATURE,
        description="Below 1 sharpens the distribution (safer text), above 1 flattens it.",
    )
    top_k: int | None = Field(
        None, ge=1, le=MAX_TOP_K, description="Draw only from the k likeliest tokens (1: greedy)."
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="The same seed gives the same text.")
    stream: bool = Field(False, description="Answer with server-sent events as text is written.")


class GenerateResponse(BaseModel):
    """The continuation of the prime (the prime itself not repeated)."""

    model: str
    text: str


def sample_token(
    logits: np.ndarray,
    temperature: float,
    top_k: int | None,
    exclude: tuple[int, ...],
    rng: np.random.Generator,
) -> int:
    """One token drawn from softmax(logits / temperature), restricted to the ``top_k``
    likeliest tokens not in ``exclude``: logits (V,) -> a token id.

    The draw inverts the cumulative distribution at a uniform u: the first token whose
    cumulative probability passes u. A token of probability 0 never passes it.
    """
    scores = logits.astype(np.float64) / temperature
    scores[list(exclude)] = -np.inf
    if top_k is not None and top_k < len(scores):
        kth_best = np.partition(scores, -top_k)[-top_k]
        scores[scores < kth_best] = -np.inf
    weights = np.exp(scores - scores.max())  # softmax up to its sum, without overflow
    cumulative = np.cumsum(weights)
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


class LanguageModelSteps:
    """The exported step ``(tokens, h, c) -> (logits, h, c)`` with its state carried."""

    def __init__(self, path: Path, layers: int, hidden_size: int, threads: int) -> None:
        self.session = OnnxModel(path, threads=threads).session
        self.state_shape = (layers, 1, hidden_size)

    def read(self, ids: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Feed ``ids`` (P,) from the zero state: the logits (V,) after the last one and the
        state then."""
        state = (np.zeros(self.state_shape, np.float32), np.zeros(self.state_shape, np.float32))
        logits = None
        for token in ids:
            logits, state = self.step(int(token), state)
        return logits, state

    def step(
        self, token: int, state: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """One token and the state before it -> logits (V,) and the state after it."""
        tokens = np.array([token], np.int64)
        logits, h, c = self.session.run(None, {"tokens": tokens, "h": state[0], "c": state[1]})
        return logits[0], (h, c)


def write_tokens(
    steps: LanguageModelSteps,
    prime_ids: np.ndarray,
    request: GenerateRequest,
    exclude: tuple[int, ...],
) -> Iterator[int]:
    """The ``request.length`` tokens sampled after ``prime_ids`` (P,), one by one."""
    rng = np.random.default_rng(request.seed)
    logits, state = steps.read(prime_ids)
    for t in range(request.length):
        token = sample_token(logits, request.temperature, request.top_k, exclude, rng)
        yield token
        if t + 1 < request.length:
            logits, state = steps.step(token, state)


def text_pieces(vocab: Vocabulary, prime_ids: np.ndarray, tokens: Iterator[int]) -> Iterator[str]:
    """The continuation's text in pieces of :data:`STREAM_EVERY` tokens. Decoding one more
    token only appends to the text (spacing and quotes depend on what came before, never on
    what follows), so each piece is the new end of the text decoded so far."""
    written: list[int] = []
    sent = 0
    for token in tokens:
        written.append(token)
        if len(written) % STREAM_EVERY == 0:
            text = continuation(vocab, prime_ids, written)
            yield text[sent:]
            sent = len(text)
    if len(written) % STREAM_EVERY:
        yield continuation(vocab, prime_ids, written)[sent:]


def server_sent_event(data: dict[str, Any], event: str | None = None) -> str:
    """One server-sent event: an optional ``event:`` line, a ``data:`` line of JSON, a blank
    line (JSON escapes line breaks, so the data is one line)."""
    return (f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n"


GENERATION_PAGE = TaskPage(
    tab="write",
    title="Write text",
    html="text-generation.html",
    script="text-generation.js",
)


class TextGenerator(ServedModel):
    """An exported language model: ONNX Runtime steps, sampling in NumPy."""

    task = "text-generation"
    endpoints = (Endpoint("generate", "A continuation of the prime.", GenerateResponse),)
    page = GENERATION_PAGE

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
            self.vocab: Vocabulary = load_vocabulary(folder / Path(card["vocabulary"]).name)
            layers, hidden_size = int(card["state"]["layers"]), int(card["state"]["hidden_size"])
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(
                f"{folder} holds a damaged {self.task} model card (at {err}); export it again."
            ) from err
        self.exclude = never_written(self.vocab)  # the unknown token, padding if any
        self.steps = LanguageModelSteps(
            folder / card["file"], layers, hidden_size, settings.threads
        )
        self.steps.read(np.zeros(1, np.int64))  # warm up
        self._workers = ThreadPoolExecutor(GENERATE_THREADS, thread_name_prefix=f"write-{name}")

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "defaults": self.card.get("defaults", {}),
            "limits": {
                "prime_chars": MAX_PRIME_CHARS,
                "length": MAX_LENGTH,
                "temperature": MAX_TEMPERATURE,
            },
        }

    def request_schema(self, endpoint: str) -> dict[str, Any]:
        return GenerateRequest.model_json_schema()

    async def in_worker(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in one of this model's worker threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._workers, functools.partial(work, *args))

    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any] | StreamingResponse:
        request, prime_ids = await self.in_worker(self.read_request, body)
        if request.stream:
            return StreamingResponse(
                self.stream(request, prime_ids),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store"},
            )
        text = await self.in_worker(self.write, request, prime_ids)
        return {"model": self.name, "text": text}

    def read_request(self, body: bytes) -> tuple[GenerateRequest, np.ndarray]:
        """A JSON body -> the request and the prime's ids (P,)."""
        request = parse_json(GenerateRequest, body)
        prime_ids = self.vocab.encode(request.prime)
        if len(prime_ids) == 0:
            raise InputError("The prime holds no token to start from; give some text.")
        return request, prime_ids

    def write(self, request: GenerateRequest, prime_ids: np.ndarray) -> str:
        """The continuation of ``prime_ids``; runs in a worker thread."""
        new_ids = list(write_tokens(self.steps, prime_ids, request, self.exclude))
        return continuation(self.vocab, prime_ids, new_ids)

    async def stream(self, request: GenerateRequest, prime_ids: np.ndarray) -> AsyncIterator[str]:
        """Server-sent events of the text as a worker thread writes it. A client that
        leaves stops the worker at its next piece."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                tokens = write_tokens(self.steps, prime_ids, request, self.exclude)
                for piece in text_pieces(self.vocab, prime_ids, tokens):
                    if stop.is_set():
                        return
                    loop.call_soon_threadsafe(pieces.put_nowait, piece)
            finally:
                loop.call_soon_threadsafe(pieces.put_nowait, None)

        writer = loop.run_in_executor(self._workers, produce)
        try:
            while (piece := await pieces.get()) is not None:
                yield server_sent_event({"text": piece})
            await writer  # a failure of the writer ends the stream here, without "done"
            yield server_sent_event({"model": self.name}, event="done")
        finally:
            stop.set()

    def close(self) -> None:
        self._workers.shutdown(wait=True)
