"""Shipments: recorded once from the warehouse (polled or pushed), posted once to the store.

A shipment's store quantities are computed from the shipments recorded before it and with it
(bundles complete only when every component has shipped), so the result does not depend on the
order in which posts happen or are retried.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from dropstream.alerts.services import raise_alert
from dropstream.connectors.base import ConnectorError, RejectedError
from dropstream.connectors.types import FulfillmentData, FulfillmentLine, ShipmentData
from dropstream.db import utcnow
from dropstream.events import announce
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.jobs.models import LeasedWork
from dropstream.jobs.outbox import add_work
from dropstream.orders.mapping import reference_store_id
from dropstream.orders.models import Order, OrderAddress, WarehouseLine
from dropstream.orders.statuses import OrderStatus
from dropstream.orders.timeline import record
from dropstream.orders.transitions import transition
from dropstream.stores.connections import store_connector, warehouse_connector
from dropstream.stores.models import Store, StoreChannel
from dropstream.tenants.scope import unscoped

log = logging.getLogger(__name__)
MAX_PAGES_PER_RUN = 20
#: A shipment arriving for an order in any of these is still the warehouse's truth.
SHIPPABLE_FROM = (OrderStatus.AT_WAREHOUSE, OrderStatus.PARTIALLY_SHIPPED, OrderStatus.QUEUED,
                  OrderStatus.RETRYING, OrderStatus.ERROR, OrderStatus.ON_HOLD, OrderStatus.CANCELLED)

# Built once: each shipment recorded and posted runs these, and building a statement (and its
# cache key) at each call cost more than a fifth of a millisecond of CPU apiece.
_SHIPMENT = select(Shipment).where(
    Shipment.warehouse_id == bindparam("warehouse_id"),
    Shipment.merchant_id == bindparam("merchant_id"),
    Shipment.warehouse_shipment_id == bindparam("warehouse_shipment_id"))
#: The consignment a polled shipment ships, with its order (the shipment's timeline entry).
_CONSIGNMENT = select(OrderAddress).where(
    OrderAddress.warehouse_ref == bindparam("reference"),
    OrderAddress.merchant_id == bindparam("merchant_id")).options(joinedload(OrderAddress.order))
#: A consignment's warehouse lines, locked and read fresh: two shipments of one consignment
#: recorded at once (a push and the poll, or two pushes) each add their units to what the other
#: committed, instead of both counting from the same old value and the second overwriting the
#: first. Every writer locks them in one order (by id): no deadlock between two.
_LINES_LOCKED = (
    select(WarehouseLine).where(WarehouseLine.address_id == bindparam("address_id"))
    .order_by(WarehouseLine.id).with_for_update().execution_options(populate_existing=True))
#: The same unlocked: a post reads only what never changes (references, units per bundle).
_LINES = select(WarehouseLine).where(WarehouseLine.address_id == bindparam("address_id"))
#: A post's order, locked with FOR NO KEY UPDATE (see post_shipment), and its lines read fresh
#: after the lock is taken.
_ORDER_LOCKED = (
    select(Order).where(Order.id == bindparam("order_id")).with_for_update(key_share=True)
    .options(selectinload(Order.lines)).execution_options(populate_existing=True))
#: The order's shipments up to and including one, in the order they were recorded.
_SHIPMENTS_THROUGH = select(Shipment).where(
    Shipment.order_id == bindparam("order_id"), Shipment.state != ShipmentState.UNMATCHED,
    Shipment.id <= bindparam("shipment_id")).order_by(Shipment.id)


def sync_shipments(session: Session, store: Store, channel: StoreChannel) -> bool:
    """Pull shipments since the channel's cursor. Returns True when more pages remain."""
    connector = warehouse_connector(store.warehouse, store)
    for _ in range(MAX_PAGES_PER_RUN):
        page = connector.fetch_shipments(channel.cursor)
        for data in page.shipments:
            record_shipment(session, store, data)
        channel.cursor = page.cursor
        session.commit()
        if not page.more:
            return False
    return True


