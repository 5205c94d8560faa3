"""End to end through the core pipeline, with the reference store and the WMS sandbox over real
HTTP: import → forward → shipment (polled, or pushed to the signed inbound endpoint) → posted to
the store; stock pushed → recorded → pushed to the store. And exactly one WMS order when the WMS
does not de-duplicate and a reply is lost."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from tests.conftest import _schema, app_config, database_url
from tests.pipeline.conftest import recorded_statements
from wms_support import ACCOUNT, INBOUND_KEY, SIGNING_SECRET, app, inbound_url, served, wire, wms

from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.inventory.models import StockLevel
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.testing.jobs import make_due, run_until_idle
from dropstream_wms_generic.sandbox import WmsSandbox


def _order(external_id: str) -> Order:
    db.session.expire_all()
    return db.session.scalars(select(Order).where(Order.external_id == external_id)).one()


def _poll(store_id: int) -> None:
    from dropstream.stores.models import Store

    for channel in db.session.get(Store, store_id).channels:
        channel.next_run_at = None
    db.session.commit()
    run_until_idle()


def test_an_order_reaches_the_wms_and_its_partial_shipments_come_back(
    app: Any, wms: WmsSandbox
) -> None:
    wired = wire(wms)
    external_id = wired.shop.create_order(
        [{"sku": "TSHIRT", "quantity": 3}, {"sku": "MUG", "quantity": 1}]
    )

    run_until_idle()

    order = _order(external_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    [wms_order] = wms.orders()
    assert (
        wms_order["reference"] == f"DS-{wired.store_id}-{external_id}"
        and wms_order["account"] == ACCOUNT
    )
    assert [(l["sku"], l["quantity"]) for l in wms_order["lines"]] == [("TSHIRT", 3), ("MUG", 1)]
    assert order.addresses[-1].warehouse_order_id == wms_order["id"]

    first = wms.ship(wms_order["reference"], lines={wms_order["lines"][0]["reference"]: 2})
    _poll(wired.store_id)
    assert _order(external_id).status is OrderStatus.PARTIALLY_SHIPPED

    second = wms.ship(wms_order["reference"])
    _poll(wired.store_id)
    assert _order(external_id).status is OrderStatus.SHIPPED
    posted = sorted(wired.shop.shipments.values(), key=lambda s: s["key"])
    assert [p["tracking"] for p in posted] == [first["tracking_number"], second["tracking_number"]]
    assert all(p["carrier"] == "UPS" for p in posted)
    assert sorted(posted[0]["lines"]) == [("1", 2)] and sorted(posted[1]["lines"]) == [
        ("1", 1),
        ("2", 1),
    ]


def test_no_dedupe_and_a_lost_reply_still_make_exactly_one_wms_order(
    app: Any, wms: WmsSandbox
) -> None:
    wms.configure(dedupe=False)
    wired = wire(wms, dedupes_references=False)
    wms.inject("lose_reply", on="create_order")
    external_id = wired.shop.create_order([{"sku": "TSHIRT", "quantity": 1}])

    run_until_idle()
    _poll(wired.store_id)  # sweeps read the order again: nothing may be sent twice

    order = _order(external_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    assert len(wms.orders()) == 1
    assert "found_at_warehouse" in [e.kind for e in order.events]


def test_a_retry_after_a_lost_reply_finds_the_order_instead_of_sending_it_again(
    app: Any, wms: WmsSandbox
) -> None:
    wired = wire(wms)
    wms.inject("lose_reply", on="create_order")
    wms.inject("error", on="find_orders", status=503)
    external_id = wired.shop.create_order([{"sku": "TSHIRT", "quantity": 1}])

    run_until_idle()
    assert _order(external_id).status is OrderStatus.RETRYING
    make_due()
    run_until_idle()

    assert _order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(wms.orders()) == 1


def test_pushed_shipments_and_stock_arrive_through_the_signed_endpoints(
    app: Any, wms: WmsSandbox, served: str
) -> None:
    wired = wire(wms)
    wired.shop.add_product("TSHIRT", tracked=True)
    wms.set_stock(ACCOUNT, {"TSHIRT": 40})
    external_id = wired.shop.create_order([{"sku": "TSHIRT", "quantity": 2}])
    run_until_idle()
    wms.configure_push(inbound_url(served, wired.warehouse_id), INBOUND_KEY, SIGNING_SECRET)

    shipment = wms.ship(f"DS-{wired.store_id}-{external_id}")
    db.session.remove()  # this thread must hold no transaction while DropStream writes
    with recorded_statements() as statements:
        delivered = wms.deliver_pushes()

    assert delivered == {"delivered": 2, "refused": 0, "retrying": 0}, wms.pushes()
    # The consignment the shipment's reference names is read once, with its store and order.
    assert len([s for s in statements if s.startswith("SELECT") and "order_addresses" in s]) == 1
    assert "shipment_received" in [event.kind for event in _order(external_id).events]
    [recorded] = db.session.scalars(select(Shipment)).all()
    assert (
        recorded.warehouse_shipment_id == shipment["id"] and recorded.state is ShipmentState.PENDING
    )
    level = db.session.scalars(select(StockLevel).where(StockLevel.warehouse_sku == "TSHIRT")).one()
    assert level.quantity == 38

    db.session.remove()
    run_until_idle(channels=False)  # the queued work only: the post, and the inventory run

    assert _order(external_id).status is OrderStatus.SHIPPED
    [posted] = wired.shop.shipments.values()
    assert posted["tracking"] == shipment["tracking_number"]
    assert wired.shop.products["TSHIRT"]["quantity"] == 38

    # The same shipment polled later is the same shipment, not a second post.
    _poll(wired.store_id)
    assert db.session.scalar(select(func.count()).select_from(Shipment)) == 1
    assert len(wired.shop.shipments) == 1
