"""Schemas of the orders API: what an order looks like to a client, and the filters and action
bodies it accepts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from dropstream.api.common import Id, QueryId, Text
from dropstream.api.pagination import PageArgs
from dropstream.api.shipments import ShipmentSchema
from dropstream.connectors.types import LineKind
from dropstream.orders.statuses import HoldReason, OrderStatus

ORDER_FIELDS = (
    "id", "store_id", "merchant_id", "external_id", "number", "status", "hold_reason",
    "hold_detail", "error_code", "error_message", "placed_at", "customer_email", "currency",
    "cancel_requested", "forward_attempts", "created_at", "updated_at",
)
LINE_FIELDS = ("id", "external_id", "sku", "name", "quantity", "quantity_shipped", "unit_price",
               "kind", "options", "parent_external_id", "address_id")
ADDRESS_FIELDS = ("id", "role", "name", "company", "street1", "street2", "city", "state",
                  "postal_code", "country_code", "phone", "email", "shipping_method", "ship_code",
                  "warehouse_ref", "warehouse_order_id", "forwarded_at")
EVENT_FIELDS = ("id", "kind", "message", "detail", "created_at")
#: Ids per bulk request: enough for a page of the console, small enough for one request.
MAX_BULK_IDS = 500


class Instant(fields.Field):
    """An ISO date or date-time in a query string; without a zone it is UTC. A bare date means
    the start of that day, or with ``end_of_day`` the start of the next one (so ``placed_to=
    2026-11-01`` includes the whole of 1 November)."""

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError("Not a valid date or date-time.")
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                try:
                    day += timedelta(days=1) if self.end_of_day else timedelta()
                except OverflowError:
                    return datetime.max.replace(tzinfo=UTC)
                return datetime.combine(day, time(), tzinfo=UTC)
            moment = datetime.fromisoformat(value)
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except ValueError:
            raise ValidationError("Not a valid date or date-time (ISO 8601).") from None
        except OverflowError:  # e.g. 0001-01-01T00:00+14:00 lies before year 1 in UTC
            raise ValidationError("Out of range.") from None


class WarehouseLineSchema(Schema):
    warehouse_sku = fields.String()
    per_unit = fields.Integer()
    quantity = fields.Integer()
    quantity_shipped = fields.Integer()


class OrderLineSchema(Schema):
    id = fields.Integer()
    external_id = fields.String()
    sku = fields.String(allow_none=True, metadata={"description": "The store SKU."})
    name = fields.String()
    quantity = fields.Integer()
    quantity_shipped = fields.Integer()
    unit_price = fields.Decimal(as_string=True)
    kind = fields.Enum(LineKind, by_value=True)
    options = fields.Raw()
    parent_external_id = fields.String(allow_none=True)
    address_id = fields.Integer(allow_none=True)
    warehouse_lines = fields.List(fields.Nested(WarehouseLineSchema), metadata={
        "description": "What this line became at the warehouse (a bundle: one per component)."})


class AddressSchema(Schema):
    id = fields.Integer()
    role = fields.String(metadata={"description": "billing or shipping"})
    name = fields.String()
    company = fields.String()
    street1 = fields.String()
    street2 = fields.String()
    city = fields.String()
    state = fields.String()
    postal_code = fields.String()
    country_code = fields.String()
    phone = fields.String()
    email = fields.String()
    shipping_method = fields.String()
    ship_code = fields.String(allow_none=True)
    warehouse_ref = fields.String(allow_none=True)
    warehouse_order_id = fields.String(allow_none=True)
    forwarded_at = fields.DateTime(allow_none=True)


class OrderEventSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    message = fields.String()
    detail = fields.Dict()
    created_at = fields.DateTime()
    explanation = fields.String(allow_none=True, metadata={
        "description": "What the status or hold reason this step led to means, and the fix."})


class OrderSchema(Schema):
    id = fields.Integer()
    store_id = fields.Integer()
    merchant_id = fields.Integer()
    external_id = fields.String()
    number = fields.String()
    status = fields.Enum(OrderStatus, by_value=True)
    status_explanation = fields.String()
    hold_reason = fields.Enum(HoldReason, by_value=True, allow_none=True)
    hold_explanation = fields.String(allow_none=True)
    hold_detail = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    placed_at = fields.DateTime()
    customer_email = fields.String()
    currency = fields.String()
    cancel_requested = fields.Boolean()
    forward_attempts = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class OrderDetailSchema(OrderSchema):
    note = fields.String()
    store_status_code = fields.String()
    lines = fields.List(fields.Nested(OrderLineSchema))
    addresses = fields.List(fields.Nested(AddressSchema))
    shipments = fields.List(fields.Nested(ShipmentSchema))
    timeline = fields.List(fields.Nested(OrderEventSchema))


class OrderListArgs(PageArgs):
    status = fields.List(fields.Enum(OrderStatus, by_value=True))
    hold_reason = fields.List(fields.Enum(HoldReason, by_value=True))
    store_id = QueryId()
    merchant_id = QueryId()
    created_from = Instant()
    created_to = Instant(end_of_day=True)
    placed_from = Instant()
    placed_to = Instant(end_of_day=True)
    q = Text(200, metadata={"description": "Part of the order number or of a line's SKU."})


class HoldSchema(Schema):
    note = Text(1000, load_default="")


class BulkSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(["reprocess", "release", "hold", "cancel"]))
    ids = fields.List(Id(), required=True, validate=validate.Length(1, MAX_BULK_IDS))
    note = Text(1000, load_default="", metadata={"description": "For hold: why."})


class BulkOutcomeSchema(Schema):
    id = fields.Integer()
    outcome = fields.String(metadata={"description": "ok, not_found, or an error code."})
    status = fields.Enum(OrderStatus, by_value=True)
    message = fields.String()


class BulkResultSchema(Schema):
    action = fields.String()
    results = fields.List(fields.Nested(BulkOutcomeSchema))
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
