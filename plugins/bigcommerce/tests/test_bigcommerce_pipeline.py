"""End to end through the core pipeline: a store on this connector (BigCommerce sandbox, real
HTTP both ways) and the reference warehouse. An order created in BigCommerce is announced by
webhook, imported, forwarded and marked Awaiting Shipment; its shipment is posted back with
tracking; stock is pushed; a cancellation in the store reaches the order."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

from typing import Any

from bigcommerce_support import SHIP_CODE, add_products, app, sandbox, served, shop, wire
from sqlalchemy import select
from tests.conftest import _schema, app_config, database_url

from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.inventory.models import InventoryItem
from dropstream.orders.models import OrderEvent
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.testing.jobs import run_until_idle
from dropstream_bigcommerce.sandbox.testing import SandboxStore


def _poll(wired: Any) -> None:
    for channel in wired.store.channels:
        channel.next_run_at = None
    db.session.commit()
    run_until_idle()
    wired.deliver_webhooks()


def test_an_order_flows_from_bigcommerce_to_the_warehouse_and_back(
    app: Any, shop: SandboxStore, served: str
) -> None:
    add_products(shop, ("TEE", "product"), ("MUG", "product"), ("CAP", "none"))
    wired = wire(shop)
    for channel in wired.store.channels:  # only the webhook may bring the order in
        channel.enabled = False
    db.session.commit()
    order_id = shop.sandbox.create_order(
        shop.hash, lines=[{"sku": "TEE", "quantity": 2}, {"sku": "MUG", "quantity": 1}]
    )
    wired.deliver_webhooks()
    run_until_idle()
    wired.deliver_webhooks()

    order = wired.order(order_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    [wms_order] = wired.wms.orders
    assert wms_order["ship_code"] == SHIP_CODE
    assert sorted((l["sku"], l["quantity"]) for l in wms_order["lines"]) == [("MUG", 1), ("TEE", 2)]
    assert shop.sandbox.get_order(shop.hash, order_id)["status_id"] == 9  # Awaiting Shipment

    for channel in wired.store.channels:
        channel.enabled = True
    db.session.commit()
    shipped = wired.wms.ship(wms_order["reference"])
    wired.wms.set_stock("TEE", 40)
    wired.wms.set_stock("CAP", 7)
    _poll(wired)

    order = wired.order(order_id)
    assert order.status is OrderStatus.SHIPPED
    bc_order = shop.sandbox.get_order(shop.hash, order_id)
    [posted] = bc_order["shipments"]
    assert posted["tracking_number"] == shipped["tracking"] and posted["shipping_provider"] == "ups"
    assert bc_order["status_id"] == 2
    [shipment] = db.session.scalars(select(Shipment)).all()
    assert shipment.state is ShipmentState.POSTED and shipment.store_shipment_id == str(
        posted["id"]
    )
    kinds = [e.kind for e in order.events]
    assert kinds[:3] == ["imported", "queued", "forwarded"] and "shipment_posted" in kinds

    assert shop.sandbox.inventory_level(shop.hash, "TEE") == 40
    items = {i.store_sku: i for i in db.session.scalars(select(InventoryItem))}
    assert (
        items["CAP"].reason == "tracking_off"
        and shop.sandbox.inventory_level(shop.hash, "CAP") == 10
    )


def test_what_the_core_holds_and_what_a_cancellation_does(
    app: Any, shop: SandboxStore, served: str
) -> None:
    add_products(shop, ("TEE", "product"))
    wired = wire(shop)
    custom = shop.sandbox.create_order(
        shop.hash, lines=[{"sku": "TEE"}], custom_products=[{"name": "Engraving", "quantity": 1}]
    )
    wired.deliver_webhooks()
    run_until_idle()

    held = wired.order(custom)
    assert held.status is OrderStatus.ON_HOLD and held.hold_reason is HoldReason.NO_SKU
    assert not wired.wms.orders

    shop.sandbox.set_order_status(shop.hash, custom, 5)  # the merchant cancels it in BigCommerce
    wired.deliver_webhooks()
    run_until_idle()

    assert wired.order(custom).status is OrderStatus.CANCELLED


def test_an_order_the_webhooks_missed_is_found_by_the_sweep(
    app: Any, shop: SandboxStore, served: str
) -> None:
    add_products(shop, ("TEE", "product"))
    wired = wire(shop)
    shop.sandbox.inject("drop_webhooks", store_hash=shop.hash, count=2)  # created, statusUpdated
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": "TEE"}])
    wired.deliver_webhooks()
    assert not db.session.scalars(select(OrderEvent)).all()

    _poll(wired)

    assert wired.order(order_id).status is OrderStatus.AT_WAREHOUSE


def test_an_order_deleted_in_the_store_while_on_hold_is_not_sent_when_the_hold_is_fixed(
    app: Any, shop: SandboxStore, served: str
) -> None:
    from dropstream.catalog.models import ShippingRule
    from dropstream.orders.holds import request_hold_rescan
    from dropstream_bigcommerce.sandbox.orders import DEFAULT_BILLING

    add_products(shop, ("TEE", "product"))
    wired = wire(shop)
    order_id = shop.sandbox.create_order(
        shop.hash,
        lines=[{"sku": "TEE"}],
        shipping_addresses=[{**DEFAULT_BILLING, "shipping_method": "Pigeon Post"}],
    )
    wired.deliver_webhooks()
    run_until_idle()
    assert wired.order(order_id).hold_reason is HoldReason.UNMAPPED_SHIPPING_METHOD

    shop.sandbox.archive_order(shop.hash, order_id)  # "Delete" in BigCommerce: no status change
    wired.deliver_webhooks()
    run_until_idle()
    gone = wired.order(order_id)
    assert gone.status is OrderStatus.ERROR and gone.error_code == "remote_not_found"

    # The rule that would have released it comes later: nothing goes to the warehouse.
    store = wired.store
    db.session.add(ShippingRule(provider_id=store.provider_id, merchant_id=store.merchant_id,
                                store_id=store.id, store_method="Pigeon Post",
                                match_key="pigeon post", warehouse_code="PIGEON"))
    request_hold_rescan(db.session, store)
    db.session.commit()
    run_until_idle()
    assert not wired.wms.orders


def test_a_flash_sales_queued_up_orders_are_read_in_one_call(
    app: Any, shop: SandboxStore, served: str
) -> None:
    """Webhooks arriving faster than orders are read pile up re-reads: the job that reaches
    them first reads them all with one list call, not one call each."""
    from datetime import timedelta

    from sqlalchemy import update

    from dropstream.db import utcnow
    from dropstream.jobs.models import OutboxItem

    add_products(shop, ("TEE", "product"))
    wired = wire(shop)
    for channel in wired.store.channels:  # only the webhooks bring the orders in
        channel.enabled = False
    db.session.commit()
    order_ids = [
        shop.sandbox.create_order(shop.hash, lines=[{"sku": "TEE", "quantity": n + 1}])
        for n in range(6)
    ]
    wired.deliver_webhooks()
    db.session.execute(  # every worker was busy: the re-reads waited
        update(OutboxItem).values(run_after=utcnow() - timedelta(seconds=5))
    )
    db.session.commit()
    calls_before = len(shop.sandbox.call_log(shop.hash))

    run_until_idle()

    reads = [
        entry["path"].split(f"/stores/{shop.hash}")[1]
        for entry in shop.sandbox.call_log(shop.hash)[calls_before:]
        if entry["method"] == "GET" and "/v2/orders" in entry["path"]
    ]
    assert reads == ["/v2/orders"]
    assert [wired.order(i).status for i in order_ids] == [OrderStatus.AT_WAREHOUSE] * 6
    assert sorted(o["lines"][0]["quantity"] for o in wired.wms.orders) == [1, 2, 3, 4, 5, 6]