def record_shipment(session: Session, store: Store, data: ShipmentData) -> Shipment | None:
    """Record one warehouse shipment (idempotent by warehouse shipment id) and queue its post.

    Returns None for a shipment of *another* store that this store's poll saw because both share
    one account at the warehouse: that store's own poll records it.
    """
    if _another_stores(session, store, data.order_reference):
        return None
    existing = _find(session, store, data.warehouse_shipment_id)
    if existing is not None:
        return existing
    # With its order, which the shipment's timeline entry needs: one query, not two.
    address = session.scalar(
        _CONSIGNMENT, {"reference": data.order_reference, "merchant_id": store.merchant_id})
    return _record(session, store, data, address)


def record_pushed_shipment(session: Session, store: Store, data: ShipmentData,
                           address: OrderAddress | None) -> Shipment:
    """:func:`record_shipment` for a shipment a WMS pushed, whose consignment (``address``, with
    its order loaded; None: no order has its reference) and store the inbound route has already
    found from its reference, and checked against the warehouse and account that pushed it."""
    existing = _find(session, store, data.warehouse_shipment_id)
    return existing if existing is not None else _record(session, store, data, address)


def _record(session: Session, store: Store, data: ShipmentData,
            address: OrderAddress | None) -> Shipment:
    warehouse_id = store.warehouse_id
    shipment = Shipment(
        provider_id=store.provider_id, merchant_id=store.merchant_id, warehouse_id=warehouse_id,
        store_id=store.id, warehouse_shipment_id=data.warehouse_shipment_id[:120],
        order_reference=data.order_reference[:120], carrier=data.carrier[:120],
        service=data.service[:120], tracking_number=data.tracking_number[:120],
        tracking_url=data.tracking_url[:500], shipped_at=data.shipped_at,
        lines=[{"line_reference": l.line_reference, "sku": l.sku, "quantity": l.quantity} for l in data.lines],
    )
    problem = None
    try:
        # The warehouse lines are counted inside the savepoint: if the same shipment was
        # recorded concurrently, its INSERT fails and takes this count back with it.
        with session.begin_nested():
            if address is None:
                problem = f"no order has warehouse reference {data.order_reference!r}"
            else:
                shipment.order_id = address.order_id
                shipment.address_id = address.id
                problem = _apply_to_warehouse_lines(session, address, shipment)
            if problem:
                shipment.state = ShipmentState.UNMATCHED
                shipment.last_error = problem
            session.add(shipment)
            session.flush()
    except IntegrityError:
        # Recorded concurrently — by us (returned), or for another merchant sharing the account.
        return _find(session, store, data.warehouse_shipment_id)
    if problem:
        raise_alert(session, provider_id=store.provider_id, merchant_id=store.merchant_id,
                    store_id=store.id, order_id=shipment.order_id, code="shipment_unmatched",
                    group_key=f"shipment:{shipment.id}:unmatched",
                    message=f"Warehouse shipment {shipment.warehouse_shipment_id} could not be "
                    f"matched: {problem}. It is kept; fix the order, then retry the shipment.")
        if shipment.order_id:
            record(session, address.order, "shipment_unmatched",
                   f"Warehouse shipment {shipment.warehouse_shipment_id} could not be matched: {problem}.")
        return shipment
    record(session, address.order, "shipment_received",
           f"The warehouse shipped {sum(l['quantity'] for l in shipment.lines)} units "
           f"({shipment.carrier} {shipment.tracking_number}).", shipment_id=shipment.id)
    add_work(session, kind="shipment.post", subject_id=shipment.id, store_id=store.id,
             merchant_id=store.merchant_id, provider_id=store.provider_id)
    return shipment


