"""Reading orders over real HTTP against the sandbox: one order completely in one call, the
``/products`` fallback, statuses (monitored, cancelled, other), and the polling sweep with its
cursor, overlap, page continuation, backfill date and webhook repair."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bigcommerce_support import add_products, app, connector, sandbox, shop
from tests.conftest import _schema, app_config, database_url

from dropstream.connectors.base import RemoteNotFound
from dropstream.connectors.types import LineKind
from dropstream_bigcommerce import importing
from dropstream_bigcommerce.hooks import SCOPES
from dropstream_bigcommerce.sandbox.testing import SandboxStore

PUBLIC = "https://127.0.0.1"


def _calls(shop: SandboxStore) -> list[tuple[str, str]]:
    return [
        (entry["method"], entry["path"].split(f"/stores/{shop.hash}")[1])
        for entry in shop.sandbox.call_log(shop.hash)
    ]


def _rich_order(shop: SandboxStore) -> int:
    sandbox = shop.sandbox
    add_products(shop, ("TEE", "product"), ("MUG", "product"), ("PART", "product"))
    sandbox.add_product(
        shop.hash,
        name="Hoodie",
        inventory_tracking="variant",
        variants=[
            {"sku": "HOOD-S", "label": "S", "option": "Size", "inventory_level": 5},
            {"sku": "HOOD-M", "label": "M", "option": "Size", "inventory_level": 5},
        ],
    )
    sandbox.add_product(shop.hash, name="E-book", sku="EBOOK", type="digital")
    home = {
        "first_name": "Zoë",
        "last_name": "Ødegård",
        "street_1": "Bahnhofstr. 1",
        "city": "Zürich",
        "zip": "8001",
        "country": "Switzerland",
        "country_iso2": "CH",
        "shipping_method": "Free Shipping",
    }
    office = {**home, "street_1": "1 Office Park", "shipping_method": "UPS® Next Day 🚀"}
    return sandbox.create_order(
        shop.hash,
        shipping_addresses=[home, office],
        lines=[
            {"sku": "TEE", "quantity": 2},
            {
                "sku": "MUG",
                "quantity": 1,
                "address_index": 1,
                "bundle": [{"sku": "PART", "quantity": 2}],
            },
            {"sku": "HOOD-M", "quantity": 1},
            {"sku": "EBOOK", "quantity": 1},
            {"type": "giftcertificate", "name": "Gift certificate", "price": "25.00"},
        ],
        custom_products=[{"name": "Engraving", "quantity": 1, "price": "5.00"}],
        customer_message="Leave at the door — ドア",
    )


def test_an_order_is_read_completely_in_one_call(app: Any, shop: SandboxStore) -> None:
    order_id = _rich_order(shop)

    order = connector(shop).fetch_order(str(order_id))

    assert _calls(shop) == [("GET", f"/v2/orders/{order_id}")]
    assert order is not None and order.external_id == str(order_id) and not order.cancelled
    assert order.note == "Leave at the door — ドア" and order.placed_at.tzinfo is not None
    home, office = order.destinations
    assert (home.shipping_method, office.shipping_method) == ("Free Shipping", "UPS® Next Day 🚀")
    assert home.address.name == "Zoë Ødegård" and home.address.country_code == "CH"
    by_sku = {line.sku: line for line in order.lines}
    assert by_sku["TEE"].destination_id == home.external_id and by_sku["TEE"].quantity == 2
    assert by_sku["MUG"].destination_id == office.external_id
    assert by_sku["PART"].parent_external_id == by_sku["MUG"].external_id
    assert by_sku["HOOD-M"].options == (("Size", "M"),)
    assert by_sku["EBOOK"].kind is LineKind.DIGITAL
    assert [l.kind for l in order.lines if l.name == "Gift certificate"] == [
        LineKind.GIFT_CERTIFICATE
    ]
    assert [l.sku for l in order.lines if l.name == "Engraving"] == [None]  # held by the core


def test_without_embedded_products_every_page_is_read(app: Any, shop: SandboxStore) -> None:
    add_products(shop, *[(f"L-{n}", "product") for n in range(3)])
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": f"L-{n}"} for n in range(3)])
    c = connector(shop)
    with c.client() as client:
        bare = client.get(f"/v2/orders/{order_id}")  # consignments as a link, products as a link
        order = importing._read(client, c.settings, bare)
    assert order is not None and [l.sku for l in order.lines] == ["L-0", "L-1", "L-2"]
    assert [path for _, path in _calls(shop)] == [
        f"/v2/orders/{order_id}",
        f"/v2/orders/{order_id}/products",
        f"/v2/orders/{order_id}/shipping_addresses",
    ]


def test_statuses_decide_what_comes_back(app: Any, shop: SandboxStore) -> None:
    add_products(shop, ("S-1", "product"))
    pending = shop.sandbox.create_order(shop.hash, lines=[{"sku": "S-1"}], status_id=7)
    cancelled = shop.sandbox.create_order(shop.hash, lines=[{"sku": "S-1"}])
    shop.sandbox.set_order_status(shop.hash, cancelled, 5)
    custom = shop.sandbox.create_order(shop.hash, lines=[{"sku": "S-1"}], status_id=12)

    assert connector(shop).fetch_order(str(pending)) is None  # Awaiting Payment: not ours yet
    data = connector(shop).fetch_order(str(cancelled))
    assert data is not None and data.cancelled
    # A store monitoring a custom workflow's status.
    assert connector(shop, monitored_status_id=12).fetch_order(str(custom)) is not None
    with pytest.raises(RemoteNotFound):
        connector(shop).fetch_order("987654")
    with pytest.raises(RemoteNotFound):
        connector(shop).fetch_order("12; DROP")


def _sweep(c: Any, cursor: str | None) -> tuple[list[str], list[str], str | None]:
    imported, cancelled = [], []
    page = c.fetch_orders(cursor)
    while True:
        imported += [o.external_id for o in page.orders if not o.cancelled]
        cancelled += [o.external_id for o in page.orders if o.cancelled]
        if not page.more:
            return imported, cancelled, page.cursor
        page = c.fetch_orders(page.cursor)


def test_the_sweep_finds_new_and_cancelled_orders_and_moves_its_cursor(
    app: Any, shop: SandboxStore
) -> None:
    add_products(shop, ("W-1", "product"))
    first = shop.sandbox.create_order(shop.hash, lines=[{"sku": "W-1"}])
    shop.sandbox.create_order(shop.hash, lines=[{"sku": "W-1"}], status_id=1)  # pending: skipped
    c = connector(shop, public_base_url=PUBLIC)

    imported, cancelled, cursor = _sweep(c, None)
    assert imported == [str(first)] and cancelled == []
    shop.sandbox.set_order_status(shop.hash, first, 5)
    second = shop.sandbox.create_order(shop.hash, lines=[{"sku": "W-1"}])

    imported, cancelled, cursor = _sweep(c, cursor)

    assert str(second) in imported and cancelled == [str(first)]
    # One list call per page: lines come embedded, nothing is read per order.
    assert all(path == "/v2/orders" for _, path in _calls(shop) if path.startswith("/v2/orders"))
    since = datetime.fromisoformat(json.loads(cursor)["since"])
    assert since >= datetime.now(UTC) - timedelta(minutes=1)


def test_the_sweep_reads_a_little_before_its_cursor(app: Any, shop: SandboxStore) -> None:
    add_products(shop, ("O-1", "product"))
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": "O-1"}])
    modified = datetime.now(UTC)
    cursor = json.dumps({"since": (modified + timedelta(seconds=30)).isoformat()})
    # An order committed just before the cursor's time is still seen (the overlap window).
    imported, _, _ = _sweep(connector(shop, public_base_url=PUBLIC), cursor)
    assert imported == [str(order_id)]


def test_a_full_page_continues_with_the_next(app: Any, shop: SandboxStore) -> None:
    add_products(shop, ("P-1", "product"))
    ids = [shop.sandbox.create_order(shop.hash, lines=[{"sku": "P-1"}]) for _ in range(255)]
    c = connector(shop, public_base_url=PUBLIC)

    page = c.fetch_orders(None)
    assert page.more and len(page.orders) == 250
    imported, _, _ = _sweep(c, page.cursor)

    assert set(map(str, ids)) <= {o.external_id for o in page.orders} | set(imported)


def test_backfill_starts_at_the_chosen_date(app: Any, shop: SandboxStore) -> None:
    add_products(shop, ("B-1", "product"))
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": "B-1"}])
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(days=60)).isoformat()

    assert _sweep(connector(shop, backfill_from=later), None)[0] == []
    assert _sweep(connector(shop, backfill_from=earlier), None)[0] == [str(order_id)]


def test_a_sweep_switches_deactivated_webhooks_back_on(app: Any, shop: SandboxStore) -> None:
    c = connector(shop, public_base_url=PUBLIC)
    c.setup_checks()  # registers them, with a secret
    c = connector(
        shop,
        {**c.context.credentials, "webhook_secret": c.webhook_secret()},
        public_base_url=PUBLIC,
    )
    assert shop.sandbox.deactivate_hooks(shop.hash) == len(SCOPES)

    c.fetch_orders(json.dumps({"since": datetime.now(UTC).isoformat()}))

    assert all(hook["is_active"] for hook in shop.sandbox.hooks(shop.hash))


def test_an_order_that_cannot_be_mapped_is_kept_unreadable_not_lost(
    app: Any, shop: SandboxStore
) -> None:
    from dropstream.connectors.base import UnreadableOrderError

    add_products(shop, ("U-1", "product"))
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": "U-1"}])
    c = connector(shop)
    with c.client() as client:
        order = client.get(f"/v2/orders/{order_id}", importing.INCLUDES)
        order["consignments"]["shipping"][0]["line_items"][0]["quantity"] = "lots"
        with pytest.raises(UnreadableOrderError) as unreadable:
            importing._read(client, c.settings, order)
    kept = unreadable.value.order
    assert kept.external_id == str(order_id) and "quantity" in kept.error
    assert kept.raw["id"] == order_id  # the store's payload goes with it, for Reprocess


def test_webhooks_left_at_an_old_address_are_removed(app: Any, shop: SandboxStore) -> None:
    old = connector(shop, public_base_url="https://old.example")
    old.setup_checks()
    moved = connector(
        shop,
        {**old.context.credentials, "webhook_secret": old.webhook_secret()},
        public_base_url=PUBLIC,
    )
    moved.setup_checks()
    assert {h["destination"] for h in shop.sandbox.hooks(shop.hash)} == {
        f"{PUBLIC}/connectors/bigcommerce/webhooks"
    }


def test_orders_queued_up_are_read_in_one_call_per_span_of_ids(
    app: Any, shop: SandboxStore
) -> None:
    add_products(shop, ("B-1", "product"))
    wanted = [
        shop.sandbox.create_order(shop.hash, lines=[{"sku": "B-1", "quantity": n}])
        for n in (1, 2, 3)
    ]
    pending = shop.sandbox.create_order(shop.hash, lines=[{"sku": "B-1"}], status_id=7)
    archived = shop.sandbox.create_order(shop.hash, lines=[{"sku": "B-1"}])
    shop.sandbox.archive_order(shop.hash, archived)
    neighbour = shop.sandbox.create_order(shop.hash, lines=[{"sku": "B-1"}])
    last = shop.sandbox.create_order(shop.hash, lines=[{"sku": "B-1", "quantity": 4}])
    asked = [str(i) for i in (*wanted, pending, archived, last)] + ["987654", "12; DROP"]
    before = len(_calls(shop))

    found = connector(shop).fetch_orders_by_id(asked)

    calls = _calls(shop)[before:]
    assert [path for _, path in calls] == ["/v2/orders", "/v2/orders"]  # two spans of ids
    assert set(found) == {str(i) for i in (*wanted, pending, last)}
    assert found[str(pending)] is None  # not at the monitored status, as fetch_order says
    for order_id in (*wanted, last):  # exactly what reading each alone gives
        assert found[str(order_id)] == connector(shop).fetch_order(str(order_id))
    assert [found[str(i)].lines[0].quantity for i in (*wanted, last)] == [1, 2, 3, 4]
    assert str(neighbour) not in found  # read in the span, but nobody asked for it
    # Left out, for fetch_order to say what became of them: archived, unknown, not an id.


def test_spans_of_ids_never_hold_more_than_a_page() -> None:
    assert importing._spans([1, 2, 250, 251, 600], 250) == [(1, 250), (251, 251), (600, 600)]
    assert importing._spans([], 250) == []
