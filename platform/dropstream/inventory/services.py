"""Inventory back to the store: warehouse stock → available quantity per store SKU → push.

available = on hand − units on this merchant's orders not yet at the warehouse − the store's
safety buffer, never below zero; a bundle's is the fewest complete bundles its components allow.
Only changed quantities are pushed, except in a full reconciliation, which pushes everything
(and retries items skipped before, e.g. after tracking was switched on). Every item's outcome is
kept: pushed, or skipped/failed with the connector's reason.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, selectinload

from dropstream.alerts.services import raise_alert, resolve_alerts
from dropstream.catalog.models import Listing
from dropstream.connectors.types import (
    InventoryOutcome,
    InventoryUpdate,
    StockLevelData,
    StockSnapshot,
)
from dropstream.db import insert_unless_conflict, utcnow
from dropstream.events import announce
from dropstream.inventory.models import InventoryItem, ItemState, StockLevel
from dropstream.orders.models import Order, WarehouseLine
from dropstream.orders.statuses import NOT_YET_AT_WAREHOUSE
from dropstream.stores.connections import store_connector, warehouse_connector
from dropstream.stores.models import Store, StoreChannel

#: A full reconciliation at least this often, even when no one asks for one.
FULL_SYNC_EVERY = timedelta(hours=24)
PUSH_BATCH = 1000
MAX_PAGES_PER_RUN = 50


def sync_inventory(session: Session, store: Store, channel: StoreChannel, full: bool = False) -> dict[str, int]:
    """Read stock changes (or a full snapshot) and push what changed. Returns outcome counts."""
    now = utcnow()
    full = full or channel.cursor is None or channel.last_full_run_at is None or \
        channel.last_full_run_at < now - FULL_SYNC_EVERY
    connector = warehouse_connector(store.warehouse, store)
    cursor = None if full else channel.cursor
    for _ in range(MAX_PAGES_PER_RUN):
        snapshot = connector.fetch_inventory(cursor, full=full)
        record_stock(session, store, snapshot)
        cursor = snapshot.cursor
        if not snapshot.more:
            break
    counts = push_inventory(session, store, full=full, channel=channel)
    channel.cursor = cursor
    if full:
        channel.last_full_run_at = now
    return counts


def record_stock(session: Session, store: Store, snapshot: StockSnapshot) -> int:
    """Upsert stock levels; a level older than the stored one (by the warehouse's own time) is
    ignored, so late or reordered snapshots never overwrite newer stock."""
    first_readings: dict[str, StockLevelData] = {}
    for data in snapshot.levels:
        first_readings.setdefault(data.sku[:255], data)
    existing = _levels_for(session, store, list(first_readings))
    new = {sku: data for sku, data in first_readings.items() if sku not in existing}
    created = _create_levels(session, store, new)
    if new:  # inserted here or by another transaction meanwhile: read locked, as the rest
        existing.update(_levels_for(session, store, list(new)))
    changed = len(created)
    for data in snapshot.levels:
        level = existing[data.sku[:255]]
        if data.as_of >= level.source_updated_at:
            changed += level.quantity != data.quantity
            level.quantity = data.quantity
            level.source_updated_at = data.as_of
    session.flush()
    return changed


def _create_levels(session: Session, store: Store,
                   first_readings: dict[str, StockLevelData]) -> set[str]:
    """Insert a level for each SKU seen for the first time, as its first reading in the
    snapshot; returns the SKUs this transaction inserted. Another transaction may be inserting
    the same SKU at this moment (a push and the poll, on a warehouse's first day): its row is
    kept, and the caller reads it locked, as any stored level."""
    insert = insert_unless_conflict(session, StockLevel,
                                    ("warehouse_id", "merchant_id", "warehouse_sku"))
    now = utcnow()
    created: set[str] = set()
    for sku, data in first_readings.items():
        row = session.execute(insert, dict(
            provider_id=store.provider_id, merchant_id=store.merchant_id,
            warehouse_id=store.warehouse_id, warehouse_sku=sku, quantity=data.quantity,
            source_updated_at=data.as_of, updated_at=now)).first()
        if row is not None:
            created.add(sku)
    return created


#: Built once (every stock push and poll runs it). Every writer locks in one order (by id): no
#: deadlock between two.
_LEVELS_LOCKED = (
    select(StockLevel).where(StockLevel.warehouse_id == bindparam("warehouse_id"),
                             StockLevel.merchant_id == bindparam("merchant_id"),
                             StockLevel.warehouse_sku.in_(bindparam("skus", expanding=True)))
    .order_by(StockLevel.id).with_for_update().execution_options(populate_existing=True))


def _levels_for(session: Session, store: Store, skus: list[str]) -> dict[str, StockLevel]:
    """The stored levels of these SKUs, locked and read fresh: two snapshots recorded at once
    (a WMS's push and the stock poll) each compare their time with what the other committed,
    so the older one cannot overwrite the newer."""
    return {level.warehouse_sku: level for level in session.scalars(_LEVELS_LOCKED, {
        "warehouse_id": store.warehouse_id, "merchant_id": store.merchant_id, "skus": skus})}


def available_quantities(session: Session, store: Store,
                         stock: dict[str, int] | None = None) -> dict[str, int]:
    """Available quantity per store SKU, for every SKU the store can be told about; from the
    recorded stock levels, or from ``stock`` (warehouse SKU → on hand) when given."""
    if stock is None:
        stock = dict(session.execute(
            select(StockLevel.warehouse_sku, StockLevel.quantity).where(
                StockLevel.warehouse_id == store.warehouse_id, StockLevel.merchant_id == store.merchant_id)
        ).all())
    in_flight = dict(session.execute(
        select(WarehouseLine.warehouse_sku, func.sum(WarehouseLine.quantity))
        .join(Order, Order.id == WarehouseLine.order_id)
        .where(Order.merchant_id == store.merchant_id, Order.status.in_(NOT_YET_AT_WAREHOUSE))
        .group_by(WarehouseLine.warehouse_sku)
    ).all())
    free = {sku: quantity - int(in_flight.get(sku, 0)) for sku, quantity in stock.items()}
    listings = session.scalars(
        select(Listing).options(selectinload(Listing.components)).where(Listing.store_id == store.id)
    ).all()
    buffer = max(0, store.safety_buffer or 0)
    result: dict[str, int] = {}
    renamed = {listing.warehouse_sku for listing in listings if not listing.is_bundle}
    for sku, quantity in free.items():
        if sku not in renamed:
            result[sku] = quantity  # no listing: the store knows it by the same SKU
    for listing in listings:
        parts = listing.expand()
        if all(sku in free for sku, _ in parts):
            result[listing.store_sku] = min(free[sku] // per_unit for sku, per_unit in parts)
    return {sku: max(0, quantity - buffer) for sku, quantity in result.items()}


def push_inventory(session: Session, store: Store, full: bool = False,
                   channel: StoreChannel | None = None) -> dict[str, int]:
    """Push what changed (everything when ``full``); ``channel``, when given, records the
    progress (items pushed of items to push) with each committed batch."""
    available = available_quantities(session, store)
    items = {item.store_sku: item for item in session.scalars(
        select(InventoryItem).where(InventoryItem.store_id == store.id))}
    to_push: list[InventoryUpdate] = []
    for sku, quantity in sorted(available.items()):
        item = items.get(sku)
        if item is None:
            item = InventoryItem(provider_id=store.provider_id, merchant_id=store.merchant_id,
                                 store_id=store.id, store_sku=sku[:255], state=ItemState.PENDING)
            session.add(item)
            items[sku] = item
        item.available = quantity
        unchanged = item.state is ItemState.PUSHED and item.pushed_quantity == quantity
        # Skipped items (tracking off, unknown in the store) wait for a full reconciliation.
        skipped_before = item.state is ItemState.SKIPPED
        if full or not (unchanged or skipped_before):
            to_push.append(InventoryUpdate(sku, quantity))
    counts: dict[str, int] = defaultdict(int)
    if not to_push:
        session.flush()
        return dict(counts)
    connector = store_connector(store)
    now = utcnow()
    all_results = []
    if channel is not None:
        channel.progress_total = (channel.progress_total or 0) + len(to_push)
    for start in range(0, len(to_push), PUSH_BATCH):
        batch = to_push[start:start + PUSH_BATCH]
        results = {r.sku: r for r in connector.push_inventory(batch)}
        for update in batch:
            item = items[update.sku]
            result = results.get(update.sku)
            if result is None:
                item.state, item.reason, item.message = ItemState.FAILED, "no_result", \
                    "The store connector returned no outcome for this SKU."
            elif result.outcome is InventoryOutcome.PUSHED:
                item.state, item.reason, item.message = ItemState.PUSHED, None, None
                item.pushed_quantity, item.pushed_at = update.quantity, now
            else:
                item.state = ItemState.SKIPPED if result.outcome is InventoryOutcome.SKIPPED else ItemState.FAILED
                item.reason, item.message = result.reason or result.outcome.value, result.message
            counts[item.state.value] += 1
        all_results.extend(results.values())
        if channel is not None:
            channel.progress_done += len(batch)
        session.commit()
    _report_skipped(session, store)
    announce(session, "inventory_pushed", store_id=store.id, merchant_id=store.merchant_id, results=all_results)
    return dict(counts)


def _report_skipped(session: Session, store: Store) -> None:
    reasons = dict(session.execute(
        select(InventoryItem.reason, func.count()).where(
            InventoryItem.store_id == store.id, InventoryItem.state.in_([ItemState.SKIPPED, ItemState.FAILED]))
        .group_by(InventoryItem.reason)
    ).all())
    for reason, count in reasons.items():
        raise_alert(session, provider_id=store.provider_id, merchant_id=store.merchant_id, store_id=store.id,
                    code=f"inventory_{reason}", severity="warning",
                    group_key=f"store:{store.id}:inventory:{reason}",
                    message=f"{count} SKUs of {store.name} were not updated ({reason}); see the "
                    "inventory page for the list and the fix.")
    open_keys = {f"store:{store.id}:inventory:{reason}" for reason in reasons}
    from dropstream.alerts.models import Alert

    for key in session.scalars(select(Alert.group_key).where(
            Alert.store_id == store.id, Alert.resolved_at.is_(None),
            Alert.group_key.startswith(f"store:{store.id}:inventory:"))):
        if key not in open_keys:
            resolve_alerts(session, merchant_id=store.merchant_id, group_key=key)
