"""A store's inventory: what was last pushed, what waits, and what was skipped or failed and why."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from sqlalchemy import func, select

from dropstream.console.access import bp, scope
from dropstream.console.stores import load_store
from dropstream.extensions import db
from dropstream.inventory.models import InventoryItem, ItemState
from dropstream.stores.models import Channel

#: What each skip or failure reason means, and what to do about it.
REASONS = {
    "tracking_off": "Inventory tracking is off for this product or variant in the store, so a "
    "pushed quantity would not take effect. Turn tracking on in the store; the next full sync "
    "pushes it.",
    "unknown_sku": "No product or variant in the store has this SKU. Give the product this SKU, "
    "or add a listing if the store knows it by another one.",
    "no_result": "The store's connector returned no outcome for this SKU; it is pushed again on "
    "the next run.",
}
PAGE_SIZE = 200


@bp.get("/stores/<int:store_id>/inventory")
def inventory(store_id: int) -> Any:
    store = load_store(store_id)
    state = request.args.get("state", "")
    statement = scope().select(InventoryItem, InventoryItem.store_id == store.id).order_by(
        InventoryItem.state, InventoryItem.store_sku)
    if state in {s.value for s in ItemState}:
        statement = statement.where(InventoryItem.state == state)
    items = db.session.scalars(statement.limit(PAGE_SIZE)).all()
    counts = dict(db.session.execute(
        select(InventoryItem.state, func.count()).where(
            scope().criteria(InventoryItem), InventoryItem.store_id == store.id)
        .group_by(InventoryItem.state)).all())
    return render_template("console/inventory.html", store=store, items=items, counts=counts,
                           states=list(ItemState), state=state, reasons=REASONS,
                           channel=store.channel(Channel.INVENTORY))
