"""The inbound endpoints refuse every bad push with a clear error and no side effect, accept a
good one once, and keep a shipment for an unknown order as an alert instead of dropping it."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.conftest import _schema, app_config, client, database_url
from tests.factories import MerchantFactory, StoreFactory, WarehouseFactory
from tests.pipeline.conftest import recorded_statements
from wms_support import ACCOUNT, INBOUND_KEY, SIGNING_SECRET, Wired, app, wire, wms

from dropstream.alerts.models import Alert
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.inventory.models import StockLevel
from dropstream.jobs.models import InboxEvent, OutboxItem
from dropstream.stores.credentials import write_credentials
from dropstream.stores.models import Warehouse
from dropstream_wms_generic import signing
from dropstream_wms_generic.inbound import MAX_BODY_BYTES
from dropstream_wms_generic.sandbox import WmsSandbox

SIDE_EFFECTS = (InboxEvent, Shipment, StockLevel, OutboxItem, Alert)


def shipment_event(
    event_id: str = "evt-1", reference: str = "DS-UNKNOWN", **changes: Any
) -> dict[str, Any]:
    shipment = {
        "id": "SH-1",
        "reference": reference,
        "account": ACCOUNT,
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "shipped_at": "2026-11-27T10:00:00Z",
        "lines": [{"line_reference": "1", "sku": "TSHIRT", "quantity": 1}],
        **changes,
    }
    return {"event_id": event_id, "shipment": shipment}


def stock_event(event_id: str = "evt-s1", account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "snapshot": {
            "account": account,
            "complete": False,
            "items": [{"sku": "TSHIRT", "quantity": 12, "as_of": "2026-11-27T10:00:00Z"}],
        },
    }


def push(
    client: Any,
    warehouse_id: int,
    path: str,
    body: bytes | dict[str, Any],
    *,
    key: str = INBOUND_KEY,
    secret: str = SIGNING_SECRET,
    at: float | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signed = signing.sign(key, secret, raw, now=at)
    return client.post(
        f"/connectors/wms_generic/warehouses/{warehouse_id}/{path}",
        data=raw,
        headers=headers if headers is not None else signed,
    )


def counts() -> dict[str, int]:
    db.session.expire_all()
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model)) or 0
        for model in SIDE_EFFECTS
    }


@pytest.fixture
def wired(app: Any, wms: WmsSandbox) -> Wired:
    return wire(wms)


def _other_warehouse(wired: Wired) -> int:
    other = WarehouseFactory(
        provider_id=wired.store.provider_id,
        connector_id="wms_generic",
        settings={"base_url": "https://wms.example.com"},
    )
    write_credentials(
        other,
        {
            "token": "t",
            "inbound_key": "other-inbound-key-0123",
            "signing_secret": "other-signing-secret-0123456789abcdef",
        },
    )
    db.session.commit()
    return other.id


BAD_PUSHES: dict[str, tuple[Callable[[Any, Wired], Any], int, str]] = {
    "unsigned": (
        lambda c, w: push(
            c,
            w.warehouse_id,
            "shipments",
            shipment_event(),
            headers={signing.KEY_HEADER: INBOUND_KEY},
        ),
        401,
        "bad_signature",
    ),
    "no key": (
        lambda c, w: push(c, w.warehouse_id, "shipments", shipment_event(), headers={}),
        401,
        "unauthorized",
    ),
    "wrong key": (
        lambda c, w: push(
            c, w.warehouse_id, "shipments", shipment_event(), key="not-the-inbound-key-000"
        ),
        401,
        "unauthorized",
    ),
    "another warehouse's key": (
        lambda c, w: push(c, _other_warehouse(w), "shipments", shipment_event()),
        401,
        "unauthorized",
    ),
    "unknown warehouse": (
        lambda c, w: push(c, 999999, "shipments", shipment_event()),
        401,
        "unauthorized",
    ),
    "bad signature": (
        lambda c, w: push(c, w.warehouse_id, "shipments", shipment_event(), secret="x" * 40),
        401,
        "bad_signature",
    ),
    "body changed after signing": (
        lambda c, w: c.post(
            f"/connectors/wms_generic/warehouses/{w.warehouse_id}/shipments",
            data=json.dumps(shipment_event(event_id="evt-2")).encode(),
            headers=signing.sign(
                INBOUND_KEY, SIGNING_SECRET, json.dumps(shipment_event()).encode()
            ),
        ),
        401,
        "bad_signature",
    ),
    "stale timestamp": (
        lambda c, w: push(c, w.warehouse_id, "shipments", shipment_event(), at=time.time() - 301),
        401,
        "bad_signature",
    ),
    "timestamp from the future": (
        lambda c, w: push(c, w.warehouse_id, "stock", stock_event(), at=time.time() + 301),
        401,
        "bad_signature",
    ),
    "malformed JSON": (
        lambda c, w: push(c, w.warehouse_id, "shipments", b'{"event_id": "e1", '),
        400,
        "invalid_json",
    ),
    "schema-invalid": (
        lambda c, w: push(
            c, w.warehouse_id, "shipments", shipment_event(lines=[{"sku": "TSHIRT", "quantity": 0}])
        ),
        422,
        "invalid_document",
    ),
    "not an event": (
        lambda c, w: push(c, w.warehouse_id, "stock", shipment_event()),
        422,
        "invalid_document",
    ),
    "oversized": (
        lambda c, w: push(c, w.warehouse_id, "stock", b" " * (MAX_BODY_BYTES + 1)),
        413,
        "too_large",
    ),
    "unknown account": (
        lambda c, w: push(c, w.warehouse_id, "stock", stock_event(account="NOBODY")),
        422,
        "unknown_account",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PUSHES))
def test_bad_pushes_are_refused_with_a_clear_error_and_change_nothing(
    client: Any, wired: Wired, case: str
) -> None:
    send, status, code = BAD_PUSHES[case]
    before = counts()

    response = send(client, wired)

    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code and len(error["message"]) > 20
    assert SIGNING_SECRET not in response.get_data(as_text=True)
    assert counts() == before


def test_schema_errors_name_the_field(client: Any, wired: Wired) -> None:
    response = push(
        client,
        wired.warehouse_id,
        "shipments",
        shipment_event(lines=[{"sku": "TSHIRT", "quantity": 0}]),
    )
    assert response.get_json()["error"]["field"] == "shipment.lines[0].quantity"


def test_a_warehouse_without_push_credentials_accepts_no_pushes(client: Any, wired: Wired) -> None:
    assert push(client, wired.warehouse_id, "stock", stock_event("evt-0")).status_code == 202
    # Removing them takes effect at once, though the warehouse's pushes were remembered.
    write_credentials(db.session.get(Warehouse, wired.warehouse_id), {"token": "t"})
    db.session.commit()
    response = push(client, wired.warehouse_id, "stock", stock_event())
    assert response.status_code == 401 and "inbound_key" in response.get_json()["error"]["message"]


def test_a_known_warehouse_s_pushes_are_checked_without_reading_it_again(
    client: Any, wired: Wired
) -> None:
    first = shipment_event("evt-a", id="SH-A")
    assert push(client, wired.warehouse_id, "shipments", first).status_code == 202
    with recorded_statements() as statements:
        accepted = push(client, wired.warehouse_id, "shipments", shipment_event("evt-b", id="SH-B"))
    assert accepted.status_code == 202
    assert not [s for s in statements if "FROM warehouses" in s]

    forged = shipment_event("evt-c", id="SH-C")
    with recorded_statements() as statements:
        refused = push(client, wired.warehouse_id, "shipments", forged, key="not-the-key")
    assert refused.status_code == 401
    # A key unlike the remembered one is checked against the warehouse as it is now.
    assert len([s for s in statements if "FROM warehouses" in s]) == 1


def test_new_push_credentials_work_at_once_and_the_old_ones_are_then_refused(
    client: Any, wired: Wired
) -> None:
    assert push(client, wired.warehouse_id, "stock", stock_event("evt-a")).status_code == 202
    new_key, new_secret = "new-inbound-key-0123", "new-signing-secret-0123456789abcdef"
    write_credentials(
        db.session.get(Warehouse, wired.warehouse_id),
        {"token": "t", "inbound_key": new_key, "signing_secret": new_secret},
    )
    db.session.commit()

    renewed = push(client, wired.warehouse_id, "stock", stock_event("evt-b"), key=new_key,
                   secret=new_secret)
    assert renewed.status_code == 202
    assert push(client, wired.warehouse_id, "stock", stock_event("evt-c")).status_code == 401


def test_a_replayed_event_is_a_duplicate_and_changes_nothing(client: Any, wired: Wired) -> None:
    assert push(client, wired.warehouse_id, "stock", stock_event()).status_code == 202
    before = counts()

    again = push(client, wired.warehouse_id, "stock", stock_event())

    assert again.status_code == 409 and again.get_json()["error"]["code"] == "duplicate_event"
    assert counts() == before


def test_one_event_delivered_twice_at_once_is_kept_once(app: Any, wired: Wired) -> None:
    """A WMS that retries before its first delivery was answered: both arrive together. One is
    accepted, the other is a duplicate, and the stock is recorded once."""
    import threading

    from tests.reliability.concurrency import meet, run_at_once

    start = threading.Barrier(2, timeout=10)
    statuses: list[int] = []

    def deliver() -> None:
        meet(start)
        answer = push(app.test_client(), wired.warehouse_id, "stock", stock_event())
        statuses.append(answer.status_code)

    db.session.close()  # this test's own transaction would hold SQLite's one write lock
    assert run_at_once(app, [("first", deliver), ("again", deliver)]) == []
    assert sorted(statuses) == [202, 409]
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(InboxEvent)) == 1
    assert db.session.scalar(select(func.count()).select_from(StockLevel)) == 1


def test_a_shipment_for_an_order_of_another_warehouse_is_refused(
    client: Any, wired: Wired, wms: WmsSandbox
) -> None:
    other = wire(wms, name="other")  # another provider's store and warehouse on the same WMS
    external_id = other.shop.create_order([{"sku": "TSHIRT", "quantity": 1}])
    from dropstream.testing.jobs import run_until_idle

    run_until_idle()
    before = counts()
    response = push(
        client,
        wired.warehouse_id,
        "shipments",
        shipment_event(reference=f"DS-{other.store_id}-{external_id}"),
    )
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "wrong_warehouse"
    assert counts() == before


def test_a_shipment_for_an_unknown_order_is_kept_with_an_alert(client: Any, wired: Wired) -> None:
    response = push(client, wired.warehouse_id, "shipments", shipment_event(reference="DS-404-404"))

    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["shipment_state"] == ShipmentState.UNMATCHED.value
    [shipment] = db.session.scalars(select(Shipment)).all()
    assert shipment.store_id == wired.store_id and shipment.tracking_number == "1Z999AA10123456784"
    [alert] = db.session.scalars(select(Alert)).all()
    assert alert.code == "shipment_unmatched" and "DS-404-404" in alert.message


def test_pushed_stock_is_recorded_and_queues_the_inventory_push(client: Any, wired: Wired) -> None:
    response = push(client, wired.warehouse_id, "stock", stock_event())

    assert response.status_code == 202 and response.get_json()["pushes_queued"] == 1
    level = db.session.scalars(select(StockLevel)).one()
    assert (level.warehouse_sku, level.quantity, level.merchant_id) == (
        "TSHIRT",
        12,
        wired.store.merchant_id,
    )
    assert [i.kind for i in db.session.scalars(select(OutboxItem))] == ["channel.run"]


def test_a_stock_push_reads_its_stores_with_their_channels(client: Any, wired: Wired) -> None:
    """The push queues each store's inventory channel: the channels come with the stores, in
    the one query that finds the account's stores, not in a query of their own per push."""
    push(client, wired.warehouse_id, "stock", stock_event("evt-a"))  # the sender is remembered
    with recorded_statements() as statements:
        response = push(client, wired.warehouse_id, "stock", stock_event("evt-b"))

    assert response.status_code == 202 and response.get_json()["pushes_queued"] == 1
    assert [s for s in statements if s.startswith("SELECT store_channels.")] == []
    assert any(s.startswith("SELECT stores.") and "JOIN store_channels" in s for s in statements)


