"""Posting shipments and statuses over real HTTP against the sandbox: the right address, lines,
tracking and carrier; never twice, even when an answer was lost; the status set only when
BigCommerce did not move it; the sent status (and switching it off)."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bigcommerce_support import add_products, app, connector, sandbox, shop
from tests.conftest import _schema, app_config, database_url

from dropstream.connectors.base import RejectedError, TransientError
from dropstream.connectors.types import FulfillmentData, FulfillmentLine
from dropstream_bigcommerce import status_checks
from dropstream_bigcommerce.runtime import runtime
from dropstream_bigcommerce.sandbox.testing import SandboxStore


def _two_address_order(shop: SandboxStore) -> tuple[int, Any]:
    try:
        shop.sandbox.inventory_level(shop.hash, "A")
    except KeyError:
        add_products(shop, ("A", "product"), ("B", "product"))
    home = {
        "first_name": "Ada",
        "last_name": "L",
        "street_1": "1 Main",
        "city": "Austin",
        "zip": "78751",
        "country_iso2": "US",
        "shipping_method": "Free Shipping",
    }
    office = {**home, "street_1": "2 Office", "shipping_method": "Express"}
    order_id = shop.sandbox.create_order(
        shop.hash,
        shipping_addresses=[home, office],
        lines=[{"sku": "A", "quantity": 3}, {"sku": "B", "quantity": 1, "address_index": 1}],
    )
    return order_id, connector(shop).fetch_order(str(order_id))


def _fulfillment(order: Any, sku: str, quantity: int, key: str, **fields: Any) -> FulfillmentData:
    line = next(l for l in order.lines if l.sku == sku)
    return FulfillmentData(
        order_external_id=order.external_id,
        destination_external_id=line.destination_id,
        key=key,
        lines=(FulfillmentLine(line.external_id, quantity),),
        **fields,
    )


def _methods(shop: SandboxStore, since: int = 0) -> list[tuple[str, str]]:
    return [
        (e["method"], e["path"].split(f"/stores/{shop.hash}")[1])
        for e in shop.sandbox.call_log(shop.hash)[since:]
    ]


def test_a_shipment_goes_on_its_address_with_tracking_and_carrier(
    app: Any, shop: SandboxStore
) -> None:
    order_id, order = _two_address_order(shop)
    before = len(shop.sandbox.call_log(shop.hash))

    result = connector(shop).post_fulfillment(
        _fulfillment(
            order,
            "A",
            2,
            "ds-shipment-1",
            tracking_number=" 1Z999AA10123456784 ",
            carrier="UPS",
            shipping_method="UPS Ground",
            first_attempt=True,
        )
    )

    assert result.created
    [posted] = shop.sandbox.get_order(shop.hash, order_id)["shipments"]
    line_a = next(l for l in order.lines if l.sku == "A")
    assert posted["id"] == int(result.external_id)
    assert posted["order_address_id"] == int(line_a.destination_id)
    assert (
        posted["items"][0]["order_product_id"] == int(line_a.external_id)
        and posted["items"][0]["quantity"] == 2
    )
    assert (posted["tracking_number"], posted["shipping_provider"], posted["tracking_carrier"]) == (
        "1Z999AA10123456784",
        "ups",
        "ups",
    )
    assert posted["shipping_method"] == "UPS Ground" and "ds-shipment-1" in posted["comments"]
    assert posted["generated_tracking_link"]
    # First attempt: no look-up, no read: one call (the status is checked by the next sweep).
    assert _methods(shop, before) == [("POST", f"/v2/orders/{order_id}/shipments")]
    assert shop.sandbox.get_order(shop.hash, order_id)["status_id"] == 3  # partially shipped


def test_an_answer_lost_after_the_shipment_was_made_never_makes_a_second(
    app: Any, shop: SandboxStore
) -> None:
    order_id, order = _two_address_order(shop)
    fulfillment = _fulfillment(
        order, "B", 1, "ds-shipment-7", tracking_number="TRK7", carrier="dhl", first_attempt=True
    )
    shop.sandbox.inject(
        "reset_after", store_hash=shop.hash, path_contains="/shipments", method="POST"
    )
    with pytest.raises(TransientError):
        connector(shop).post_fulfillment(fulfillment)  # made, but we never heard

    retry = FulfillmentData(**{**fulfillment.__dict__, "first_attempt": False})
    again = connector(shop).post_fulfillment(retry)

    shipments_made = shop.sandbox.get_order(shop.hash, order_id)["shipments"]
    assert len(shipments_made) == 1 and not again.created
    assert again.external_id == str(shipments_made[0]["id"])
    assert (shipments_made[0]["shipping_provider"], shipments_made[0]["tracking_carrier"]) == (
        "",
        "dhl",
    )


def _sweep(c: Any) -> None:
    page = c.fetch_orders(
        json.dumps({"since": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()})
    )
    while page.more:
        page = c.fetch_orders(page.cursor)


def test_the_next_sweep_sets_the_status_only_when_bigcommerce_did_not(
    app: Any, shop: SandboxStore
) -> None:
    order_id, order = _two_address_order(shop)
    c = connector(shop)
    c.post_fulfillment(_fulfillment(order, "A", 3, "k1", first_attempt=True))
    c.post_fulfillment(_fulfillment(order, "B", 1, "k2", first_attempt=True))
    assert shop.sandbox.get_order(shop.hash, order_id)["status_id"] == 2
    assert runtime().status_checks.pending(shop.hash).keys() == {order_id}

    _sweep(c)  # lists the order (it changed): BigCommerce moved it, nothing to send
    assert not [m for m, _path in _methods(shop) if m == "PUT"]
    assert runtime().status_checks.pending(shop.hash) == {}

    # A store that does not move it (here: the merchant put it back by hand) gets it set...
    shop.sandbox.set_order_status(shop.hash, order_id, 9)
    runtime().status_checks.add(shop.hash, order_id)
    _sweep(c)
    assert shop.sandbox.get_order(shop.hash, order_id)["status_id"] == 2
    # ...but never over a person's refund or cancellation.
    shop.sandbox.set_order_status(shop.hash, order_id, 4)
    runtime().status_checks.add(shop.hash, order_id)
    _sweep(c)
    assert shop.sandbox.get_order(shop.hash, order_id)["status_id"] == 4


def test_a_check_no_sweep_met_is_read_on_its_own(
    app: Any, shop: SandboxStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id, order = _two_address_order(shop)
    c = connector(shop)
    c.post_fulfillment(_fulfillment(order, "A", 3, "k1", first_attempt=True))
    shop.sandbox.set_order_status(shop.hash, order_id, 9)  # as if BigCommerce had not moved it
    monkeypatch.setattr(status_checks, "OVERDUE", -1.0)

    c.fetch_orders(json.dumps({"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}))

    assert shop.sandbox.get_order(shop.hash, order_id)["status_id"] == 3
    assert runtime().status_checks.pending(shop.hash) == {}


def test_a_check_for_an_order_with_nothing_shipped_never_moves_it(
    app: Any, shop: SandboxStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check outlives its order's id: a store connected again to a fresh database on the
    same Redis (the sandboxes number orders from 100 again) meets old checks for its new
    orders. Moving one just placed to Partially Shipped would hide it from the import."""
    order_id, _order = _two_address_order(shop)
    runtime().status_checks.add(shop.hash, order_id)  # left by an earlier life of the store
    monkeypatch.setattr(status_checks, "OVERDUE", -1.0)
    since = len(shop.sandbox.call_log(shop.hash))

    connector(shop).fetch_orders(json.dumps({"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}))

    assert shop.sandbox.get_order(shop.hash, order_id)["status_id"] == 11
    assert not [m for m, _path in _methods(shop, since) if m == "PUT"]
    assert runtime().status_checks.pending(shop.hash) == {}  # settled: nothing to confirm
    assert connector(shop).fetch_order(str(order_id)) is not None  # still imported


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tracking_number": "X" * 51}, "tracking_number"),
        ({"destination_external_id": "not-an-id"}, "destination_external_id"),
        ({"lines": (FulfillmentLine("nope", 1),)}, "lines"),
    ],
)
def test_a_shipment_bigcommerce_would_refuse_is_refused_before_any_call(
    app: Any, shop: SandboxStore, change: dict[str, Any], field: str
) -> None:
    _order_id, order = _two_address_order(shop)
    before = len(shop.sandbox.call_log(shop.hash))
    fulfillment = FulfillmentData(
        **{**_fulfillment(order, "A", 1, "k", first_attempt=True).__dict__, **change}
    )
    with pytest.raises(RejectedError) as refused:
        connector(shop).post_fulfillment(fulfillment)
    assert refused.value.field == field and len(shop.sandbox.call_log(shop.hash)) == before


def test_bigcommerces_own_refusal_names_the_reason(app: Any, shop: SandboxStore) -> None:
    _order_id, order = _two_address_order(shop)
    with pytest.raises(RejectedError, match="left to ship"):
        connector(shop).post_fulfillment(
            _fulfillment(order, "A", 9, "too-many", first_attempt=True)
        )


def test_the_sent_status_is_set_or_left_alone_by_setting(app: Any, shop: SandboxStore) -> None:
    order_id, _order = _two_address_order(shop)
    connector(shop).mark_order_status(str(order_id), "sent")
    assert shop.sandbox.get_order(shop.hash, order_id)["status_id"] == 9
    assert _methods(shop)[-1] == ("PUT", f"/v2/orders/{order_id}")

    other, _ = _two_address_order(shop)
    calls = len(shop.sandbox.call_log(shop.hash))
    for off in (None, 0):
        connector(shop, sent_status_id=off).mark_order_status(str(other), "sent")
    assert shop.sandbox.get_order(shop.hash, other)["status_id"] == 11
    assert len(shop.sandbox.call_log(shop.hash)) == calls  # switched off: no call at all
