"""Conditional status transitions: ``UPDATE orders SET status = … WHERE id = … AND status IN (…)``.

Two workers racing on one order cannot both move it: the second update matches no row and the
caller learns it lost (``False``), instead of overwriting the winner's state.

An order not written yet (an import's new order, added to the session and not flushed) has no
row to race for: its new values go into its INSERT.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import Update, bindparam, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus


def transition(session: Session, order: Order, allowed_from: Iterable[OrderStatus],
               to: OrderStatus, **values: Any) -> bool:
    """Move ``order`` to ``to`` if its status is one of ``allowed_from``, setting ``values``
    (plain values, bound as parameters) with it; whether it moved."""
    allowed = list(allowed_from)
    if inspect(order).pending:
        if order.status not in allowed:
            return False
        for key, value in dict(values, status=to).items():
            setattr(order, key, value)
        return True
    session.flush()
    parameters = {f"new_{key}": value for key, value in values.items()}
    moved = session.execute(_update(tuple(sorted(values))), {
        "order_id": order.id, "allowed": allowed, "new_status": to, **parameters}).rowcount
    if moved:
        # The row is written; mirror it on the object without making the ORM write it again.
        set_committed_value(order, "status", to)
        for key, value in values.items():
            set_committed_value(order, key, value)
    return bool(moved)


@cache
def _update(keys: tuple[str, ...]) -> Update:
    """The conditional UPDATE setting ``status`` and ``keys``, built once per set of keys: an
    order moves several times on its way, and building the statement (and its cache key) each
    time cost more CPU than running it."""
    table = Order.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("order_id"),
               table.c.status.in_(bindparam("allowed", expanding=True)))
        .values(status=bindparam("new_status"), **{key: bindparam(f"new_{key}") for key in keys})
    )
