"""A cap on request body size, enforced before and while the body is read."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dlnd.serve.errors import BodyTooLarge


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes``.

    A declared ``Content-Length`` over the limit is answered at once, unread. A body sent
    without one (chunked) is counted as it arrives; reading past the limit raises
    :class:`BodyTooLarge` inside the endpoint, whose handler answers 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

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
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        return counted
