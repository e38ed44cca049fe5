"""What every served task has in common: the base class of a served model, its endpoints,
its tab on the web page, and the thread pool its request parsing runs in.

A task is one module (:mod:`dlnd.serve.classifier`, :mod:`dlnd.serve.tabular`, ...) that
subclasses :class:`ServedModel`: its request and response models, its endpoints (``predict``
and any others, e.g. ``generate``) and the tab of the page that shows it. The registry lists
the task classes in one explicit table; this module imports none of them.
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from dlnd.serve import defaults
from dlnd.serve.batching import MicroBatcher
from dlnd.serve.errors import InputError, UnsupportedInput

T = TypeVar("T")
# Errors of a malformed request shown to the client; the rest are counted, not listed.
SHOWN_ERRORS = 5


@dataclass(frozen=True)
class ServeSettings:
    """How models run: batch size and wait of the micro-batcher, threads per forward pass,
    and threads that parse and decode requests (which also bounds concurrent decodes)."""

    max_batch: int = defaults.MAX_BATCH
    max_wait_ms: float = defaults.MAX_WAIT_MS
    threads: int = defaults.FORWARD_THREADS
    parse_threads: int = defaults.PARSE_THREADS


@dataclass(frozen=True)
class Endpoint:
    """``POST /v1/models/{name}/{path}`` of a task: its JSON answer is ``response_model``;
    ``form_fields`` (JSON-schema properties) when it also takes a multipart upload."""

    path: str
    summary: str
    response_model: type[BaseModel]
    form_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskPage:
    """A tab of the web page: its markup and its script, files under ``static/tasks/``,
    included only when a model of the task is served."""

    tab: str
    title: str
    html: str
    script: str


class ParsePool:
    """A few worker threads for the CPU work of requests (JSON validation, image decoding).

    The event loop hands that work here, so it keeps answering other requests (``/healthz``
    included) while a large body is parsed, and at most ``threads`` decodes run at once:
    their memory is bounded however many clients send images together.
    """

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError("a parse pool needs at least one thread")
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="parse")

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(work, *args))

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def validation_message(err: ValidationError) -> str:
    """Pydantic's errors as one line, the first few only: ``field: problem; field: problem``."""
    errors = err.errors(include_url=False, include_context=False, include_input=False)
    parts = []
    for error in errors[:SHOWN_ERRORS]:
        # Union members appear in the location as type names ("list[float]"): left out.
        where = ".".join(str(part) for part in error["loc"] if "[" not in str(part))
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    more = f" ({len(errors) - SHOWN_ERRORS} more)" if len(errors) > SHOWN_ERRORS else ""
    return "Invalid request: " + "; ".join(parts) + more + "."


def check_value_count(body: bytes, max_values: int, what: str) -> None:
    """Refuse a JSON body holding more values than a valid request can, before parsing it.

    A comma separates every two values of a JSON array or object, so a body with more than
    ``max_values`` commas cannot be valid. Counting them costs about a millisecond for the
    largest body; parsing megabytes of a too-long array would hold the interpreter (and so
    the event loop) for seconds and build gigabytes of error reports.
    """
    if body.count(b",") > max_values:
        raise InputError(f"The body holds more values than {what}; send at most {max_values:,}.")


def parse_json(request_model: type[BaseModel], body: bytes) -> Any:
    """``body`` validated as ``request_model``, or an :class:`InputError` saying why not."""
    try:
        return request_model.model_validate_json(body)
    except ValidationError as err:
        raise InputError(validation_message(err)) from err


class ServedModel(ABC):
    """One model behind the API; each subclass serves one task.

    ``endpoints`` are the task's POST endpoints (``predict`` first); ``page`` its tab of the
    web page. A subclass loads its model in ``__init__`` and answers in :meth:`answer_json`
    (and :meth:`answer_form` if an endpoint takes uploads).
    """

    task: ClassVar[str]
    endpoints: ClassVar[tuple[Endpoint, ...]]
    page: ClassVar[TaskPage | None] = None
    model_format: ClassVar[str] = "onnx"  # the card's "format" this task serves
    batcher: MicroBatcher | None = None  # set by tasks that batch their forward passes

    def __init__(
        self,
        name: str,
        card: dict[str, Any],
        folder: Path,
        settings: ServeSettings,
        parse_pool: ParsePool,
    ) -> None:
        """Load the model of the exported ``folder`` (described by ``card``) as ``name``."""
        self.name = name
        self.card = card
        self.parse_pool = parse_pool

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models`` shows: name, task, endpoints, input and metrics."""
        return {
            "name": self.name,
            "task": self.task,
            "endpoints": [endpoint.path for endpoint in self.endpoints],
            "recipe": self.card.get("recipe"),
            "input": self.card.get("input"),
            "metrics": self.card.get("metrics", {}),
        }

    def endpoint(self, path: str) -> Endpoint | None:
        """The endpoint of this task called ``path``, if it has one."""
        return next((e for e in self.endpoints if e.path == path), None)

    def observe_batches(self, observer: Callable[[int], None]) -> None:
        """Report the size of every forward pass to ``observer`` (for the metrics)."""
        if self.batcher is not None:
            self.batcher.on_batch = observer

    @abstractmethod
    def request_schema(self, endpoint: str) -> dict[str, Any]:
        """The JSON schema of a JSON body for ``endpoint`` (for the API description)."""

    @abstractmethod
    async def answer_json(self, endpoint: str, body: bytes) -> dict[str, Any] | Response:
        """Answer a JSON body sent to ``endpoint`` (``InputError`` for a malformed one):
        the JSON answer, or a response of its own (e.g. a stream of events)."""

    async def answer_form(self, endpoint: str, form: FormData) -> dict[str, Any]:
        """Answer a multipart upload; tasks that take no uploads keep this refusal."""
        raise UnsupportedInput(f"Model {self.name!r} takes JSON only; send application/json.")

    @abstractmethod
    def close(self) -> None:
        """Release the model's worker threads."""
