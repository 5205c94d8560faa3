"""Bad input the core must take whatever the connector: nothing is cut to fit, nothing crashes
the import, and every outcome names its code and field (the hostile BigCommerce catalogue runs
the same cases end to end over HTTP; these pin each rule on the reference connectors)."""

from __future__ import annotations

from dropstream.catalog.models import Listing, ListingComponent
from dropstream.extensions import db
from dropstream.orders import actions
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.testing.jobs import run_until_idle
from dropstream.testing.reference import default_address
from tests.pipeline.conftest import Loop


def test_an_order_with_nothing_to_ship_says_why(loop: Loop) -> None:
    digital = loop.shop.create_order([{"sku": "EBOOK", "kind": "digital"}])
    gifts = loop.shop.create_order([{"sku": "", "kind": "gift_certificate"}])
    both = loop.shop.create_order([{"sku": "EBOOK", "kind": "digital"},
                                   {"sku": "", "kind": "gift_certificate"}])
    run_until_idle()
    for external_id, code in ((digital, "digital_only"), (gifts, "gift_certificate_only"),
                              (both, "nothing_to_ship")):
        order = loop.order(external_id)
        [skipped] = [e for e in order.events if e.kind == "skipped"]
        assert order.status is OrderStatus.SKIPPED and skipped.detail == {"code": code, "field": "lines"}


def test_a_warehouse_refusal_names_the_orders_own_line_and_address(loop: Loop) -> None:
    loop.wms.known_skus = {"A"}
    # The warehouse order holds the physical lines only: its lines[1] is the order's lines[2].
    external_id = loop.shop.create_order([{"sku": "EBOOK", "kind": "digital"}, {"sku": "A"},
                                          {"sku": "STRANGE"}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.hold_reason is HoldReason.UNKNOWN_SKU
    assert order.hold_detail.startswith("lines[2].sku: reference WMS: unknown SKU 'STRANGE'")
