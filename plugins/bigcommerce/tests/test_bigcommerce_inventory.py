"""Pushing stock over real HTTP against the sandbox: identity by tracking mode, skips with their
reason, a refused item reported without losing the rest, batches of at most 2,000, and a catalog
index that is not read whole on every push."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from bigcommerce_support import add_products, app, connector, sandbox, shop
from tests.conftest import _schema, app_config, database_url

from dropstream.connectors.types import InventoryOutcome, InventoryUpdate
from dropstream_bigcommerce.catalog_index import LOOK_EVERY, Item, Meta
from dropstream_bigcommerce.runtime import runtime
from dropstream_bigcommerce.sandbox.testing import SandboxStore


def _paths(shop: SandboxStore, since: int = 0) -> list[tuple[str, str, dict[str, list[str]]]]:
    return [
        (e["method"], e["path"].split(f"/stores/{shop.hash}")[1], parse_qs(e["query"]))
        for e in shop.sandbox.call_log(shop.hash)[since:]
    ]


def test_each_item_is_written_by_its_tracking_mode_or_skipped_with_a_reason(
    app: Any, shop: SandboxStore
) -> None:
    add_products(shop, ("SIMPLE", "product"), ("OFF", "none"))
    shop.sandbox.add_product(
        shop.hash,
        name="Hoodie",
        inventory_tracking="variant",
        variants=[
            {"sku": "HOOD-S", "label": "S", "inventory_level": 1},
            {"sku": "HOOD-M", "label": "M", "inventory_level": 1},
        ],
    )
    shop.sandbox.add_product(
        shop.hash,
        name="Poster",
        sku="POSTER",
        inventory_tracking="product",
        variants=[{"sku": "POSTER-A2", "label": "A2"}],
    )

    results = connector(shop).push_inventory(
        [
            InventoryUpdate("SIMPLE", 7),
            InventoryUpdate("HOOD-M", 3),
            InventoryUpdate("OFF", 9),
            InventoryUpdate("NOPE", 1),
            InventoryUpdate("POSTER", 4),
            InventoryUpdate("HOOD-S", -5),
        ]
    )

    outcome = {r.sku: (r.outcome, r.reason) for r in results}
    assert [r.sku for r in results] == ["SIMPLE", "HOOD-M", "OFF", "NOPE", "POSTER", "HOOD-S"]
    assert (
        outcome["SIMPLE"] == outcome["HOOD-M"] == outcome["POSTER"] == (InventoryOutcome.PUSHED, "")
    )
    assert outcome["OFF"] == (InventoryOutcome.SKIPPED, "tracking_off")
    assert outcome["NOPE"] == (InventoryOutcome.SKIPPED, "unknown_sku")
    level = shop.sandbox.inventory_level
    assert (
        level(shop.hash, "SIMPLE"),
        level(shop.hash, "HOOD-M"),
        level(shop.hash, "POSTER"),
        level(shop.hash, "HOOD-S"),
    ) == (7, 3, 4, 0)  # a negative quantity is written as 0
    assert (
        level(shop.hash, "OFF") == 10
        and shop.sandbox.stats(shop.hash)["untracked_inventory_writes"] == 0
    )
    [adjustment] = [p for p in _paths(shop) if p[1] == "/v3/inventory/adjustments/absolute"]
    assert adjustment[0] == "PUT"


def test_an_item_bigcommerce_refuses_fails_with_its_words_and_the_rest_is_written(
    app: Any, shop: SandboxStore
) -> None:
    add_products(shop, ("GOOD-1", "product"), ("GOOD-2", "product"))
    c = connector(shop)
    c.push_inventory([InventoryUpdate("GOOD-1", 1)])  # builds the index
    # A product deleted in the store since the index was built: the index still names it.
    runtime().catalog.update(
        shop.hash,
        {"GONE": Item(987654, None, "product")},
        runtime().catalog.meta(shop.hash) or Meta(0, 0),
    )

    results = {
        r.sku: r
        for r in c.push_inventory(
            [InventoryUpdate("GOOD-1", 5), InventoryUpdate("GONE", 2), InventoryUpdate("GOOD-2", 6)]
        )
    }

    assert (
        results["GONE"].outcome is InventoryOutcome.FAILED and "987654" in results["GONE"].message
    )
    assert results["GOOD-1"].outcome is results["GOOD-2"].outcome is InventoryOutcome.PUSHED
    assert shop.sandbox.inventory_level(shop.hash, "GOOD-2") == 6
    assert runtime().catalog.get(shop.hash, ["GONE"]) == {}  # forgotten, read afresh next time


def test_batches_hold_at_most_2000_items(app: Any, shop: SandboxStore) -> None:
    for start in range(0, 2100, 700):
        for n in range(start, start + 700):
            shop.sandbox.add_product(shop.hash, name=f"P{n}", sku=f"BULK-{n}", inventory_level=1)
    updates = [InventoryUpdate(f"BULK-{n}", n % 50) for n in range(2100)]

    results = connector(shop).push_inventory(updates)

    assert all(r.outcome is InventoryOutcome.PUSHED for r in results) and len(results) == 2100
    adjustments = [p for p in _paths(shop) if p[1] == "/v3/inventory/adjustments/absolute"]
    assert len(adjustments) == 2
    assert shop.sandbox.inventory_level(shop.hash, "BULK-2099") == 2099 % 50


def test_the_catalog_is_read_whole_once_then_trusted_then_only_what_changed(
    app: Any, shop: SandboxStore
) -> None:
    add_products(shop, ("IDX-1", "product"))
    c = connector(shop)
    c.push_inventory([InventoryUpdate("IDX-1", 1)])
    first = _paths(shop)
    assert [q.get("date_modified:min") for m, p, q in first if p == "/v3/catalog/products"] == [
        None
    ]

    add_products(shop, ("IDX-NEW", "none"))
    mark = len(shop.sandbox.call_log(shop.hash))
    warm = c.push_inventory([InventoryUpdate("IDX-1", 2), InventoryUpdate("IDX-NEW", 2)])
    # Trusted for a while: no read at all (the new product is not known yet).
    assert [p for m, p, q in _paths(shop, mark)] == ["/v3/inventory/adjustments/absolute"]
    assert {r.sku: r.reason for r in warm} == {"IDX-1": "", "IDX-NEW": "unknown_sku"}

    meta = runtime().catalog.meta(shop.hash)  # later: the index is due for a look
    runtime().catalog.update(
        shop.hash, {}, Meta(meta.full_at, meta.seen_at - LOOK_EVERY.total_seconds())
    )
    mark = len(shop.sandbox.call_log(shop.hash))
    results = c.push_inventory([InventoryUpdate("IDX-1", 3), InventoryUpdate("IDX-NEW", 3)])

    reads = [q for m, p, q in _paths(shop, mark) if p == "/v3/catalog/products"]
    assert len(reads) == 1 and reads[0].get("date_modified:min")  # only what changed
    assert {r.sku: r.reason for r in results} == {"IDX-1": "", "IDX-NEW": "tracking_off"}
