"""Errors the domain raises: each boundary (API, CLI, commands topic) converts them once."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error that means "the request is wrong", never "the server is broken"."""

    code = "invalid_request"


class ValidationError(DomainError):
    """The request is malformed or inconsistent; the message says what to fix."""

    code = "validation_error"


class NotFoundError(DomainError):
    """The request names something that does not exist for this tenant."""

    code = "not_found"


class ConflictError(DomainError):
    """The request contradicts what is already recorded (same id, different content)."""

    code = "conflict"
