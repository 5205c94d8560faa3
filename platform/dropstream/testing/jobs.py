"""Running background work synchronously in tests, through the real queue.

``run_until_idle`` ticks the scheduler (channels → work, relay → queue) and then lets the
configured queue's workers run what was dispatched: the in-process queue's items are run in
this thread; on RQ, a burst worker takes them from Redis. It stops when nothing is due.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs import outbox
from dropstream.jobs.models import IS_PENDING, OutboxItem, OutboxState
from dropstream.jobs.queue import QUEUES, InProcessQueue, RQQueue
from dropstream.jobs.runner import run_outbox_item
from dropstream.jobs.scheduler import tick
from dropstream.state import get_state
from dropstream.tenants.scope import unscoped


def run_until_idle(max_rounds: int = 50, channels: bool = True) -> int:
    """Run due work until none is left. Returns how many items ran. Needs an app context."""
    from dropstream.jobs.outbox import relay_due_work

    queue = get_state().queue
    ran = 0
    for _ in range(max_rounds):
        if channels:
            tick()
        else:
            with unscoped(db.session):
                relay_due_work()
        done = _work(queue)
        ran += done
        if not done and not due_count():
            return ran
    raise AssertionError(f"work still due after {max_rounds} rounds: {pending_kinds()}")


def _work(queue: object) -> int:
    if isinstance(queue, InProcessQueue):
        ids = queue.drain()
        for outbox_id in ids:
            run_outbox_item(outbox_id)
        return len(ids)
    if isinstance(queue, RQQueue):
        from flask import current_app

        from dropstream.jobs.worker import run_worker

        waiting = sum(queue.queue(name).count for name in QUEUES)
        if waiting:
            run_worker(current_app._get_current_object(), burst=True)  # type: ignore[attr-defined]
        return waiting
    raise TypeError(f"unknown queue {queue!r}")


def due_count() -> int:
    with unscoped(db.session):
        return db.session.scalar(select(func.count()).select_from(OutboxItem).where(
            IS_PENDING, OutboxItem.run_after <= utcnow())) or 0


def pending_kinds() -> list[str]:
    with unscoped(db.session):
        return list(db.session.scalars(select(OutboxItem.kind).where(OutboxItem.state == OutboxState.PENDING)))


def end_leases() -> None:
    """As if every run lease had run out (``RUN_LEASE`` passed): work a crashed worker held
    becomes free for another. Only while no worker runs, as a real lease ends only when its
    holder is gone or overdue."""
    with unscoped(db.session):
        outbox.end_leases(db.session)


def make_due() -> None:
    """Skip every backoff wait: make all pending work due now."""
    with unscoped(db.session):
        db.session.execute(update(OutboxItem).where(OutboxItem.state == OutboxState.PENDING)
                           .values(run_after=utcnow(), dispatched_at=None))
        db.session.commit()