def _apply_to_warehouse_lines(session: Session, address: OrderAddress, shipment: Shipment) -> str | None:
    lines = session.scalars(_LINES_LOCKED, {"address_id": address.id}).all()
    by_reference = {line.reference: line for line in lines}
    updates: list[tuple[WarehouseLine, int]] = []
    for item in shipment.lines:
        line = by_reference.get(str(item.get("line_reference") or ""))
        if line is None:
            line = next((l for l in lines if l.warehouse_sku == item.get("sku")
                         and l.quantity_shipped + sum(q for w, q in updates if w is l) < l.quantity), None)
        if line is None:
            return f"no line of order reference {address.warehouse_ref} matches {item}"
        if item["quantity"] <= 0:
            return f"shipped quantity {item['quantity']} must be positive"
        updates.append((line, item["quantity"]))
        if item.get("line_reference") is None:
            item["line_reference"] = line.reference
    for line, quantity in updates:
        if line.quantity_shipped + quantity > line.quantity:
            return f"line {line.reference} ({line.warehouse_sku}) would ship more than ordered"
    for line, quantity in updates:
        line.quantity_shipped += quantity
    return None


def post_shipment(session: Session, shipment: Shipment, first_attempt: bool = False) -> None:
    """Post one recorded shipment to the store. ``first_attempt``: no earlier attempt to post
    it was ever made (the connector may then skip looking for an earlier post)."""
    if shipment.state is not ShipmentState.PENDING:
        return
    # One order's shipments are posted one at a time: each adds its units to the order's lines
    # and decides from them whether the order is shipped. Two at once (two workers) each read
    # the lines before the other committed, and one's units and the final status were lost.
    # Its lines are read after the lock is taken, fresh (populate_existing), with the order.
    # FOR NO KEY UPDATE, the lock of a plain UPDATE: other posts and status changes of the order
    # wait for it, but rows that merely refer to the order (the next parcel's shipment, timeline
    # events) do not, while this post may wait for the store's API quota.
    order = session.scalars(_ORDER_LOCKED, {"order_id": shipment.order_id}).one()
    store = session.get(Store, shipment.store_id)
    address = shipment.address
    deltas = _store_quantities(session, shipment)
    if not deltas:
        shipment.state = ShipmentState.POSTED
        shipment.posted_at = utcnow()
        record(session, order, "shipment_partial_bundle",
               f"Shipment {shipment.warehouse_shipment_id} holds only part of a bundle; the store "
               "is told when the bundle is complete.")
        return
    lines_by_id = {line.id: line for line in order.lines}
    fulfillment = FulfillmentData(
        order_external_id=order.external_id, destination_external_id=address.external_id or None,
        key=f"ds-shipment-{shipment.id}",
        lines=tuple(FulfillmentLine(lines_by_id[line_id].external_id, quantity) for line_id, quantity in deltas.items()),
        tracking_number=shipment.tracking_number, carrier=shipment.carrier,
        shipping_method=shipment.service or address.shipping_method, tracking_url=shipment.tracking_url,
        first_attempt=first_attempt,
    )
    try:
        result = store_connector(store).post_fulfillment(fulfillment)
    except RejectedError as error:
        shipment.state = ShipmentState.FAILED
        shipment.last_error = error.message
        record(session, order, "shipment_rejected", f"The store refused shipment "
               f"{shipment.warehouse_shipment_id}: {error.message}", remote=error.message)
        _alert_failed(session, shipment, error.message)
        return
    for line_id, quantity in deltas.items():
        lines_by_id[line_id].quantity_shipped += quantity
    shipment.state = ShipmentState.POSTED
    shipment.store_shipment_id = result.external_id
    shipment.posted_at = utcnow()
    shippable = [line for line in order.lines if line.ships]
    complete = all(line.quantity_shipped >= line.quantity for line in shippable)
    record(session, order, "shipment_posted",
           f"Shipment posted to the store with tracking {shipment.tracking_number or '(none)'} "
           f"({shipment.carrier or 'no carrier'})" + ("" if result.created else "; the store already had it")
           + ".", shipment_id=shipment.id, store_shipment_id=result.external_id)
    transition(session, order, SHIPPABLE_FROM,
               OrderStatus.SHIPPED if complete else OrderStatus.PARTIALLY_SHIPPED)
    announce(session, "order_shipped", order_id=order.id, merchant_id=order.merchant_id,
             shipment_id=shipment.id, complete=complete)


