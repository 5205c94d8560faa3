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


def _reprocess(loop: Loop, external_id: str) -> None:
    actions.reprocess(db.session, loop.order(external_id), actor="user:1")
    db.session.commit()
    run_until_idle()


def test_a_street_too_long_for_the_warehouse_is_refused_whole_not_cut(loop: Loop) -> None:
    street = "Ł" * 300
    external_id = loop.shop.create_order([{"sku": "A"}],
                                         address={**default_address(), "street1": street})
    run_until_idle()
    order = loop.order(external_id)
    assert (order.status, order.error_code) == (OrderStatus.ERROR, "import_failed")
    assert order.error_message.startswith("shipping_addresses[0].street1: 300 characters")
    assert loop.wms.orders == []

    loop.shop.orders[external_id]["destinations"]["1"]["address"]["street1"] = "1 Main St"
    _reprocess(loop, external_id)
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert loop.wms.orders[0]["ship_to"].street1 == "1 Main St"


def test_a_three_letter_country_is_never_cut_to_two(loop: Loop) -> None:
    austria = loop.shop.create_order([{"sku": "A"}],
                                     address={**default_address(), "country_code": "AUT"})
    run_until_idle()
    order = loop.order(austria)
    assert (order.status, order.error_code) == (OrderStatus.ERROR, "import_failed")
    assert order.error_message.startswith("shipping_addresses[0].country_code: 'AUT' is not")
    assert loop.wms.orders == []


def test_a_country_code_that_is_not_two_letters_holds_the_order(loop: Loop) -> None:
    odd = loop.shop.create_order([{"sku": "A"}],
                                 address={**default_address(), "country_code": "g1"})
    run_until_idle()
    held = loop.order(odd)
    assert held.hold_reason is HoldReason.INVALID_ADDRESS
    assert held.hold_detail.startswith("shipping_addresses[0].country_code: 'G1' is not")
    assert loop.wms.orders == []


def test_a_quantity_beyond_a_database_integer_is_refused_with_its_value(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 10**10}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.error_message.startswith("lines[0].quantity: 10,000,000,000 is more than")


def test_a_bundle_whose_components_overflow_is_held(loop: Loop) -> None:
    t = loop.tenant
    box = Listing(provider_id=t.provider.id, merchant_id=t.merchant.id, store_id=t.store.id,
                  store_sku="BOX", warehouse_sku=None)
    box.components = [ListingComponent(provider_id=t.provider.id, merchant_id=t.merchant.id,
                                       warehouse_sku="SOAP", quantity=2)]
    db.session.add(box)
    db.session.commit()
    external_id = loop.shop.create_order([{"sku": "BOX", "quantity": 1_500_000_000}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.hold_reason is HoldReason.INVALID_QUANTITY
    assert order.hold_detail.startswith("lines[0].quantity: 1,500,000,000 × 2 units")


def test_half_an_emoji_and_nul_bytes_are_stored_and_sent(loop: Loop) -> None:
    address = {**default_address(), "name": "Ada \ud83d Love\x00lace"}
    external_id = loop.shop.create_order([{"sku": "A", "name": "Mug \udc00"}], address=address)
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert loop.wms.orders[0]["ship_to"].name == "Ada \ufffd Lovelace"


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
        assert order.status is OrderStatus.SKIPPED
        assert skipped.detail == {"code": code, "field": "lines"}


def test_a_warehouse_refusal_names_the_orders_own_line_and_address(loop: Loop) -> None:
    loop.wms.known_skus = {"A"}
    # The warehouse order holds the physical lines only: its lines[1] is the order's lines[2].
    external_id = loop.shop.create_order([{"sku": "EBOOK", "kind": "digital"}, {"sku": "A"},
                                          {"sku": "STRANGE"}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.hold_reason is HoldReason.UNKNOWN_SKU
    assert order.hold_detail.startswith("lines[2].sku: reference WMS: unknown SKU 'STRANGE'")


def test_a_changed_copy_that_cannot_be_read_stops_a_held_order(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A"}], shipping_method="Pigeon")
    run_until_idle()
    assert loop.order(external_id).hold_reason is HoldReason.UNMAPPED_SHIPPING_METHOD

    loop.shop.orders[external_id]["lines"][0]["sku"] = "S" * 300  # edited in the store
    loop.shop.set_status(external_id, "awaiting_fulfillment")
    loop.poll()
    order = loop.order(external_id)
    assert (order.status, order.error_code) == (OrderStatus.ERROR, "import_failed")
    assert order.error_message.startswith("lines[0].sku: 300 characters")
    events = len(order.events)
    loop.poll()  # read again: the same problem says nothing new
    assert len(loop.order(external_id).events) == events


def test_a_hold_quotes_the_stores_text_on_one_line(loop: Loop) -> None:
    name = "Engr\u202eaving\r\n" + "x" * 100  # a right-to-left override, a line break, length
    external_id = loop.shop.create_order([{"sku": "", "name": name}])
    run_until_idle()
    detail = loop.order(external_id).hold_detail
    assert detail.startswith("lines[0].sku: “Engr aving xxx") and "…” has no SKU" in detail
    assert not any(c in detail for c in "\u202e\r\n")
