"""Pieces every API module shares: the id converter, bounded fields, loading connector payloads,
and the request-body guard that turns hostile input into 4xx instead of a database error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import request
from marshmallow import fields, validate
from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError as NoMatch

from dropstream.errors import AppError, ValidationFailed

#: Primary keys are PostgreSQL ``integer``: anything larger can name no row.
MAX_ID = 2**31 - 1
#: Largest quantity or count accepted anywhere in the API (the same integer range).
MAX_INT = 2**31 - 1


class IdConverter(BaseConverter):
    """``<id:name>``: a positive integer that fits a primary key; anything else is simply no
    match (404), so a huge or non-numeric id can never reach the database."""

    regex = r"[0-9]{1,10}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise NoMatch()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


def id_converter_schema(converter: BaseConverter) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def Id(**kwargs: Any) -> fields.Integer:
    """An id given in a body or query string."""
    return fields.Integer(strict=True, validate=validate.Range(1, MAX_ID), **kwargs)


def QueryId(**kwargs: Any) -> fields.Integer:
    """An id in a query string (a string there, so not strict)."""
    return fields.Integer(validate=validate.Range(1, MAX_ID), **kwargs)


class Trimmed(fields.String):
    """A string with surrounding whitespace removed (SKUs and codes pasted from spreadsheets)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def Sku(**kwargs: Any) -> Trimmed:
    return Trimmed(validate=validate.Length(min=1, max=255), **kwargs)


def Text(max_length: int, *, min_length: int = 0, **kwargs: Any) -> fields.String:
    """A string bounded like the column it lands in (PostgreSQL refuses longer ones)."""
    return fields.String(validate=validate.Length(min=min_length, max=max_length), **kwargs)


class BadBody(AppError):
    status = 400
    code = "bad_request"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def guard_json_body() -> None:
    """Refuse bodies that would get past schema validation and still fail in the database.

    Run before every API view: a JSON body must parse (no ``NaN``/``Infinity``, no nesting so
    deep it exhausts the parser) and no string in it, key or value, may hold a NUL character
    (PostgreSQL text and JSONB refuse them). Query strings get the same NUL check.
    """
    for key, values in request.args.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            raise ValidationFailed("The query string contains a NUL character.",
                                   fields={key.replace("\x00", "") or "_query": ["NUL characters are not allowed."]})
    if not request.is_json:
        return
    raw = request.get_data(cache=True)
    if not raw.strip():
        return
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadBody("The request body is not valid JSON.") from None
    bad = [path for path in _nul_paths(body)]
    if bad:
        raise ValidationFailed("Text must not contain NUL characters.",
                               fields={path: ["NUL characters are not allowed."] for path in bad[:20]})


def _nul_paths(body: Any) -> Iterator[str]:
    # Iterative on purpose: a deeply nested body must not turn into a RecursionError here.
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                yield path or "_schema"
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    yield f"{path}.{key!r}" if path else repr(key)
                    continue
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{index}" if path else str(index), item)
                         for index, item in enumerate(value))


def reference(scope: Any, model: type, object_id: int | None, field: str) -> Any:
    """Load a row named by id in a request body; a missing or foreign one is a field error
    (the same words either way, so nothing is learned about other tenants)."""
    from dropstream.errors import NotFound
    from dropstream.extensions import db

    if object_id is None:
        return None
    try:
        return scope.get(db.session, model, object_id)
    except NotFound:
        label = model.__name__.lower()
        raise ValidationFailed(f"No such {label}.", fields={field: [f"No such {label}."]}) from None
