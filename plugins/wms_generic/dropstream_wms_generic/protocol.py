"""The generic WMS protocol, v1: its JSON Schemas, and canonical types ↔ protocol documents.

PROTOCOL.md (next to this package) is the published description; the schemas in
``schemas/v1/`` are the normative part, and every document crossing the wire in either direction
is validated against them here. The connector, the inbound endpoints and the sandbox all map
through this one module, so the three can never disagree about a field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from dropstream.connectors.types import (
    ShipmentData,
    ShipmentLineData,
    ShipMethod,
    StockLevelData,
    WarehouseOrder,
)

VERSION = "v1"
SCHEMA_URN = "urn:dropstream:wms:v1:"
#: The documents, by the name used in this module and in PROTOCOL.md.
DOCUMENTS = (
    "order",
    "order-ack",
    "order-list",
    "order-batch",
    "order-batch-result",
    "shipment",
    "shipment-page",
    "stock-snapshot",
    "ship-methods",
    "error",
    "shipment-event",
    "stock-event",
)


class ProtocolError(ValueError):
    """A document does not follow the protocol. ``field`` is the path of the first bad field
    (``lines[2].sku``), or ``""`` for the document as a whole."""

    def __init__(self, document: str, message: str, field: str = "") -> None:
        where = f" at {field}" if field else ""
        super().__init__(f"{document} document is invalid{where}: {message}")
        self.document = document
        self.field = field
        self.reason = message


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    # Read lazily (importing the module touches no file) and once per process.
    folder = resources.files("dropstream_wms_generic").joinpath("schemas", VERSION)
    return {
        name: json.loads(folder.joinpath(f"{name}.json").read_text("utf-8"))
        for name in (*DOCUMENTS, "common")
    }


@cache
def _validators() -> dict[str, Draft202012Validator]:
    schemas = _schemas()
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    ).crawl()
    return {
        name: Draft202012Validator(_inlined(schemas[name], registry.resolver(schemas[name]["$id"])),
                                   registry=registry)
        for name in DOCUMENTS
    }


def _inlined(node: Any, resolver: Any, through: tuple[int, ...] = ()) -> Any:
    """``node`` with each ``{"$ref": …}`` replaced by the schema it names (``resolver``:
    referencing's, for where ``node`` sits). The validators then look nothing up while they
    validate: the look-ups cost about 40% of validating a document, and every document crossing
    the wire is validated. A reference within its own target (recursion) is kept; it must then
    be absolute, as it may no longer sit under the base it was written against."""
    if isinstance(node, list):
        return [_inlined(value, resolver, through) for value in node]
    if not isinstance(node, dict):
        return node
    if "$id" in node:
        resolver = resolver.in_subresource(Resource.from_contents(node))
    reference = node.get("$ref")
    if isinstance(reference, str) and len(node) == 1:
        target = resolver.lookup(reference)
        if id(target.contents) not in through:
            return _inlined(target.contents, target.resolver, (*through, id(target.contents)))
        if ":" not in reference.partition("#")[0]:
            raise ValueError(f"a recursive reference must be absolute: {reference!r}")
    return {key: _inlined(value, resolver, through) for key, value in node.items()}


def schema(document: str) -> dict[str, Any]:
    """The JSON Schema of ``document``, as published (for tests and tools)."""
    return dict(_schemas()[document])


def validate(document: str, data: Any) -> None:
    """:raises ProtocolError: ``data`` is not a valid ``document``, naming the first bad field."""
    error = best_match(_validators()[document].iter_errors(data))
    if error is not None:
        raise ProtocolError(document, _short(error.message), field_path(error.absolute_path))


def field_path(parts: Any) -> str:
    """``["lines", 2, "sku"]`` → ``lines[2].sku``."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _short(message: str) -> str:
    # jsonschema repeats the whole offending value; an order's worth of JSON helps nobody.
    return message if len(message) <= 300 else message[:297] + "..."


# ------------------------------------------------------------------------------------------------
# Times
# ------------------------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (the schemas guarantee the shape) as an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


# ------------------------------------------------------------------------------------------------
# Canonical → protocol
# ------------------------------------------------------------------------------------------------


def order_document(order: WarehouseOrder, account: str) -> dict[str, Any]:
    """The ``order`` document for one consignment; empty optional fields are left out."""
    address = {
        "name": order.ship_to.name,
        "company": order.ship_to.company,
        "street1": order.ship_to.street1,
        "street2": order.ship_to.street2,
        "city": order.ship_to.city,
        "state": order.ship_to.state,
        "postal_code": order.ship_to.postal_code,
        "country_code": order.ship_to.country_code.upper(),
        "phone": order.ship_to.phone,
        "email": order.ship_to.email,
    }
    document: dict[str, Any] = {
        "reference": order.reference,
        "account": account,
        "order_number": order.order_number,
        "placed_at": format_time(order.placed_at),
        "ship_method": order.ship_code,
        "ship_to": {
            key: value for key, value in address.items() if value or key in _REQUIRED_ADDRESS
        },
        "lines": [
            {
                "reference": line.reference,
                "sku": line.sku,
                "quantity": line.quantity,
                **({"name": line.name[:500]} if line.name else {}),
            }
            for line in order.lines
        ],
    }
    if order.customer_email:
        document["customer_email"] = order.customer_email
    if order.note:
        document["note"] = order.note[:2000]
    return document


_REQUIRED_ADDRESS = frozenset({"name", "street1", "city", "postal_code", "country_code"})


def shipment_document(shipment: ShipmentData, account: str) -> dict[str, Any]:
    """A ``shipment`` document (the sandbox serves and pushes these)."""
    document: dict[str, Any] = {
        "id": shipment.warehouse_shipment_id,
        "reference": shipment.order_reference,
        "account": account,
        "carrier": shipment.carrier,
        "service": shipment.service,
        "tracking_number": shipment.tracking_number,
        "tracking_url": shipment.tracking_url,
        "shipped_at": format_time(shipment.shipped_at or datetime.now(UTC)),
        "lines": [
            {"line_reference": line.line_reference, "sku": line.sku, "quantity": line.quantity}
            for line in shipment.lines
        ],
    }
    return document


# ------------------------------------------------------------------------------------------------
# Protocol → canonical (documents already validated)
# ------------------------------------------------------------------------------------------------


def shipment_from(document: dict[str, Any]) -> ShipmentData:
    return ShipmentData(
        warehouse_shipment_id=document["id"],
        order_reference=document["reference"],
        lines=tuple(
            ShipmentLineData(
                quantity=line["quantity"],
                sku=line["sku"],
                line_reference=line.get("line_reference"),
            )
            for line in document["lines"]
        ),
        carrier=document.get("carrier", ""),
        service=document.get("service", ""),
        tracking_number=document.get("tracking_number", ""),
        tracking_url=document.get("tracking_url", ""),
        shipped_at=parse_time(document["shipped_at"]),
    )


def stock_levels_from(document: dict[str, Any]) -> tuple[StockLevelData, ...]:
    return tuple(
        StockLevelData(item["sku"], item["quantity"], parse_time(item["as_of"]))
        for item in document["items"]
    )


def ship_methods_from(document: dict[str, Any]) -> list[ShipMethod]:
    return [
        ShipMethod(item["code"], item.get("name", ""), item.get("carrier", ""))
        for item in document["items"]
    ]


def error_from(document: Any) -> tuple[str, str, str | None] | None:
    """``(code, message, field)`` of an ``error`` document, or None if it is not one."""
    try:
        validate("error", document)
    except ProtocolError:
        return None
    error = document["error"]
    return error["code"], error["message"], error.get("field")


def error_document(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **({"field": field} if field else {})}}
