"""A tenant's worth of data of every kind the API serves, for order and isolation tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dropstream.alerts.models import Alert
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.inventory.models import InventoryItem, StockLevel
from dropstream.orders.models import OrderEvent, WarehouseLine
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.tenants.models import Role
from tests.factories import (
    ListingComponentFactory,
    ListingFactory,
    OrderFactory,
    ShippingRuleFactory,
)
from tests.tenancy import Tenant

WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class Data:
    tenant: Tenant
    ids: dict[str, int]


def populate(tenant: Tenant, store=None) -> Data:  # type: ignore[no-untyped-def]
    """Orders (queued and held), a listing and a bundle, a rule, a shipment, stock, an
    inventory item and an alert for ``tenant``'s store (or ``store``)."""
    store = store or tenant.store
    owned = {"provider_id": store.provider_id, "merchant_id": store.merchant_id}
    order = OrderFactory(**owned, store_id=store.id, number=f"R-{store.id}-1")
    held = OrderFactory(**owned, store_id=store.id, number=f"R-{store.id}-2",
                        status=OrderStatus.ON_HOLD, hold_reason=HoldReason.UNKNOWN_SKU,
                        hold_detail="lines[0].sku: unknown")
    line = order.lines[0]
    db.session.add(WarehouseLine(**owned, order_id=order.id, order_line_id=line.id,
                                 address_id=order.addresses[0].id, warehouse_sku="WH-1",
                                 quantity=1))
    db.session.add(OrderEvent(**owned, order_id=held.id, kind="held",
                              message="Held: unknown SKU", detail={"hold_reason": "unknown_sku"}))
    listing = ListingFactory(**owned, store_id=store.id)
    bundle = ListingFactory(**owned, store_id=store.id, warehouse_sku=None)
    ListingComponentFactory(**owned, listing_id=bundle.id)
    rule = ShippingRuleFactory(**owned, store_id=store.id)
    shipment = Shipment(**owned, warehouse_id=store.warehouse_id, store_id=store.id,
                        order_id=order.id, warehouse_shipment_id=f"SHP-{store.id}",
                        order_reference=f"ref-{order.id}", carrier="UPS", tracking_number="1Z",
                        lines=[{"line_reference": "1", "sku": "WH-1", "quantity": 1}],
                        state=ShipmentState.PENDING, shipped_at=WHEN)
    stock = StockLevel(**owned, warehouse_id=store.warehouse_id, warehouse_sku="WH-1",
                       quantity=7, source_updated_at=WHEN)
    item = InventoryItem(**owned, store_id=store.id, store_sku="SKU-1", available=7)
    alert = Alert(**owned, store_id=store.id, code="auth_failed", message="Token rejected",
                  group_key=f"store:{store.id}:auth_failed")
    db.session.add_all([shipment, stock, item, alert])
    db.session.commit()
    return Data(tenant, {
        "merchant_id": store.merchant_id, "store_id": store.id,
        "warehouse_id": store.warehouse_id, "user_id": tenant.users[Role.MERCHANT_ADMIN].id,
        "order_id": order.id, "held_order_id": held.id, "listing_id": listing.id,
        "bundle_id": bundle.id, "rule_id": rule.id, "shipment_id": shipment.id,
        "stock_level_id": stock.id, "inventory_item_id": item.id, "alert_id": alert.id,
    })
