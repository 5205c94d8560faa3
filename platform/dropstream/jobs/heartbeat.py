"""Keeping a running item's lease alive while its handler runs.

A lease must outlast the job holding it, or a second worker would take the row while the first
still runs it. Without renewal that means a lease longer than any job (``RUN_LEASE``, 300 s), and
the rows of a worker killed mid-job wait that long. Worker processes on PostgreSQL instead lease
for ``HEARTBEAT_LEASE`` (60 s) and renew it every ``HEARTBEAT_SECONDS`` from a thread beside the
handler: a live worker keeps its rows however long the job takes (up to the queue's job timeout),
and a dead one's come back within a minute.

The embedded default (worker threads in one process, usually SQLite) keeps ``RUN_LEASE`` and no
heartbeat: a SQLite job can hold the write lock through a slow upstream call, which would stall
every heartbeat behind it, and a killed process takes all its threads' work down with it anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app

from dropstream.extensions import db
from dropstream.jobs import outbox
from dropstream.jobs.models import LeasedWork
from dropstream.tenants.scope import unscoped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeasePolicy:
    """How long a worker holds what it runs, and how often it renews (None: never)."""

    hold: timedelta
    renew_every: float | None = None

    def kept(self, item: LeasedWork) -> AbstractContextManager[None]:
        """A context keeping ``item``'s lease alive while it is open (nothing without renewal)."""
        if self.renew_every is None:
            return nullcontext()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        return _heartbeat(app, item, self.hold, self.renew_every)


def lease_policy() -> LeasePolicy:
    """Heartbeats for worker processes on PostgreSQL; ``RUN_LEASE`` for everything else."""
    from dropstream.jobs.queue import RQQueue
    from dropstream.state import get_state

    if isinstance(get_state().queue, RQQueue) and db.engine.dialect.name == "postgresql":
        return LeasePolicy(outbox.HEARTBEAT_LEASE, outbox.HEARTBEAT_SECONDS)
    return LeasePolicy(outbox.RUN_LEASE)


#: The rows the running job's heartbeat keeps besides its own (this thread's job).
_alongside = threading.local()


def keep_alongside(items: list[LeasedWork]) -> None:
    """Keep these leases alive too while the running job's heartbeat beats: rows a job took
    along (``outbox.take_along``). Nothing without a heartbeat."""
    kept = getattr(_alongside, "items", None)
    if kept is not None:
        kept.extend(items)


@contextmanager
def _heartbeat(app: Flask, item: LeasedWork, hold: timedelta, every: float) -> Iterator[None]:
    stop = threading.Event()
    alongside: list[LeasedWork] = []

    def beat() -> None:
        while not stop.wait(every):
            try:
                # An app context of its own: its own session and connection, beside the job's.
                with app.app_context(), unscoped(db.session):
                    if not outbox.renew(db.session, item, hold):
                        log.warning("outbox item %s: its lease ended while it ran", item.id)
                        return
                    for other in list(alongside):
                        if not outbox.renew(db.session, other, hold):  # finished or handed back
                            alongside.remove(other)
            except Exception as error:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("outbox item %s: could not renew its lease (%s); trying again in %g s",
                            item.id, type(error).__name__, every)

    _alongside.items = alongside
    thread = threading.Thread(target=beat, name=f"lease-{item.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        # Stopped before the runner records the outcome: a late beat must not hold a row the
        # runner has just released for its retry (the renewal refuses an ended lease anyway).
        _alongside.items = None
        stop.set()
        thread.join(timeout=every + 10)
