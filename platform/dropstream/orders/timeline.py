"""Writing steps onto an order's timeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, inspect
from sqlalchemy.orm import Session

from dropstream.db import utcnow
from dropstream.orders.models import Order, OrderEvent

_EVENTS = OrderEvent.__table__

#: Built once: one event of an order already written, inserted as it is (see :func:`record`).
_INSERT_EVENT = insert(_EVENTS).values(
    provider_id=bindparam("provider_id"), merchant_id=bindparam("merchant_id"),
    order_id=bindparam("order_id"), kind=bindparam("kind"), message=bindparam("message"),
    detail=bindparam("detail", type_=_EVENTS.c.detail.type),
    created_at=bindparam("created_at", type_=_EVENTS.c.created_at.type),
)


def record(session: Session, order: Order, kind: str, message: str, **detail: Any) -> None:
    """Add one event; ``detail`` holds structured facts (remote status, field path, actor)."""
    facts = {k: v for k, v in detail.items() if v is not None}
    state = inspect(order)
    if state.pending or state.transient:
        # By relationship, not id: an order not written yet gets its timeline in the same flush.
        session.add(OrderEvent(provider_id=order.provider_id, merchant_id=order.merchant_id,
                               order=order, kind=kind, message=message, detail=facts))
        return
    # An order already written: one INSERT now, without the ORM's bookkeeping for an object
    # that the jobs writing most events never read (it cost more than the statement). The
    # session writes what it holds first, so the events keep their order.
    session.execute(_INSERT_EVENT, {
        "provider_id": order.provider_id, "merchant_id": order.merchant_id, "order_id": order.id,
        "kind": kind, "message": message, "detail": facts, "created_at": utcnow()})
    if "events" in state.dict:
        session.expire(order, ["events"])  # read again, with this one, if read at all
