"""Warehouses: the provider's connections to its WMS. Provider staff manage them; merchant users
may read them (to link a store). Credentials are write-only: responses say only whether they
are set."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from dropstream.api.auth import current_scope, require_provider
from dropstream.api.common import Text
from dropstream.api.listings import CSV_BODY_DOC
from dropstream.api.listings import _csv_text as csv_upload_text
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.connectors.base import Capability, ConnectorRole
from dropstream.errors import Conflict, ValidationFailed
from dropstream.extensions import db
from dropstream.plugins import UnknownConnector
from dropstream.state import get_state
from dropstream.stores import services
from dropstream.stores.connections import warehouse_connector
from dropstream.stores.models import Warehouse

blp = Blueprint("warehouses", __name__, url_prefix="/api/v1/warehouses",
                description="The provider's warehouse (WMS) connections.")

CREDENTIALS_DOC = {"description": "Write-only; validated by the connector's credentials schema "
                                  "and encrypted at rest. Replaces the stored credentials whole."}


class WarehouseSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    connector_id = Text(64, min_length=1, required=True, metadata={
        "description": "A registered warehouse connector (see /connectors)."})
    settings = fields.Dict(keys=fields.String(), load_default=dict, metadata={
        "description": "Validated by the connector's settings schema."})
    credentials = fields.Dict(keys=fields.String(), load_only=True, metadata=CREDENTIALS_DOC)
    credentials_set = fields.Boolean(dump_only=True, attribute="has_credentials")
    is_active = fields.Boolean(load_default=True)
    last_error = fields.String(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class WarehouseUpdateSchema(Schema):
    name = Text(200, min_length=1)
    settings = fields.Dict(keys=fields.String(), metadata={
        "description": "Merged over the stored settings, then validated whole."})
    credentials = fields.Dict(keys=fields.String(), load_only=True, metadata=CREDENTIALS_DOC)
    is_active = fields.Boolean()


class ShipMethodSchema(Schema):
    code = fields.String()
    name = fields.String()
    carrier = fields.String()


class ShipMethodListSchema(Schema):
    items = fields.List(fields.Nested(ShipMethodSchema))


@blp.route("")
class Warehouses(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(WarehouseSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List warehouses"""
        return paginate(db.session, current_scope().select(Warehouse).order_by(Warehouse.id), args)

    @blp.arguments(WarehouseSchema)
    @blp.response(201, WarehouseSchema)
    def post(self, data: dict[str, Any]) -> Warehouse:
        """Create a warehouse (provider staff)

        ``settings`` and ``credentials`` are validated by the connector's schemas; errors name
        the field as ``settings.<field>`` / ``credentials.<field>``.
        """
        require_provider()
        warehouse = services.create_warehouse(db.session, current_scope(), data)
        db.session.commit()
        return warehouse


@blp.route("/<id:warehouse_id>")
class WarehouseItem(MethodView):
    @blp.response(200, WarehouseSchema)
    def get(self, warehouse_id: int) -> Warehouse:
        """Get a warehouse"""
        return current_scope().get(db.session, Warehouse, warehouse_id)

    @blp.arguments(WarehouseUpdateSchema)
    @blp.response(200, WarehouseSchema)
    def patch(self, data: dict[str, Any], warehouse_id: int) -> Warehouse:
        """Update a warehouse (provider staff)"""
        require_provider()
        scope = current_scope()
        warehouse = scope.get(db.session, Warehouse, warehouse_id)
        services.update_warehouse(db.session, scope, warehouse, data)
        db.session.commit()
        return warehouse

    @blp.response(204)
    def delete(self, warehouse_id: int) -> None:
        """Delete a warehouse (provider staff)

        Refused with 409 ``in_use`` while stores are linked to it.
        """
        require_provider()
        scope = current_scope()
        services.delete_warehouse(db.session, scope, scope.get(db.session, Warehouse, warehouse_id))
        db.session.commit()


@blp.route("/<id:warehouse_id>/ship-methods")
class WarehouseShipMethods(MethodView):
    @blp.response(200, ShipMethodListSchema)
    def get(self, warehouse_id: int) -> dict[str, Any]:
        """List the warehouse's ship methods

        Asks the WMS (for the shipping-rules editor). 409 ``not_supported`` when its connector
        cannot list them; 502 when the WMS fails.
        """
        warehouse = current_scope().get(db.session, Warehouse, warehouse_id)
        try:
            cls = get_state().connectors.get(warehouse.connector_id, ConnectorRole.WAREHOUSE)
        except UnknownConnector:
            cls = None
        if cls is None or Capability.SHIP_METHODS not in cls.capabilities:
            raise Conflict("This warehouse's connector cannot list ship methods.", code="not_supported")
        return {"items": warehouse_connector(warehouse).ship_methods()}

    @blp.doc(**CSV_BODY_DOC)
    @blp.response(200, ShipMethodListSchema)
    def put(self, warehouse_id: int) -> dict[str, Any]:
        """Upload the ship-method catalogue as CSV (provider staff)

        For a WMS that cannot list its ship methods. Columns: ``code`` (required), ``name``,
        ``carrier``. The catalogue is saved as the warehouse's ``ship_methods`` setting with
        ``ship_methods_endpoint`` false, so only a connector whose settings schema has those
        settings takes it; another answers 422 naming ``settings.ship_methods``. Bad cells are
        named ``rows.<row>.<column>`` (the header is row 1) and nothing is saved.
        """
        require_provider()
        scope = current_scope()
        warehouse = scope.get(db.session, Warehouse, warehouse_id)
        methods = _ship_methods_csv(csv_upload_text())
        services.update_warehouse(db.session, scope, warehouse, {
            "settings": {"ship_methods": methods, "ship_methods_endpoint": False}})
        db.session.commit()
        return {"items": warehouse_connector(warehouse).ship_methods()}


def _ship_methods_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    if "code" not in (reader.fieldnames or []):
        raise ValidationFailed("The CSV needs a header row with a 'code' column (and optionally "
                               "'name' and 'carrier').", fields={"rows.1.code": ["Missing column."]})
    methods: list[dict[str, str]] = []
    errors: dict[str, list[str]] = {}
    for number, row in enumerate(reader, start=2):
        code = (row.get("code") or "").strip()
        if not code:
            errors[f"rows.{number}.code"] = ["A ship method needs a code."]
            continue
        methods.append({"code": code, "name": (row.get("name") or "").strip(),
                        "carrier": (row.get("carrier") or "").strip()})
    if errors:
        raise ValidationFailed("Some rows of the catalogue are invalid; nothing was saved.",
                               fields=errors)
    return methods
