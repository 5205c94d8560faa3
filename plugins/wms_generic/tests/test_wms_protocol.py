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
