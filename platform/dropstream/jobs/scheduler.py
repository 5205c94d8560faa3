"""The scheduler: every tick it relays due outbox work to the queue and turns due channels into
work, and once an hour it deletes work history older than the days kept (``jobs/retention.py``).
``dropstream scheduler`` runs it as its own process in production; the embedded default runs it
in a thread (:func:`start_in_process`). Several schedulers may run at once on PostgreSQL:
channel rows are claimed with ``FOR UPDATE SKIP LOCKED`` and outbox rows are leased.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app

from dropstream.extensions import db
from dropstream.jobs.outbox import relay_due_work
from dropstream.jobs.retention import history_pruner
from dropstream.tenants.scope import unscoped

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0


def tick() -> tuple[int, int]:
    """One round: (channels scheduled, items relayed). Needs an app context."""
    from dropstream.stores.channels import schedule_due_channels

    with unscoped(db.session):
        scheduled = schedule_due_channels(db.session)
        relayed = relay_due_work()
        history_pruner(current_app)(db.session)
    return scheduled, relayed


def run_scheduler(app: Flask, stop: threading.Event | None = None, tick_seconds: float = TICK_SECONDS) -> None:
    """Tick until ``stop`` is set (or forever). Errors are logged and the loop goes on: a database
    restart must cost a few ticks, not the scheduler."""
    stop = stop or threading.Event()
    log.info("scheduler started (tick %.1fs)", tick_seconds)
    while not stop.is_set():
        with app.app_context():
            try:
                tick()
            except Exception:  # noqa: BLE001
                log.exception("scheduler tick failed; retrying")
                db.session.rollback()
            finally:
                db.session.remove()
        stop.wait(tick_seconds)


class InProcessScheduler:
    """The scheduler running in a thread of this process (the embedded default)."""

    def __init__(self, app: Flask, tick_seconds: float = TICK_SECONDS) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=run_scheduler, args=(app, self._stop, tick_seconds),
                                        name="dropstream-scheduler", daemon=True)

    def start(self) -> InProcessScheduler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current tick and wait for it (so no connection is left mid-use)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def start_in_process(app: Flask, tick_seconds: float = TICK_SECONDS) -> InProcessScheduler:
    """Start the scheduler in a daemon thread; call ``stop()`` on the result to end it."""
    return InProcessScheduler(app, tick_seconds).start()


def wait_idle(app: Flask, timeout: float = 30.0) -> bool:
    """Wait until no channel is due and no outbox work is due or running (the demo and tests).
    Returns False on timeout."""
    from sqlalchemy import func, or_, select

    from dropstream.db import utcnow
    from dropstream.jobs.models import IS_PENDING, OutboxItem
    from dropstream.stores.models import Store, StoreChannel, StoreState

    deadline = time.monotonic() + timeout
    quiet_checks = 0
    while time.monotonic() < deadline:
        with app.app_context():
            now = utcnow()
            with unscoped(db.session):
                busy = db.session.scalar(
                    select(func.count()).select_from(OutboxItem).where(
                        IS_PENDING,
                        or_(OutboxItem.run_after <= now, OutboxItem.leased_until > now)))
                due_channels = db.session.scalar(
                    select(func.count()).select_from(StoreChannel)
                    .join(Store, Store.id == StoreChannel.store_id)
                    .where(Store.state == StoreState.ACTIVE, StoreChannel.enabled.is_(True),
                           StoreChannel.paused.is_(False),
                           or_(StoreChannel.next_run_at.is_(None), StoreChannel.next_run_at <= now)))
            db.session.remove()
        # Two quiet looks in a row: work finishing between them would have made new work due.
        quiet_checks = quiet_checks + 1 if not busy and not due_channels else 0
        if quiet_checks >= 2:
            return True
        time.sleep(0.1)
    return False