def _store_quantities(session: Session, shipment: Shipment) -> dict[int, int]:
    """Store units this shipment completes, per store line id: units complete counting shipments
    up to and including this one, minus units complete before it."""
    shipments = session.scalars(
        _SHIPMENTS_THROUGH, {"order_id": shipment.order_id, "shipment_id": shipment.id}).all()
    before: dict[str, int] = defaultdict(int)
    through: dict[str, int] = defaultdict(int)
    for earlier in shipments:
        for item in earlier.lines:
            through[str(item["line_reference"])] += item["quantity"]
            if earlier.id < shipment.id:
                before[str(item["line_reference"])] += item["quantity"]
    lines = session.scalars(_LINES, {"address_id": shipment.address_id}).all()
    components: dict[int, list[WarehouseLine]] = defaultdict(list)
    for line in lines:
        components[line.order_line_id].append(line)
    deltas = {}
    for store_line_id, parts in components.items():
        done_before = min(before[p.reference] // p.per_unit for p in parts)
        done_through = min(through[p.reference] // p.per_unit for p in parts)
        if done_through > done_before:
            deltas[store_line_id] = done_through - done_before
    return deltas


def post_shipment_job(item: LeasedWork) -> None:
    """Outbox handler ``shipment.post``: ``subject_id`` is the shipment id."""
    # With its consignment, which the post reads (its destination and shipping method) and
    # which nothing changes once the order is at the warehouse: one query, not two.
    shipment = db.session.get(Shipment, item.subject_id, options=[joinedload(Shipment.address)])
    if shipment is not None:
        # The lease counted this attempt; an earlier one (even a crashed one) counted too, and a
        # failed post left its error on the shipment.
        post_shipment(db.session, shipment,
                      first_attempt=item.attempts == 1 and not shipment.last_error)


def post_shipment_retrying(item: LeasedWork, error: Exception, next_attempt: datetime) -> None:
    shipment = db.session.get(Shipment, item.subject_id)
    if shipment is not None:
        shipment.last_error = error.message if isinstance(error, ConnectorError) else str(error)


def post_shipment_gave_up(item: LeasedWork, error: Exception) -> None:
    shipment = db.session.get(Shipment, item.subject_id)
    if shipment is None:
        return
    message = error.message if isinstance(error, ConnectorError) else f"{type(error).__name__}: {error}"
    shipment.state = ShipmentState.FAILED
    shipment.last_error = message
    _alert_failed(db.session, shipment, message)


def retry_shipment(session: Session, shipment: Shipment) -> None:
    """Post a failed shipment again (after the cause was fixed in the store)."""
    if shipment.state is ShipmentState.FAILED:
        shipment.state = ShipmentState.PENDING
        add_work(session, kind="shipment.post", subject_id=shipment.id, store_id=shipment.store_id,
                 merchant_id=shipment.merchant_id, provider_id=shipment.provider_id)


def _alert_failed(session: Session, shipment: Shipment, message: str) -> None:
    raise_alert(session, provider_id=shipment.provider_id, merchant_id=shipment.merchant_id,
                store_id=shipment.store_id, order_id=shipment.order_id, code="shipment_failed",
                group_key=f"store:{shipment.store_id}:shipment_failed",
                message=f"Shipments could not be posted to the store: {message}")


def _another_stores(session: Session, store: Store, reference: str) -> bool:
    """Whether ``reference`` names an order of another store linked to the same warehouse (a
    question about ids only, so it may look past this tenant's scope)."""
    owner = reference_store_id(reference)
    if owner is None or owner == store.id:
        return False
    with unscoped(session):
        return session.scalar(select(Store.id).where(
            Store.id == owner, Store.warehouse_id == store.warehouse_id)) is not None


def _find(session: Session, store: Store, warehouse_shipment_id: str) -> Shipment | None:
    return session.scalar(_SHIPMENT, {
        "warehouse_id": store.warehouse_id, "merchant_id": store.merchant_id,
        "warehouse_shipment_id": warehouse_shipment_id[:120]})

