"""Application errors with stable codes, and the one JSON error envelope.

Every error the API returns has the shape built by :func:`error_body`::

    {"error": {"code": "validation_error", "message": "…", "fields": {"settings.base_url": ["…"]}}}

``code`` is stable (clients and tests match on it); ``message`` says what went wrong and how to
fix it; ``fields`` maps dotted field paths to messages when the input was at fault.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None,
                 code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code
        if status:
            self.status = status


class ValidationFailed(AppError):
    status = 422
    code = "validation_error"


class NotFound(AppError):
    """Missing, or belonging to another tenant: the two are deliberately indistinguishable."""

    status = 404
    code = "not_found"

    def __init__(self, what: str = "resource") -> None:
        super().__init__(f"No such {what}.")


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Conflict(AppError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


def flatten_fields(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested ``{"a": {"0": {"b": ["msg"]}}}`` into ``{"a.0.b": ["msg"]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_fields(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            flat.update(flatten_fields(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}
