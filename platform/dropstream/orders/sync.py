"""The orders channel: read orders changed since the cursor, import each, move the cursor.

The cursor moves only after a page's orders are committed, and the connector reads with an
overlap window, so a crash or a slow commit can repeat work but never skip an order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dropstream.orders.importing import import_order, keep_unreadable_order
from dropstream.stores.connections import store_connector
from dropstream.stores.models import Store, StoreChannel

#: Pages per run; a bigger backlog continues in the next run, queued at once.
MAX_PAGES_PER_RUN = 20


@dataclass
class SyncOutcome:
    seen: int = 0
    imported: int = 0
    more: bool = False


def sync_orders(session: Session, store: Store, channel: StoreChannel) -> SyncOutcome:
    connector = store_connector(store)
    outcome = SyncOutcome()
    for _ in range(MAX_PAGES_PER_RUN):
        page = connector.fetch_orders(channel.cursor)
        for data in page.orders:
            outcome.seen += 1
            if import_order(session, store, data) is not None:
                outcome.imported += 1
        for unreadable in page.unreadable:
            outcome.seen += 1
            keep_unreadable_order(session, store, unreadable.external_id, unreadable.number,
                                  unreadable.raw, unreadable.error)
        channel.cursor = page.cursor
        channel.progress_done += len(page.orders) + len(page.unreadable)
        session.commit()
        if not page.more:
            return outcome
    outcome.more = True
    return outcome