def test_stock_for_an_account_reaches_only_the_stores_with_that_account(
    client: Any, wired: Wired
) -> None:
    """Many merchants share a provider's warehouse, each under its customer code; stores
    without one use the warehouse's default account. A push for an account is recorded for
    its stores only, and only they are read from the database."""
    from sqlalchemy import event

    from dropstream.stores.models import Store

    warehouse = db.session.get(Warehouse, wired.warehouse_id)
    warehouse.settings = {**warehouse.settings, "default_account": "HOUSE"}
    first = db.session.get(Store, wired.store_id)
    others = {
        code: StoreFactory(
            provider_id=first.provider_id,
            merchant_id=MerchantFactory(provider_id=first.provider_id).id,
            warehouse_id=warehouse.id,
            warehouse_account={"customer_code": code} if code else {},
        )
        for code in ("OTHER", "")
    }
    db.session.commit()
    mine_merchant, house = first.merchant_id, others[""]
    house_ids = (house.id, house.merchant_id)
    db.session.expunge_all()  # what the push reads, it loads from the database
    loaded: list[int] = []

    def on_load(target: Any, _context: Any) -> None:
        if isinstance(target, Store):
            loaded.append(target.id)

    event.listen(Store, "load", on_load)
    try:
        for_mine = push(client, wired.warehouse_id, "stock", stock_event("evt-a"))
        for_house = push(client, wired.warehouse_id, "stock", stock_event("evt-b", account="HOUSE"))
    finally:
        event.remove(Store, "load", on_load)

    assert (for_mine.status_code, for_mine.get_json()["stores"]) == (202, 1)
    assert (for_house.status_code, for_house.get_json()["stores"]) == (202, 1)
    owners = sorted(level.merchant_id for level in db.session.scalars(select(StockLevel)))
    assert owners == sorted([mine_merchant, house_ids[1]])
    assert sorted(loaded) == sorted([wired.store_id, house_ids[0]])
