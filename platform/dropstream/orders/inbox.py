"""The webhook inbox: a store's notification is stored once, then treated as a hint.

A connector's webhook route verifies the sender, calls :func:`receive_order_hint` and commits
*before* answering 2xx: an acknowledged webhook always has its inbox row and its follow-up work.
The order itself is always re-read from the store, so duplicates, reordering and stale payloads
cannot do harm.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from dropstream.db import insert_unless_conflict, utcnow
from dropstream.jobs.models import InboxEvent
from dropstream.jobs.outbox import add_work


class HintedStore(Protocol):
    """The store a hint is about: a :class:`~dropstream.stores.models.Store`, or what a
    webhook route remembers of one."""

    @property
    def id(self) -> int: ...
    @property
    def merchant_id(self) -> int: ...
    @property
    def provider_id(self) -> int: ...


def receive_order_hint(session: Session, store: HintedStore, *, event_key: str, topic: str,
                       external_id: str, payload: dict[str, Any]) -> bool:
    """Record a webhook about order ``external_id``; queue a re-read. Returns False for a
    duplicate delivery (same ``event_key``), which changes nothing."""
    insert = insert_unless_conflict(session, InboxEvent, ("store_id", "event_key"))
    values = dict(provider_id=store.provider_id, merchant_id=store.merchant_id, store_id=store.id,
                  event_key=event_key[:200], topic=topic[:120], payload=payload, received_at=utcnow())
    if session.execute(insert, values).scalar() is None:
        return False
    add_work(session, kind="order.refresh", subject_id=store.id, store_id=store.id,
             merchant_id=store.merchant_id, provider_id=store.provider_id, queue="webhooks",
             dedupe_key=f"order.refresh:{store.id}:{external_id}", payload={"external_id": str(external_id)})
    return True

