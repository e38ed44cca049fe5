"""What the server reports about itself: Prometheus metrics at ``GET /metrics`` and one
structured (JSON) access-log line per request.

Metrics (``prometheus-client``, one registry per app)::

    dlnd_http_requests_total{method,route,status}       requests answered, by status
    dlnd_http_request_duration_seconds{method,route}    time to answer (histogram)
    dlnd_http_requests_in_flight                        requests being answered now
    dlnd_batch_size{model}                              examples per forward pass (histogram)
    process_*                                           memory, CPU time, open files

``route`` is the route's template (``/v1/models/{name}/predict``), never the raw path, so
a client cannot grow the number of series. Access-log lines go through a queue to a
writer thread, so a slow terminal never holds the event loop.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = "dlnd.serve.access"
METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
MOUNTS = ("/static", "/docs-assets")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SHOWN_PATH = 200  # characters of a request path written to the log


class ServerMetrics:
    """The app's Prometheus metrics, in a registry of its own."""

    def __init__(self, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dlnd_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dlnd_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "dlnd_http_requests_in_flight",
            "Requests being answered now.",
            registry=self.registry,
        )
        sizes = [2**k for k in range(max_batch.bit_length()) if 2**k < max_batch] + [max_batch]
        self.batch_size = Histogram(
            "dlnd_batch_size",
            "Examples per forward pass of a model.",
            ["model"],
            buckets=sizes,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)

    def batch_observer(self, model: str) -> Callable[[int], None]:
        return self.batch_size.labels(model).observe

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics`` in the Prometheus text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_of(scope: Scope) -> str:
    """The template of the route that answered (bounded set of values)."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return route.path
    path = scope.get("path", "")
    return next((mount for mount in MOUNTS if path.startswith(mount + "/")), "other")


class Observer:
    """ASGI middleware: count, time and log every request (outermost, so refusals by the
    other middleware are counted too)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger(ACCESS_LOGGER) if log else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer = {"status": 0, "bytes_out": 0}
        bytes_in = 0

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            bytes_in += len(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["bytes_out"] += len(message.get("body", b""))
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, counting_receive, recording_send)
        except Exception:
            answer["status"] = answer["status"] or 500
            raise
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_of(scope)
            status = answer["status"] or 499  # no answer started: the client left
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(seconds)
            if self.log is not None and self.log.isEnabledFor(logging.INFO):
                self.log.info(access_line(scope, method, route, status, seconds, bytes_in, answer))


def access_line(
    scope: Scope,
    method: str,
    route: str,
    status: int,
    seconds: float,
    bytes_in: int,
    answer: dict[str, int],
) -> str:
    """One request as a JSON object on one line."""
    client = scope.get("client")
    return json.dumps(
        {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "client": client[0] if client else None,
            "method": method,
            "path": scope.get("path", "")[:SHOWN_PATH],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "bytes_in": bytes_in,
            "bytes_out": answer["bytes_out"],
        },
        ensure_ascii=True,
    )


def start_access_log(stream=None) -> logging.handlers.QueueListener:
    """Send access-log lines to ``stream`` (default stderr) through a writer thread; stop
    the returned listener to flush them."""
    lines: queue.SimpleQueue = queue.SimpleQueue()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    listener = logging.handlers.QueueListener(lines, handler)
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers = [logging.handlers.QueueHandler(lines)]
    listener.start()
    return listener
