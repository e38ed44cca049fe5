"""What every response carries, and who may ask: security headers, the Host check against
DNS rebinding, and the API key a server reachable beyond this machine requires.

- Headers: no content-type sniffing, no framing by other sites, a content security policy
  that lets the page load only its own scripts and styles, no referrer.
- Host check: a web page on another site can make a browser send requests to
  ``127.0.0.1`` by pointing its own domain name there (DNS rebinding); such requests carry
  that domain as their ``Host``, so a server bound to loopback answers only to loopback
  names (and to names given with ``--allow-host``).
- API key: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, compared in constant time,
  on everything but the page, its assets, ``/healthz`` and the API description.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Swagger UI (/docs) sets inline styles; the page itself needs none.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
# Paths anyone may fetch when an API key is required (the page asks for the key itself).
PUBLIC_PATHS = ("/", "/healthz", "/docs", "/openapi.json")
PUBLIC_PREFIXES = ("/static/", "/docs-assets/")


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server on this machine."""
    return host in LOOPBACK_NAMES or host.startswith("127.")


def host_name(header: bytes) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:8000`` -> ``[::1]``."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text.partition("]")[0] + "]"
    return text.rpartition(":")[0] if text.count(":") == 1 else text


class Guard:
    """ASGI middleware: security headers on every answer, then the Host check and the
    API key (each only when configured)."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Iterable[str] | None = None,
        api_key: str | None = None,
    ) -> None:
        self.app = app
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> JSONResponse | None:
        """The answer to a request that may not go on, or ``None``."""
        headers = dict(scope["headers"])
        if self.allowed_hosts is not None:
            host = host_name(headers.get(b"host", b""))
            if host not in self.allowed_hosts:
                return JSONResponse(
                    {
                        "detail": f"This server does not answer to the host name {host!r}; "
                        f"use one of {', '.join(sorted(self.allowed_hosts))} "
                        "(or start it with --allow-host NAME)."
                    },
                    status_code=400,
                )
        if (
            self.api_key is not None
            and not is_public(scope["path"])
            and not hmac.compare_digest(presented_key(headers), self.api_key)
        ):
            return JSONResponse(
                {
                    "detail": "This server needs an API key: send the header "
                    "'Authorization: Bearer KEY' (or 'X-API-Key: KEY')."
                },
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        return None


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def presented_key(headers: dict[bytes, bytes]) -> bytes:
    """The key a request presents (bearer token or ``X-API-Key``), or ``b""``."""
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and token:
        return token.strip()
    return headers.get(b"x-api-key", b"").strip()
