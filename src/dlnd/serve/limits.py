"""Caps on request bodies: their size, enforced before and while the body is read, and the
time they may take to arrive."""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dlnd.serve import defaults
from dlnd.serve.errors import BodyTooLarge, BodyTooSlow


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` or slower than ``timeout_s``.

    A declared ``Content-Length`` over the limit is answered at once, unread. A body sent
    without one (chunked) is counted as it arrives; reading past the limit raises
    :class:`BodyTooLarge` inside the endpoint, whose handler answers 413. A body still
    incomplete ``timeout_s`` after the request began raises :class:`BodyTooSlow` (408), so
    a client trickling bytes cannot hold a connection and a parser forever.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, timeout_s: float = defaults.BODY_TIMEOUT_S
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await JSONResponse(
                    {"detail": "Content-Length must be a number of bytes."}, status_code=400
                )(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await JSONResponse({"detail": str(BodyTooLarge(self.max_bytes))}, status_code=413)(
                    scope, receive, send
                )
                return
        await self.app(scope, self._guarded(receive), send)

    def _guarded(self, receive: Receive) -> Receive:
        """``receive`` that counts the body's bytes and enforces its deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        received = 0
        complete = False

        async def guarded() -> Message:
            nonlocal received, complete
            if complete:  # after the body, receive() only waits for a disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                raise BodyTooSlow(self.timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                complete = not message.get("more_body", False)
            return message

        return guarded
