"""Writing steps onto an order's timeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dropstream.orders.models import Order, OrderEvent


def record(session: Session, order: Order, kind: str, message: str, **detail: Any) -> OrderEvent:
    """Add one event; ``detail`` holds structured facts (remote status, field path, actor)."""
    # By relationship, not id: an order not written yet gets its timeline in the same flush.
    event = OrderEvent(provider_id=order.provider_id, merchant_id=order.merchant_id,
                       order=order, kind=kind, message=message,
                       detail={k: v for k, v in detail.items() if v is not None})
    session.add(event)
    return event
