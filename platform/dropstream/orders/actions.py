"""Operator actions on orders: reprocess, release, hold, cancel.

Each action checks the order's status and raises :class:`~dropstream.errors.InvalidTransition`
(409) when it does not apply, records an event naming the actor, and leaves the session
uncommitted (the caller commits).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from dropstream.db import utcnow
from dropstream.errors import InvalidTransition
from dropstream.jobs.models import IS_PENDING, OutboxItem
from dropstream.jobs.outbox import add_work
from dropstream.orders.cancellation import cancel_order
from dropstream.orders.holds import evaluate
from dropstream.orders.models import Order
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.orders.timeline import record
from dropstream.orders.transitions import transition
from dropstream.stores.models import Store

#: Errors that mean DropStream never had a readable copy: Reprocess reads the store again.
REREAD_ERRORS = ("import_failed", "remote_not_found")
HOLDABLE = (OrderStatus.IMPORTED, OrderStatus.QUEUED, OrderStatus.RETRYING, OrderStatus.ERROR)


def reprocess(session: Session, order: Order, actor: str) -> Order:
    """Run the order's failed or held step again (re-map a held order, re-send an errored one,
    retry a retrying one now)."""
    store = _store(session, order)
    if order.status is OrderStatus.ERROR and order.error_code in REREAD_ERRORS:
        record(session, order, "reprocess", f"Reprocess by {actor}: reading the order from the store again.", actor=actor)
        add_work(session, kind="order.refresh", subject_id=store.id, store_id=store.id,
                 dedupe_key=f"order.refresh:{store.id}:{order.external_id}",
                 payload={"external_id": order.external_id},
                 merchant_id=order.merchant_id, provider_id=order.provider_id)
        return order
    if order.status in (OrderStatus.ON_HOLD, OrderStatus.ERROR):
        record(session, order, "reprocess", f"Reprocess by {actor}.", actor=actor)
        evaluate(session, order, store, actor=actor)
        return order
    if order.status is OrderStatus.RETRYING:
        record(session, order, "reprocess", f"Reprocess by {actor}: retrying now.", actor=actor)
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.kind == "order.forward", OutboxItem.subject_id == order.id,
                   IS_PENDING)
            .values(run_after=utcnow(), dispatched_at=None)
            .execution_options(synchronize_session=False)
        )
        return order
    raise InvalidTransition(f"A {order.status.value} order has nothing to reprocess.")


def release(session: Session, order: Order, actor: str) -> Order:
    """Release a held order: a manual hold is lifted; any hold is validated again (and stays
    held, with its reason, if the cause is not fixed yet)."""
    if order.status is not OrderStatus.ON_HOLD:
        raise InvalidTransition(f"Only held orders can be released; this one is {order.status.value}.")
    if order.hold_reason is HoldReason.MANUAL:
        transition(session, order, [OrderStatus.ON_HOLD], OrderStatus.IMPORTED, hold_reason=None, hold_detail=None)
        record(session, order, "released", f"Manual hold lifted by {actor}.", actor=actor)
    evaluate(session, order, _store(session, order), actor=actor)
    return order


def hold(session: Session, order: Order, actor: str, note: str = "") -> Order:
    """Put an order that has not reached the warehouse on a manual hold."""
    detail = note or f"held by {actor}"
    if not transition(session, order, HOLDABLE, OrderStatus.ON_HOLD, hold_reason=HoldReason.MANUAL, hold_detail=detail):
        raise InvalidTransition(f"A {order.status.value} order cannot be held.")
    record(session, order, "held", f"On hold (manual): {detail}", actor=actor, reason="manual")
    return order


def cancel(session: Session, order: Order, actor: str) -> Order:
    """Cancel the order; if the warehouse has it, the cancel is forwarded (too late once shipped)."""
    if order.status is OrderStatus.CANCELLED:
        raise InvalidTransition("The order is already cancelled.")
    return cancel_order(session, order, actor=actor)


def _store(session: Session, order: Order) -> Store:
    store = session.get(Store, order.store_id)
    assert store is not None
    return store
