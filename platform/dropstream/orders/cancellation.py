"""Cancelling an order: at once if the warehouse never had it, else by asking the warehouse
(which may answer that it is too late: the order shipped)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dropstream.alerts.services import raise_alert
from dropstream.connectors.types import CancelOutcome
from dropstream.errors import InvalidTransition
from dropstream.extensions import db
from dropstream.jobs.models import LeasedWork
from dropstream.jobs.outbox import add_work
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.orders.timeline import record
from dropstream.orders.transitions import transition
from dropstream.stores.connections import warehouse_connector
from dropstream.stores.models import Store

NEVER_SENT = (OrderStatus.IMPORTED, OrderStatus.ON_HOLD, OrderStatus.QUEUED, OrderStatus.RETRYING,
              OrderStatus.ERROR, OrderStatus.SKIPPED)
AT_WAREHOUSE = (OrderStatus.AT_WAREHOUSE, OrderStatus.PARTIALLY_SHIPPED)


def cancel_order(session: Session, order: Order, actor: str, reason: str = "") -> Order:
    if order.status is OrderStatus.CANCELLED:
        return order
    if order.status is OrderStatus.SHIPPED:
        record(session, order, "cancel_too_late", f"Cancel requested by {actor} ({reason or 'no reason'}),"
               " but the order has already shipped.", actor=actor)
        raise InvalidTransition("The order has already shipped; it cannot be cancelled.")
    forwarded = any(a.warehouse_order_id for a in order.shipping_addresses)
    if order.status in NEVER_SENT and not forwarded:
        if transition(session, order, NEVER_SENT, OrderStatus.CANCELLED, cancel_requested=True):
            record(session, order, "cancelled", f"Cancelled by {actor}"
                   f"{f' ({reason})' if reason else ''}; the warehouse never had it.", actor=actor)
        return order
    order.cancel_requested = True
    record(session, order, "cancel_requested", f"Cancel requested by {actor}"
           f"{f' ({reason})' if reason else ''}; asking the warehouse.", actor=actor)
    add_work(session, kind="order.cancel", subject_id=order.id, store_id=order.store_id,
             merchant_id=order.merchant_id, provider_id=order.provider_id)
    return order


def cancel_at_warehouse_job(item: LeasedWork) -> None:
    """Outbox handler ``order.cancel``."""
    session = db.session
    order = session.get(Order, item.subject_id)
    if order is None or order.status is OrderStatus.CANCELLED and not _forwarded(order):
        return
    store = session.get(Store, order.store_id)
    connector = warehouse_connector(store.warehouse, store)
    outcomes = [connector.cancel_order(a.warehouse_ref or "", a.warehouse_order_id)
                for a in order.shipping_addresses if a.warehouse_order_id]
    if CancelOutcome.TOO_LATE in outcomes:
        order.cancel_requested = False
        record(session, order, "cancel_too_late", "The warehouse could not cancel: the order has "
               "already shipped (or started shipping). Shipments will still be posted.")
        raise_alert(session, provider_id=order.provider_id, merchant_id=order.merchant_id,
                    store_id=order.store_id, order_id=order.id, code="cancel_too_late", severity="warning",
                    group_key=f"order:{order.id}:cancel_too_late",
                    message=f"Order {order.number} was cancelled in the store after it shipped.")
        return
    allowed = (*AT_WAREHOUSE, *NEVER_SENT)
    if transition(session, order, allowed, OrderStatus.CANCELLED) or order.status is OrderStatus.CANCELLED:
        record(session, order, "cancelled", "Cancelled at the warehouse.")


def _forwarded(order: Order) -> bool:
    return any(a.warehouse_order_id for a in order.shipping_addresses) and order.cancel_requested
