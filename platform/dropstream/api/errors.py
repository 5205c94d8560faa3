"""The one JSON error envelope for everything under ``/api``.

Every failure under the API prefix, whatever raised it, leaves through :func:`error_body`:
application errors keep their code and fields; webargs/marshmallow validation becomes
``validation_error`` with dotted field paths; routing and HTTP errors keep their status with a
stable code; a database constraint becomes ``conflict``; anything unexpected is a bare
``internal_error`` (the traceback goes to the log, never to the client). Outside the API the
default Flask handling is left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.exceptions import HTTPException

from dropstream.connectors.base import ConnectorError
from dropstream.errors import AppError, error_body, flatten_fields
from dropstream.extensions import db
from dropstream.plugins import UnknownConnector
from dropstream.security.secrets import SecretError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

#: Stable codes for HTTP errors raised by Flask/werkzeug rather than by our code.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}

HTTP_MESSAGES = {
    400: "The request could not be understood.",
    401: "Sign in, or send an API key as 'Authorization: Bearer <key>'.",
    403: "You may not do this.",
    404: "No such resource.",
    405: "This method is not allowed here.",
    413: "The request body is too large.",
    422: "Some fields are invalid.",
}


def _in_api() -> bool:
    return request.path.startswith(API_PREFIX)


def _respond(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None,
             headers: dict[str, str] | None = None) -> Response:
    # The failed unit of work must not leak into whatever the session does next.
    db.session.rollback()
    response = jsonify(error_body(code, message, fields))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="DropStream"')
    return response


def handle_app_error(error: AppError) -> Any:
    if not _in_api():
        raise error
    return _respond(error.status, error.code, error.message, error.fields or None)


def handle_http_exception(error: HTTPException) -> Any:
    if not _in_api():
        return error
    status = error.code or 500
    if status >= 500:
        return handle_unexpected(getattr(error, "original_exception", None) or error)
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    fields = _strip_locations(messages) if messages else None
    code = HTTP_CODES.get(status, "http_error")
    message = HTTP_MESSAGES.get(status, error.name)
    if status == 400 and messages:
        message = "The request body is not valid JSON."
        fields = None
    headers = dict(data.get("headers") or {})
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return _respond(status, code, message, fields, headers)


def handle_validation_error(error: ValidationError) -> Any:
    if not _in_api():
        raise error
    return _respond(422, "validation_error", HTTP_MESSAGES[422], flatten_fields(error.messages))


def handle_integrity_error(error: IntegrityError) -> Any:
    if not _in_api():
        raise error
    # Services check uniqueness first with a clear message; this is the race-condition backstop.
    log.info("integrity error under %s: %s", request.path, error.orig.__class__.__name__)
    return _respond(409, "conflict", "This conflicts with an existing record; reload and try again.")


def handle_data_error(error: DataError) -> Any:
    if not _in_api():
        raise error
    log.warning("data error under %s: %s", request.path, error.orig.__class__.__name__)
    return _respond(422, "validation_error", "A value is out of range or malformed.")


def handle_connector_error(error: ConnectorError) -> Any:
    if not _in_api():
        raise error
    # Connector messages are redacted by the connection wrapper and meant for operators.
    return _respond(502, error.code, f"The remote system failed: {error.message}")


def handle_unknown_connector(error: UnknownConnector) -> Any:
    if not _in_api():
        raise error
    # A row names a connector whose plugin is no longer installed: an operator problem, not a bug.
    return _respond(409, "connector_missing",
                    f"The connector {error.args[0]!r} is not installed; install or enable its plugin.")


def handle_secret_error(error: SecretError) -> Any:
    if not _in_api():
        raise error
    return _respond(409, "credentials_unreadable",
                    "The stored credentials cannot be decrypted with the configured keys; "
                    "enter them again.")


def handle_unexpected(error: BaseException) -> Any:
    if not _in_api():
        if isinstance(error, HTTPException):
            return error
        raise error
    log.error("unhandled error under %s %s", request.method, request.path,
              exc_info=(type(error), error, error.__traceback__))
    return _respond(500, "internal_error", "Something went wrong on our side; it has been logged.")


def init_error_handlers(app: Flask) -> None:
    """Register the handlers app-wide (a routing 404 or 405 belongs to no blueprint)."""
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(DataError, handle_data_error)
    app.register_error_handler(ConnectorError, handle_connector_error)
    app.register_error_handler(UnknownConnector, handle_unknown_connector)
    app.register_error_handler(SecretError, handle_secret_error)
    app.register_error_handler(Exception, _handle_exception)


def _handle_exception(error: Exception) -> Any:
    if not _in_api():
        # Not ours: re-raised, Flask does what it would have done (propagate in tests, log and
        # render its 500 page otherwise).
        raise error
    return handle_unexpected(error)


def _strip_locations(messages: Any) -> dict[str, list[str]]:
    """webargs keys errors by location (``{"json": {"name": [...]}}``); clients want the field."""
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "form", "files", "headers",
                                                          "view_args", "cookies", "json_or_form"}:
        flat: dict[str, list[str]] = {}
        for value in messages.values():
            flat.update(flatten_fields(value))
        return flat
    return flatten_fields(messages)
