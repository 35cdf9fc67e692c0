"""Errors the domain raises: each boundary (API, CLI, commands topic) converts them once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DomainError(Exception):
    """Base of every error that means "the request is wrong", never "the server is broken".

    `details` optionally names what is wrong, one entry per field ({"field": ..., "message":
    ...}); the API puts it in the error body's `details`, beside the message.
    """

    code = "invalid_request"

    def __init__(self, message: str = "", details: Sequence[Mapping[str, str]] = ()) -> None:
        super().__init__(message)
        self.details: tuple[dict[str, str], ...] = tuple(dict(d) for d in details)


class ValidationError(DomainError):
    """The request is malformed or inconsistent; the message says what to fix."""

    code = "validation_error"


class NotFoundError(DomainError):
    """The request names something that does not exist for this tenant."""

    code = "not_found"


class ConflictError(DomainError):
    """The request contradicts what is already recorded (same id, different content)."""

    code = "conflict"
