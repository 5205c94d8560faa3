"""Shipments the warehouses confirmed, and whether each was posted to its store."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from dropstream.api.auth import current_scope
from dropstream.api.common import QueryId
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState

blp = Blueprint("shipments", __name__, url_prefix="/api/v1/shipments",
                description="Warehouse shipments and their posting to the store.")


class ShipmentLineSchema(Schema):
    line_reference = fields.String(allow_none=True)
    sku = fields.String(allow_none=True)
    quantity = fields.Integer()


class ShipmentSchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer(allow_none=True)
    store_id = fields.Integer()
    merchant_id = fields.Integer()
    warehouse_id = fields.Integer()
    warehouse_shipment_id = fields.String()
    order_reference = fields.String()
    carrier = fields.String()
    service = fields.String()
    tracking_number = fields.String()
    tracking_url = fields.String()
    shipped_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(ShipmentLineSchema))
    state = fields.Enum(ShipmentState, by_value=True)
    store_shipment_id = fields.String(allow_none=True)
    posted_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()


class ShipmentListArgs(PageArgs):
    order_id = QueryId()
    store_id = QueryId()
    state = fields.Enum(ShipmentState, by_value=True)


@blp.route("")
class Shipments(MethodView):
    @blp.arguments(ShipmentListArgs, location="query")
    @blp.response(200, page_schema(ShipmentSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List shipments, newest first"""
        statement = current_scope().select(Shipment).order_by(Shipment.id.desc())
        for key, column in (("order_id", Shipment.order_id), ("store_id", Shipment.store_id),
                            ("state", Shipment.state)):
            if key in args:
                statement = statement.where(column == args[key])
        return paginate(db.session, statement, args)


@blp.route("/<id:shipment_id>")
class ShipmentItem(MethodView):
    @blp.response(200, ShipmentSchema)
    def get(self, shipment_id: int) -> Shipment:
        """Get a shipment"""
        return current_scope().get(db.session, Shipment, shipment_id)
