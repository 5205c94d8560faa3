"""Warehouse stock reaches the store: mapped back through listings, less what is in flight and
the safety buffer, only what changed, and every item's outcome reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dropstream.alerts.models import Alert
from dropstream.catalog.models import Listing, ListingComponent
from dropstream.extensions import db
from dropstream.inventory.models import InventoryItem, ItemState, StockLevel
from dropstream.stores.models import Channel
from tests.pipeline.conftest import Loop


def _items(loop: Loop) -> dict[str, InventoryItem]:
    db.session.expire_all()
    return {i.store_sku: i for i in db.session.scalars(select(InventoryItem).where(
        InventoryItem.store_id == loop.tenant.store.id))}


def test_stock_is_pushed_for_tracked_items_and_the_rest_is_reported(loop: Loop) -> None:
    loop.shop.add_product("MUG", tracked=True)
    loop.shop.add_product("POSTER", tracked=False)
    loop.wms.set_stock("MUG", 12)
    loop.wms.set_stock("POSTER", 4)
    loop.wms.set_stock("GHOST", 9)  # the store has no such SKU

    loop.poll()

    assert loop.shop.products["MUG"]["quantity"] == 12
    assert loop.shop.products["POSTER"]["quantity"] == 0
    items = _items(loop)
    assert (items["MUG"].state, items["MUG"].pushed_quantity) == (ItemState.PUSHED, 12)
    assert (items["POSTER"].state, items["POSTER"].reason) == (ItemState.SKIPPED, "tracking_off")
    assert (items["GHOST"].state, items["GHOST"].reason) == (ItemState.SKIPPED, "unknown_sku")
    codes = sorted(db.session.scalars(select(Alert.code).where(Alert.resolved_at.is_(None))))
    assert codes == ["inventory_tracking_off", "inventory_unknown_sku"]


def test_in_flight_orders_buffer_and_listings_shape_the_quantity(loop: Loop) -> None:
    t = loop.tenant
    store = loop.store
    store.safety_buffer = 1
    bundle = Listing(provider_id=t.provider.id, merchant_id=t.merchant.id, store_id=t.store.id,
                     store_sku="DUO", warehouse_sku=None)
    bundle.components = [
        ListingComponent(provider_id=t.provider.id, merchant_id=t.merchant.id, warehouse_sku="CUP", quantity=2),
        ListingComponent(provider_id=t.provider.id, merchant_id=t.merchant.id, warehouse_sku="SAUCER", quantity=1),
    ]
    db.session.add_all([bundle, Listing(provider_id=t.provider.id, merchant_id=t.merchant.id,
                                        store_id=t.store.id, store_sku="TEE-RED", warehouse_sku="WH-TEE-R")])
    db.session.commit()
    for sku in ("DUO", "TEE-RED", "CUP", "SAUCER"):
        loop.shop.add_product(sku, tracked=True)
    loop.wms.set_stock("CUP", 11)
    loop.wms.set_stock("SAUCER", 10)
    loop.wms.set_stock("WH-TEE-R", 5)
    # An order held before it reaches the warehouse still claims its units.
    loop.shop.create_order([{"sku": "CUP", "quantity": 3}], shipping_method="Unmapped")

    loop.poll()

    quantities = {sku: p["quantity"] for sku, p in loop.shop.products.items()}
    # CUP: 11 on hand - 3 in flight - 1 buffer; DUO: min((11-3)//2, 10//1) - 1; TEE-RED via listing.
    assert quantities == {"CUP": 7, "SAUCER": 9, "DUO": 3, "TEE-RED": 4}
    assert "WH-TEE-R" not in _items(loop), "a renamed SKU is pushed under its store SKU only"


def test_only_changed_quantities_are_pushed_until_a_full_reconciliation(loop: Loop) -> None:
    loop.shop.add_product("A", tracked=True)
    loop.shop.add_product("B", tracked=True)
    loop.wms.set_stock("A", 1)
    loop.wms.set_stock("B", 2)
    loop.poll()
    loop.shop.products["B"]["quantity"] = 99  # someone edited the store by hand
    loop.wms.set_stock("A", 5)
    before = loop.shop.faults.calls
    loop.poll()
    assert loop.shop.products["A"]["quantity"] == 5
    assert loop.shop.products["B"]["quantity"] == 99, "an unchanged SKU is not pushed on a delta run"
    assert loop.shop.faults.calls > before

    channel = loop.store.channel(Channel.INVENTORY)
    channel.last_full_run_at = datetime.now(UTC) - timedelta(days=2)
    db.session.commit()
    loop.poll()
    assert loop.shop.products["B"]["quantity"] == 2, "the periodic full reconciliation corrects drift"


def test_older_stock_never_overwrites_newer(loop: Loop) -> None:
    from dropstream.connectors.types import StockLevelData, StockSnapshot
    from dropstream.inventory.services import record_stock

    now = datetime.now(UTC)
    record_stock(db.session, loop.store, StockSnapshot((StockLevelData("A", 5, now),), None))
    record_stock(db.session, loop.store, StockSnapshot((StockLevelData("A", 50, now - timedelta(minutes=5)),), None))
    db.session.commit()
    assert db.session.scalars(select(StockLevel.quantity)).one() == 5
