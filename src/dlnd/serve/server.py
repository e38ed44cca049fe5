"""Running the app under uvicorn: the listening socket, slow clients, and a clean stop.

- The socket is bound here, before serving, so a port in use is one sentence (exit 2).
- A client gets ``header_timeout_s`` to send each request's headers (uvicorn itself waits
  for ever: a client trickling one byte a minute would hold its connection); idle
  keep-alive connections close after ``keep_alive_s``. Slow bodies are cut by
  :class:`dlnd.serve.limits.BodyLimit`.
- SIGTERM (or Ctrl-C) drains: the socket closes, so new connections are refused; requests
  in flight are answered (for at most ``drain_timeout_s``); the process exits 0.
"""

from __future__ import annotations

import errno
import signal
import socket
from typing import Any

import h11
from uvicorn import Config, Server
from uvicorn.protocols.http.h11_impl import H11Protocol

from dlnd.errors import UserError
from dlnd.serve import defaults

REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 36\r\nconnection: close\r\n\r\nThe request headers came too slowly."
)


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for the headers of each request.

    The clock starts when a connection opens and when the first bytes of a request arrive;
    it stops when h11 has read the whole request head (its peer leaves the IDLE state).
    """

    header_timeout_s = defaults.HEADER_TIMEOUT_S

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        waiting_for_head = self.conn.their_state is h11.IDLE
        if waiting_for_head and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)
            self.transport.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; a :class:`UserError` if it cannot be had."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, UnicodeError, OverflowError) as err:
        sock.close()
        if getattr(err, "errno", None) == errno.EADDRINUSE:
            raise UserError(
                f"Port {port} on {host} is already in use (another server?); stop that one or "
                "choose another port with --port."
            ) from None
        raise UserError(
            f"Cannot listen on {host}:{port} ({err}); check --host and --port."
        ) from None
    return sock


def serve(
    app: Any,
    sock: socket.socket,
    *,
    header_timeout_s: float = defaults.HEADER_TIMEOUT_S,
    keep_alive_s: float = defaults.KEEP_ALIVE_S,
    drain_timeout_s: float = defaults.DRAIN_TIMEOUT_S,
) -> str | None:
    """Serve ``app`` on the bound ``sock`` until SIGTERM or SIGINT; returns the name of the
    signal that stopped it (after the drain), or ``None``."""
    protocol = type("Protocol", (HeaderDeadlineProtocol,), {"header_timeout_s": header_timeout_s})
    config = Config(
        app,
        http=protocol,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_keep_alive=keep_alive_s,
        timeout_graceful_shutdown=drain_timeout_s,
    )
    stopped_by: list[str] = []

    def remember(signum: int, frame: Any) -> None:
        stopped_by.append(signal.Signals(signum).name)

    # uvicorn drains on these signals, then raises them again once the drain is over; with
    # this handler in place that second delivery only records the signal (exit status 0).
    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stopped_by[0] if stopped_by else None
