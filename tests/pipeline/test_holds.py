"""What cannot be mapped is held with a reason that names the field and the fix, and released
by itself once the missing listing or shipping rule is added."""

from __future__ import annotations

from dropstream.catalog.models import Listing, ListingComponent, ShippingRule
from dropstream.extensions import db
from dropstream.orders.holds import request_hold_rescan
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.testing.jobs import run_until_idle
from tests.pipeline.conftest import Loop, recorded_statements


def _add(loop: Loop, row: object) -> None:
    db.session.add(row)
    request_hold_rescan(db.session, loop.store)
    db.session.commit()


def test_a_line_without_sku_holds_the_order_and_names_the_line(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}, {"sku": "", "quantity": 1, "name": "Custom engraving"}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.ON_HOLD
    assert order.hold_reason is HoldReason.NO_SKU
    assert "lines[1].sku" in order.hold_detail and "Custom engraving" in order.hold_detail
    assert loop.wms.orders == []
    held = [e for e in order.events if e.kind == "held"][0]
    assert held.detail["fix"] == HoldReason.NO_SKU.explanation


def test_an_unmapped_shipping_method_is_released_when_a_rule_is_added(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}], shipping_method="Overnight Air")
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.ON_HOLD
    assert order.hold_reason is HoldReason.UNMAPPED_SHIPPING_METHOD
    assert "shipping_addresses[0].shipping_method" in order.hold_detail
    alerts = _open_alerts()
    assert [a.code for a in alerts] == ["hold_unmapped_shipping_method"]

    _add(loop, ShippingRule(provider_id=order.provider_id, merchant_id=order.merchant_id,
                            store_id=order.store_id, store_method="Overnight Air",
                            match_key="overnight air", warehouse_code="EXP"))
    run_until_idle()

    order = loop.order(external_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    assert loop.wms.orders[0]["ship_code"] == "EXP"
    assert "automatically" in [e for e in order.events if e.kind == "released"][0].message
    assert _open_alerts() == []


def test_a_rescan_maps_every_held_order_against_one_read_of_listings_and_rules(
        loop: Loop, monkeypatch: object) -> None:
    """Adding the rule a thousand held orders wait for releases them all; the store's
    listings and rules are read once per chunk of held orders, not once per order."""
    from dropstream.orders import holds

    monkeypatch.setattr(holds, "RESCAN_CHUNK", 2)  # type: ignore[attr-defined]
    held = [loop.shop.create_order([{"sku": sku, "quantity": 1}], shipping_method="Overnight Air")
            for sku in ("A", "B", "C")]
    run_until_idle()
    assert {loop.order(external_id).status for external_id in held} == {OrderStatus.ON_HOLD}
    t = loop.tenant
    _add(loop, ShippingRule(provider_id=t.provider.id, merchant_id=t.merchant.id,
                            store_id=t.store.id, store_method="Overnight Air",
                            match_key="overnight air", warehouse_code="EXP"))
    with recorded_statements() as statements:
        run_until_idle()
    reads = [s.split(" FROM ")[1].split()[0] for s in statements
             if s.startswith("SELECT") and " FROM " in s]

    assert {loop.order(external_id).status for external_id in held} == {OrderStatus.AT_WAREHOUSE}
    assert sorted(r for r in reads if r in ("listings", "shipping_rules")) == [
        "listings", "listings", "shipping_rules", "shipping_rules"]
    assert [o["ship_code"] for o in loop.wms.orders] == ["EXP", "EXP", "EXP"]


def test_a_default_rule_catches_every_other_method(loop: Loop) -> None:
    t = loop.tenant
    _add(loop, ShippingRule(provider_id=t.provider.id, merchant_id=t.merchant.id, store_id=t.store.id,
                            store_method="", match_key="", warehouse_code="STD", is_default=True))
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}], shipping_method="Pigeon")
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert loop.wms.orders[0]["ship_code"] == "STD"


def test_an_sku_the_warehouse_does_not_know_is_released_by_a_listing(loop: Loop) -> None:
    loop.wms.known_skus = {"WH-MUG"}  # the warehouse refuses SKUs it does not stock
    external_id = loop.shop.create_order([{"sku": "MUG-RED", "quantity": 2}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.hold_reason is HoldReason.UNKNOWN_SKU
    assert "'MUG-RED'" in order.hold_detail and "lines[0].sku" in order.hold_detail

    t = loop.tenant
    _add(loop, Listing(provider_id=t.provider.id, merchant_id=t.merchant.id, store_id=t.store.id,
                       store_sku="MUG-RED", warehouse_sku="WH-MUG"))
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert [(l["sku"], l["quantity"]) for l in loop.wms.orders[0]["lines"]] == [("WH-MUG", 2)]


def test_a_warehouse_rejecting_an_unknown_sku_holds_the_order(loop: Loop) -> None:
    loop.wms.known_skus = {"KNOWN"}
    external_id = loop.shop.create_order([{"sku": "STRANGE", "quantity": 1}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.ON_HOLD and order.hold_reason is HoldReason.UNKNOWN_SKU
    assert "lines[0].sku" in order.hold_detail


def test_bundles_expand_into_components_and_complete_only_when_all_ship(loop: Loop) -> None:
    t = loop.tenant
    bundle = Listing(provider_id=t.provider.id, merchant_id=t.merchant.id, store_id=t.store.id,
                     store_sku="GIFT-BOX", warehouse_sku=None)
    bundle.components = [
        ListingComponent(provider_id=t.provider.id, merchant_id=t.merchant.id, warehouse_sku="SOAP", quantity=2),
        ListingComponent(provider_id=t.provider.id, merchant_id=t.merchant.id, warehouse_sku="TOWEL", quantity=1),
    ]
    _add(loop, bundle)
    external_id = loop.shop.create_order([{"sku": "GIFT-BOX", "quantity": 3}])
    run_until_idle()
    wms_order = loop.wms.orders[0]
    assert [(l["sku"], l["quantity"]) for l in wms_order["lines"]] == [("SOAP", 6), ("TOWEL", 3)]

    soap, towel = (l["reference"] for l in wms_order["lines"])
    loop.wms.ship(wms_order["reference"], {soap: 6})  # soap only: no complete box yet
    loop.poll()
    assert loop.shop.shipments == {}
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE

    loop.wms.ship(wms_order["reference"], {towel: 2})  # two complete boxes
    loop.poll()
    [posted] = loop.shop.shipments.values()
    assert posted["lines"] == [("1", 2)]
    assert loop.order(external_id).status is OrderStatus.PARTIALLY_SHIPPED

    loop.wms.ship(wms_order["reference"])
    loop.poll()
    assert loop.order(external_id).status is OrderStatus.SHIPPED


def test_a_zero_quantity_line_holds_the_order(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 0}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.hold_reason is HoldReason.INVALID_QUANTITY
    assert "lines[0].quantity" in order.hold_detail


def test_an_address_missing_its_street_is_held(loop: Loop) -> None:
    from dropstream.testing.reference import default_address

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}], address={**default_address(), "street1": ""})
    run_until_idle()
    order = loop.order(external_id)
    assert order.hold_reason is HoldReason.INVALID_ADDRESS
    assert "shipping_addresses[0].street1" in order.hold_detail


def _open_alerts() -> list:
    from sqlalchemy import select

    from dropstream.alerts.models import Alert

    return db.session.scalars(select(Alert).where(Alert.resolved_at.is_(None))).all()
