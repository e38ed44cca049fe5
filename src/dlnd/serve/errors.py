"""The client mistakes the server answers, each with its HTTP status.

A task or a middleware raises one of these with a message the client can act on; the app
answers ``{"detail": message}`` with the status in :data:`CLIENT_ERRORS`. Anything else is
a server error (500) and affects only its own request.
"""

from __future__ import annotations


class InputError(ValueError):
    """A request whose content cannot become a model input (HTTP 422)."""


class UnsupportedInput(ValueError):
    """A model cannot take this kind of body, e.g. an upload for a tabular model (HTTP 415)."""


class UnknownModel(LookupError):
    """A request named a model (or an endpoint) the server does not serve (HTTP 404)."""


class Busy(Exception):
    """The model is already doing all the work it takes at once; try again later (HTTP 503)."""


class BodyTooLarge(Exception):
    """The request body passed the server's limit (HTTP 413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"The request body is larger than the {max_bytes:,} bytes this server accepts; "
            "send a smaller image."
        )


class BodyTooSlow(Exception):
    """The request body did not arrive within the server's time limit (HTTP 408)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The request body did not arrive within {seconds:g} s; send it in one go."
        )


CLIENT_ERRORS: dict[type[Exception], int] = {
    UnknownModel: 404,
    BodyTooSlow: 408,
    BodyTooLarge: 413,
    UnsupportedInput: 415,
    InputError: 422,
    Busy: 503,
}
