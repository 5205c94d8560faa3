"""Forms: what the user typed, the errors next to each field, and connector schemas as fields.

Validation stays in the services (the API's rules); a form only collects the typed values, turns
``settings.sandbox``-style names into the nested dict the services take, and puts the
:class:`~dropstream.errors.ValidationFailed` field errors back next to the inputs they concern.
Secret inputs (credentials, passwords) are never sent back to the browser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import request
from marshmallow import Schema, fields, validate

from dropstream.errors import AppError

#: Longest value a console text input accepts (the longest column it can land in).
MAX_INPUT = 2000
#: Schema fields typed as JSON in a text input (a carrier map, a list of ship methods).
STRUCTURED = (fields.Dict, fields.List, fields.Nested)


@dataclass
class Form:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    message: str | None = None

    @classmethod
    def posted(cls, *secret: str) -> Form:
        """The submitted fields (without the CSRF token and the ``secret`` ones)."""
        values = {key: value for key, value in posted_items()
                  if key != "csrf_token" and key not in secret and not key.startswith("credentials.")}
        return cls(values=values)

    def fail(self, error: AppError) -> Form:
        self.message = error.message
        for name, messages in (error.fields or {}).items():
            self.errors.setdefault(name, []).extend(messages)
        return self

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)

    def error(self, name: str) -> list[str]:
        return self.errors.get(name, [])

    @property
    def ok(self) -> bool:
        return not self.errors and self.message is None


def posted_items() -> list[tuple[str, str]]:
    """The posted fields, the last value of each: a checkbox comes after a hidden "false" of
    the same name (``macros.field``), so an unticked box posts false instead of nothing —
    without which a stored true could never be switched off."""
    return [(key, values[-1]) for key, values in request.form.lists()]


def text(name: str, *, limit: int = 255, required: bool = False) -> str | None:
    """A trimmed text field of the posted form; ``None`` when blank."""
    value = (request.form.get(name) or "").strip()
    return value or None


def nested(prefix: str, schema_cls: type[Schema] | None = None) -> dict[str, Any]:
    """``{"x": "1"}`` from the posted fields named ``<prefix>.x``; blank ones are left out so the
    schema's defaults apply (and a required one is reported missing, by its name).

    Given the connector schema the fields were rendered from, typed text becomes what the field
    holds: a number for a number input, a mapping or list from JSON. A browser sends only text,
    and a schema may rightly refuse the text "1" for an integer (``strict``, as a JSON API
    wants). Text that does not convert stays text, so the schema names the field."""
    converters = _converters(schema_cls)
    data: dict[str, Any] = {}
    for key, value in posted_items():
        if key.startswith(prefix + ".") and value.strip():
            name = key[len(prefix) + 1:]
            data[name] = _convert(value.strip(), converters.get(name))
    return data


def _converters(schema_cls: type[Schema] | None) -> dict[str, Callable[[str], Any]]:
    if schema_cls is None:
        return {}
    found: dict[str, Callable[[str], Any]] = {}
    for name, schema_field in schema_cls().fields.items():
        if isinstance(schema_field, fields.Integer):
            found[name] = int
        elif isinstance(schema_field, fields.Float):
            found[name] = float
        elif isinstance(schema_field, STRUCTURED):
            found[name] = json.loads
    return found


def _convert(value: str, converter: Callable[[str], Any] | None) -> Any:
    if converter is None:
        return value
    try:
        return converter(value)
    except ValueError:  # json.JSONDecodeError is one too
        return value


def shown(value: Any) -> str | None:
    """A stored setting as its input shows it (and posts it back): mappings and lists as JSON."""
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


@dataclass(frozen=True)
class FieldSpec:
    """One input rendered from a connector's marshmallow schema."""

    name: str
    label: str
    kind: str  # text | password | number | checkbox | select
    required: bool
    help: str = ""
    choices: tuple[str, ...] = ()
    default: str = ""


def schema_fields(schema_cls: type[Schema] | None, prefix: str, secret: bool = False) -> list[FieldSpec]:
    """Inputs for each field of a connector schema (its settings, credentials or account)."""
    if schema_cls is None:
        return []
    specs = []
    for name, schema_field in schema_cls().fields.items():
        if schema_field.dump_only:
            continue
        metadata = schema_field.metadata or {}
        kind = "password" if secret or schema_field.load_only else "text"
        choices: tuple[str, ...] = ()
        if isinstance(schema_field, fields.Boolean):
            kind = "checkbox"
        elif isinstance(schema_field, (fields.Integer, fields.Float, fields.Decimal)):
            kind = "number"
        for validator in _validators(schema_field):
            if isinstance(validator, validate.OneOf):
                kind, choices = "select", tuple(str(c) for c in validator.choices)
        help_text = metadata.get("description", "")
        if isinstance(schema_field, STRUCTURED):
            help_text = f"{help_text} Written as JSON.".strip()
        default = schema_field.load_default
        specs.append(FieldSpec(
            name=f"{prefix}.{name}", label=metadata.get("title") or name.replace("_", " ").capitalize(),
            kind=kind, required=schema_field.required, help=help_text,
            choices=choices, default="" if default is None or callable(default) or
            default.__class__.__name__ == "_Missing" else str(default)))
    return specs


def _validators(schema_field: Any) -> list[Any]:
    found = schema_field.validators if hasattr(schema_field, "validators") else []
    return list(found or [])
