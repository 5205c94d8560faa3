"""Operator actions on orders: reprocess, release, cancel, hold — singly or in bulk.

Each action checks the order's status and raises :class:`~dropstream.errors.InvalidTransition`
(409) when it does not apply, records an event naming the actor, and leaves the session
uncommitted (the caller commits).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from dropstream.orders.models import Order


def reprocess(session: Session, order: Order, actor: str) -> Order:
    """Run the order's failed or held step again (re-map a held order, re-forward an errored one)."""
    raise NotImplementedError


def release(session: Session, order: Order, actor: str) -> Order:
    """Release a held order: re-validate it; a manual hold is lifted."""
    raise NotImplementedError


def hold(session: Session, order: Order, actor: str, note: str = "") -> Order:
    """Put an order that has not reached the warehouse on a manual hold."""
    raise NotImplementedError


def cancel(session: Session, order: Order, actor: str) -> Order:
    """Cancel the order; if the warehouse has it, the cancel is forwarded (too late once shipped)."""
    raise NotImplementedError
