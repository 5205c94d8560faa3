"""Pushing warehouse stock to BigCommerce through the Inventory API's absolute adjustments.

Each SKU is resolved through the catalog index to how its product tracks inventory: by variant
(written by ``variant_id``), by product (``product_id``), or not at all (skipped,
``tracking_off``: BigCommerce would ignore the number). SKUs the store does not have are skipped
``unknown_sku``. The rest go in batches of at most 2,000 items, one location per request, each
batch only after the last one answered. BigCommerce answers a bad item with a 422 for the whole
batch naming the item: that item is reported ``failed`` with BigCommerce's words, and the
rest of the batch is sent again without it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from dropstream.connectors.base import RejectedError
from dropstream.connectors.types import InventoryOutcome, InventoryResult, InventoryUpdate
from dropstream_bigcommerce.catalog_index import CatalogIndex, CatalogStore, Item
from dropstream_bigcommerce.client import BigCommerceClient

BATCH = 2000
MAX_QUANTITY = 2_147_483_647
REASON = "DropStream: warehouse stock"
#: Re-sends of one batch after BigCommerce refused an item in it.
MAX_ROUNDS = 20
_IDENTITY = re.compile(r"\b(variant_id|product_id|sku)\s*[:=]?\s*['\"]?([\w.\-]+)", re.IGNORECASE)
_INDEX = re.compile(r"\bitems[.\[](\d+)")


def push(
    client: BigCommerceClient,
    catalog: CatalogStore,
    settings: dict[str, Any],
    updates: Sequence[InventoryUpdate],
) -> list[InventoryResult]:
    index = CatalogIndex(catalog, client)
    found = index.lookup({u.sku for u in updates})
    results: dict[str, InventoryResult] = {}
    to_send: list[tuple[InventoryUpdate, Item]] = []
    for update in updates:
        item = found.get(update.sku)
        if item is None:
            results[update.sku] = InventoryResult(
                update.sku,
                InventoryOutcome.SKIPPED,
                "unknown_sku",
                "No product or variant in the BigCommerce store has this SKU.",
            )
        elif item.tracking == "none":
            results[update.sku] = InventoryResult(
                update.sku,
                InventoryOutcome.SKIPPED,
                "tracking_off",
                "Inventory tracking is off for this product in BigCommerce; turn it on "
                "(by product or by variant) for the stock to be updated.",
            )
        else:
            to_send.append((update, item))
    location = int(settings.get("location_id") or 1)
    for start in range(0, len(to_send), BATCH):
        results.update(_send(client, index, location, to_send[start : start + BATCH]))
    return [results[u.sku] for u in updates]


def _send(
    client: BigCommerceClient,
    index: CatalogIndex,
    location: int,
    batch: list[tuple[InventoryUpdate, Item]],
) -> dict[str, InventoryResult]:
    results: dict[str, InventoryResult] = {}
    pending = list(batch)
    for _ in range(MAX_ROUNDS):
        if not pending:
            break
        items = [
            {
                "location_id": location,
                **item.identity(),
                "quantity": max(0, min(update.quantity, MAX_QUANTITY)),
            }
            for update, item in pending
        ]
        try:
            client.put("/v3/inventory/adjustments/absolute", {"reason": REASON, "items": items})
        except RejectedError as error:
            refused = _refused(error, pending)
            if not refused:
                refused = list(range(len(pending)))  # BigCommerce did not say which: all failed
            for position in refused:
                update, _item = pending[position]
                results[update.sku] = InventoryResult(
                    update.sku, InventoryOutcome.FAILED, "rejected", error.message
                )
            index.forget(pending[p][0].sku for p in refused)  # read it afresh next time
            pending = [entry for p, entry in enumerate(pending) if p not in set(refused)]
            continue
        for update, _item in pending:
            results[update.sku] = InventoryResult(update.sku, InventoryOutcome.PUSHED)
        pending = []
    for update, _item in pending:
        results[update.sku] = InventoryResult(
            update.sku, InventoryOutcome.FAILED, "rejected", "BigCommerce kept refusing this batch."
        )
    return results


def _refused(error: RejectedError, pending: list[tuple[InventoryUpdate, Item]]) -> list[int]:
    """Positions of the items a 422 names: by ``items.N`` error keys, or by the identity in
    its title ("Item with variant_id 106 is tracked by product...")."""
    positions = sorted(
        {
            int(n)
            for n in _INDEX.findall(f"{error.field or ''} {error.message}")
            if int(n) < len(pending)
        }
    )
    if positions:
        return positions
    for kind, value in _IDENTITY.findall(error.message):
        kind = kind.lower()
        for position, (update, item) in enumerate(pending):
            identity = {"sku": update.sku, **{k: str(v) for k, v in item.identity().items()}}
            if identity.get(kind) == value and position not in positions:
                positions.append(position)
    return positions
