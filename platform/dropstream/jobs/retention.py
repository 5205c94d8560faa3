"""Finished work and received deliveries are kept for a while, then deleted.

The outbox keeps every item it ran and the inbox every delivery it took in: what an operator
reads to learn whether something ran, and when. Kept forever they would grow without end
(several rows per order) and every count over them with them (the metrics' gauges, the
console's queue figures). The scheduler deletes outbox items done, and deliveries received,
more than ``HISTORY_DAYS`` ago (the ``DROPSTREAM_HISTORY_DAYS`` setting), in small batches so
that no tick holds up the relay for long. Work not finished (pending) and work that needs a
person (dead) is never deleted. Orders, their timelines and shipments are not history of this
kind: they stay.

The days kept must outlast every redelivery an inbox key turns away (BigCommerce re-sends a
webhook for up to 48 hours): hence ``config.MIN_HISTORY_DAYS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dropstream.db import utcnow
from dropstream.jobs.models import IS_DONE, InboxEvent, OutboxItem

log = logging.getLogger(__name__)

#: How often the scheduler looks for history to delete, once it has caught up.
PRUNE_EVERY_SECONDS = 3600.0
#: Rows one statement deletes, and statements one tick runs: a first prune of a large history
#: goes on over the next ticks instead of holding up the relay.
BATCH = 2000
BATCHES_PER_TICK = 5


def prune_history(session: Session, keep: timedelta, batches: int = BATCHES_PER_TICK,
                  batch: int = BATCH) -> tuple[int, bool]:
    """Delete outbox items done and inbox deliveries received more than ``keep`` ago, at most
    ``batches`` statements of ``batch`` rows, each committed. Needs an unscoped session (system
    work: the history of every tenant). Returns (rows deleted, whether any may remain)."""
    cutoff = utcnow() - keep
    done = select(OutboxItem.id).where(IS_DONE, OutboxItem.finished_at < cutoff).limit(batch)
    received = select(InboxEvent.id).where(InboxEvent.received_at < cutoff).limit(batch)
    deleted = 0
    for model, oldest in ((OutboxItem, done), (InboxEvent, received)):
        while True:
            if batches == 0:
                return deleted, True
            batches -= 1
            count = session.execute(delete(model).where(model.id.in_(oldest.scalar_subquery()))
                                    .execution_options(synchronize_session=False)).rowcount
            session.commit()
            deleted += count
            if count < batch:
                break
    return deleted, False


class HistoryPruner:
    """The scheduler's clock for :func:`prune_history`: once an hour, and at every tick while a
    prune has not caught up."""

    def __init__(self, keep_days: int, batches: int = BATCHES_PER_TICK, batch: int = BATCH,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keep = timedelta(days=keep_days)
        self._batches, self._batch = batches, batch
        self._clock = clock
        self._next = float("-inf")  # a scheduler's first tick prunes

    def __call__(self, session: Session) -> int:
        """Prune if it is time (on an unscoped session). Returns the rows deleted."""
        if self._clock() < self._next:
            return 0
        deleted, more = prune_history(session, self.keep, batches=self._batches, batch=self._batch)
        if deleted:
            log.info("deleted %d rows of work history older than %s days", deleted,
                     self.keep.days)
        self._next = self._clock() + (0.0 if more else PRUNE_EVERY_SECONDS)
        return deleted


def history_pruner(app: Flask) -> HistoryPruner:
    """This app's pruner (one per process: each scheduler keeps its own clock)."""
    pruner = app.extensions.get("dropstream.history_pruner")
    if pruner is None:
        pruner = app.extensions.setdefault(
            "dropstream.history_pruner", HistoryPruner(app.config["HISTORY_DAYS"]))
    return pruner
