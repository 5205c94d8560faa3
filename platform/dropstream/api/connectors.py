"""The connectors this installation has (from plugins), and the fields each one asks for, so a
client can render the settings and credentials forms without knowing the connector."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from dropstream.connectors.base import ConnectorRole
from dropstream.state import get_state

blp = Blueprint("connectors", __name__, url_prefix="/api/v1/connectors",
                description="Registered storefront and warehouse connectors.")


class FormFieldSchema(Schema):
    name = fields.String()
    type = fields.String()
    required = fields.Boolean()
    description = fields.String(allow_none=True)


class ConnectorSchema(Schema):
    id = fields.String()
    name = fields.String()
    role = fields.Enum(ConnectorRole, by_value=True)
    capabilities = fields.List(fields.String())
    settings_fields = fields.List(fields.Nested(FormFieldSchema))
    credentials_fields = fields.List(fields.Nested(FormFieldSchema))
    account_fields = fields.List(fields.Nested(FormFieldSchema), metadata={
        "description": "Fields of a store's account at a warehouse of this connector."})


class ConnectorListSchema(Schema):
    items = fields.List(fields.Nested(ConnectorSchema))


def form_fields(schema_cls: type[Schema] | None) -> list[dict[str, Any]]:
    if schema_cls is None:
        return []
    return [
        {"name": field.data_key or name, "type": type(field).__name__, "required": field.required,
         "description": field.metadata.get("description")}
        for name, field in schema_cls().fields.items() if not field.dump_only
    ]


@blp.route("")
class Connectors(MethodView):
    @blp.response(200, ConnectorListSchema)
    def get(self) -> dict[str, Any]:
        """List connectors

        Each with its role, capabilities, and the settings and credentials it needs.
        """
        return {"items": [
            {"id": cls.id, "name": cls.name, "role": cls.role,
             "capabilities": sorted(c.value for c in cls.capabilities),
             "settings_fields": form_fields(cls.settings_schema),
             "credentials_fields": form_fields(cls.credentials_schema),
             "account_fields": form_fields(getattr(cls, "account_schema", None))}
            for cls in sorted(get_state().connectors.all(), key=lambda c: c.id)
        ]}
