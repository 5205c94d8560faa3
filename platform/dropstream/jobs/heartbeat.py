"""Keeping a running item's lease alive while its handler runs.

A lease must outlast the job holding it, or a second worker would take the row while the first
still runs it. Without renewal that means a lease longer than any job (``RUN_LEASE``, 300 s), and
the rows of a worker killed mid-job wait that long. Worker processes on PostgreSQL instead lease
for ``HEARTBEAT_LEASE`` (60 s) and renew it every ``HEARTBEAT_SECONDS`` from a thread beside the
handler: a live worker keeps its rows however long the job takes (up to the queue's job timeout),
and a dead one's come back within a minute. One such thread per process (and app) renews what
every job running there holds; it ends after a beat that found nothing to renew, and the next
job starts it again. (A thread per job cost more than many a job's own work.)

The embedded default (worker threads in one process, usually SQLite) keeps ``RUN_LEASE`` and no
heartbeat: a SQLite job can hold the write lock through a slow upstream call, which would stall
every heartbeat behind it, and a killed process takes all its threads' work down with it anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
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
        return _kept(self._heartbeat(), item)

    def kept_waiting(self, items: list[LeasedWork]) -> AbstractContextManager[None]:
        """A context keeping alive the leases of ``items``, rows a worker took to run one after
        another, while they wait their turn (each, as it runs, is kept by :meth:`kept`)."""
        if self.renew_every is None or not items:
            return nullcontext()
        return _kept_waiting(self._heartbeat(), items)

    def _heartbeat(self) -> Heartbeat:
        assert self.renew_every is not None
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        beats = app.extensions.setdefault(_EXTENSION, {})
        heartbeat = beats.get(self)
        if heartbeat is None:
            heartbeat = beats.setdefault(self, Heartbeat(app, self.hold, self.renew_every))
        return heartbeat


def lease_policy() -> LeasePolicy:
    """Heartbeats for worker processes on PostgreSQL; ``RUN_LEASE`` for everything else."""
    from dropstream.jobs.queue import RQQueue
    from dropstream.state import get_state

    if isinstance(get_state().queue, RQQueue) and db.engine.dialect.name == "postgresql":
        return LeasePolicy(outbox.HEARTBEAT_LEASE, outbox.HEARTBEAT_SECONDS)
    return LeasePolicy(outbox.RUN_LEASE)


#: Where an app keeps its heartbeat per lease policy.
_EXTENSION = "dropstream.heartbeats"
#: What the running job's heartbeat keeps besides its own row (this thread's job).
_alongside = threading.local()


def keep_alongside(items: list[LeasedWork]) -> None:
    """Keep these leases alive too while the running job's heartbeat beats: rows a job took
    along (``outbox.take_along``). Nothing without a heartbeat."""
    kept = getattr(_alongside, "kept", None)
    if kept is not None:
        heartbeat, rows = kept
        heartbeat.keep(items, alongside=True)
        rows.extend(items)


class Heartbeat:
    """The thread renewing the leases of every job running in this process, and of the rows
    they took along, every ``every`` seconds for ``hold``."""

    def __init__(self, app: Flask, hold: timedelta, every: float) -> None:
        self._app, self._hold, self._every = app, hold, every
        #: outbox id → (the leased row, whether a job took it along rather than runs it)
        self._held: dict[int, tuple[LeasedWork, bool]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def keep(self, items: Iterable[LeasedWork], alongside: bool = False) -> None:
        with self._lock:
            for item in items:
                self._held[item.id] = (item, alongside)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="lease-heartbeat",
                                                daemon=True)
                self._thread.start()

    def drop(self, items: Iterable[LeasedWork]) -> None:
        with self._lock:
            for item in items:
                self._held.pop(item.id, None)

    def _beat(self) -> None:
        while True:
            time.sleep(self._every)
            with self._lock:
                held = list(self._held.values())
                if not held:
                    self._thread = None  # the next job starts another
                    return
            try:
                # An app context of its own: its own session and connection, beside the jobs'.
                with self._app.app_context(), unscoped(db.session):
                    for item, alongside in held:
                        if not outbox.renew(db.session, item, self._hold):
                            self._refused(item, alongside)
            except Exception as error:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("could not renew the leases of %s (%s); trying again in %g s",
                            ", ".join(str(item.id) for item, _ in held), type(error).__name__,
                            self._every)

    def _refused(self, item: LeasedWork, alongside: bool) -> None:
        """The row is no longer this worker's: finished, handed back, or taken over."""
        with self._lock:
            running = self._held.get(item.id, (None, False))[0] is item
            if running:
                del self._held[item.id]
        if running and not alongside:  # (after its job ended, a refusal is no news)
            log.warning("outbox item %s: its lease ended while it ran", item.id)


@contextmanager
def _kept_waiting(heartbeat: Heartbeat, items: list[LeasedWork]) -> Iterator[None]:
    heartbeat.keep(items, alongside=True)
    try:
        yield
    finally:
        heartbeat.drop(items)  # (those that ran were dropped as each ended)


@contextmanager
def _kept(heartbeat: Heartbeat, item: LeasedWork) -> Iterator[None]:
    alongside: list[LeasedWork] = []
    _alongside.kept = (heartbeat, alongside)
    heartbeat.keep([item])
    try:
        yield
    finally:
        # Dropped before the runner records the outcome; a beat already under way may still
        # renew the row, which is harmless: the runner's outcome ends the lease in any case,
        # and a renewal refuses a lease that has ended.
        _alongside.kept = None
        heartbeat.drop([item, *alongside])
