"""PROTOCOL.md and the schemas it publishes say the same thing, and the documents DropStream
sends are valid by the schemas it publishes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dropstream.connectors.types import Address, WarehouseLine, WarehouseOrder
from dropstream_wms_generic import protocol

PLUGIN = Path(protocol.__file__).resolve().parents[1]
SCHEMAS = PLUGIN / "dropstream_wms_generic" / "schemas" / protocol.VERSION


def test_protocol_md_names_every_schema_and_every_schema_exists() -> None:
    text = (PLUGIN / "PROTOCOL.md").read_text()
    named = set(re.findall(r"`([a-z-]+\.json)`", text))
    on_disk = {path.name for path in SCHEMAS.glob("*.json")}
    assert named == on_disk == {f"{name}.json" for name in (*protocol.DOCUMENTS, "common")}


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.name)
def test_each_schema_declares_its_id_and_dialect(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["$id"] == f"{protocol.SCHEMA_URN}{path.stem}"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_an_order_with_every_optional_field_empty_is_still_valid() -> None:
    order = WarehouseOrder(
        reference="DS-1-1",
        order_number="1",
        placed_at=datetime(2026, 11, 27, 10, 0),  # naive: taken as UTC
        ship_to=Address(name="Ada", street1="1 Row", city="Paris", country_code="fr"),
        ship_code="GRND",
        lines=(WarehouseLine("1", "SKU", 1),),
    )
    document = protocol.order_document(order, "ACME")
    protocol.validate("order", document)
    assert document["placed_at"] == "2026-11-27T10:00:00Z"
    assert document["ship_to"] == {
        "name": "Ada",
        "street1": "1 Row",
        "city": "Paris",
        "postal_code": "",
        "country_code": "FR",
    }
    assert protocol.parse_time("2026-11-27T11:00:00+01:00") == datetime(
        2026, 11, 27, 10, tzinfo=UTC
    )


def _order_document(**changes: object) -> dict:
    order = WarehouseOrder(
        reference="DS-1-1", order_number="1", placed_at=datetime(2026, 11, 27, 10, 0),
        ship_to=Address(name="Ada", street1="1 Row", city="Paris", country_code="FR"),
        ship_code="GRND", lines=(WarehouseLine("1", "SKU", 1),),
    )
    return {**protocol.order_document(order, "ACME"), **changes}


@pytest.mark.parametrize(("document", "data", "field"), [
    # Each rule below lives in common.json and is reached through a $ref.
    ("order", _order_document(account="no spaces allowed"), "account"),
    ("order", _order_document(placed_at="27/11/2026"), "placed_at"),
    ("order", _order_document(ship_to={"name": "Ada", "street1": "1 Row", "city": "Paris",
                                       "postal_code": "", "country_code": "FR",
                                       "company": "x" * 256}), "ship_to.company"),
    ("order", _order_document(lines=[{"reference": "1", "sku": "", "quantity": 1}]), "lines[0].sku"),
    # And through a $ref to a whole other document (a pushed shipment holds a shipment).
    ("shipment-event", {"event_id": "e-1", "shipment": {"account": "ACME"}}, "shipment"),
])
def test_what_a_referenced_definition_says_is_enforced(document: str, data: dict, field: str) -> None:
    with pytest.raises(protocol.ProtocolError) as raised:
        protocol.validate(document, data)
    assert raised.value.field == field


def test_references_are_resolved_once_and_a_recursive_one_is_kept() -> None:
    from referencing import Registry, Resource

    tree = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:test:tree",
            "type": "object",
            "properties": {"label": {"$ref": "#/$defs/label"}, "children": {
                "type": "array", "items": {"$ref": "urn:test:tree"}}},
            "$defs": {"label": {"type": "string", "maxLength": 3}}}
    registry = Registry().with_resource("urn:test:tree", Resource.from_contents(tree)).crawl()
    inlined = protocol._inlined(tree, registry.resolver("urn:test:tree"))
    assert inlined["properties"]["label"] == {"type": "string", "maxLength": 3}
    # The tree's own reference to itself, one level down, stays a reference.
    assert inlined["properties"]["children"]["items"]["properties"]["children"]["items"] == {
        "$ref": "urn:test:tree"}
    assert protocol.schema("order")["properties"]["account"] == {
        "$ref": "urn:dropstream:wms:v1:common#/$defs/account"}  # published as written


def test_a_relative_recursive_reference_is_refused_when_the_validators_are_built() -> None:
    from referencing import Registry, Resource

    tree = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:test:tree",
            "type": "array", "items": {"$ref": "#"}}
    registry = Registry().with_resource("urn:test:tree", Resource.from_contents(tree)).crawl()
    with pytest.raises(ValueError, match="must be absolute"):
        protocol._inlined(tree, registry.resolver("urn:test:tree"))
