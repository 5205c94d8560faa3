"""Holds: putting an order on hold with a reason, and releasing held orders when fixed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dropstream.stores.models import Store


def request_hold_rescan(session: Session, store: Store) -> None:
    """A listing or shipping rule of ``store`` changed: re-validate its held orders (as outbox
    work in this transaction, so the caller stays fast and nothing is lost)."""
    raise NotImplementedError
