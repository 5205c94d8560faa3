"""A running item's lease lives as long as its worker does: worker processes on PostgreSQL hold a
short lease and renew it while the handler runs, so a long job is never taken over by a second
worker, and a killed worker's work comes back within the short lease. The embedded default keeps
the long lease and no heartbeat."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import select, update

from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs import outbox
from dropstream.jobs.heartbeat import lease_policy
from dropstream.jobs.models import LeasedWork, OutboxItem, OutboxState
from dropstream.jobs.outbox import RUN_LEASE, add_work, lease
from dropstream.jobs.registry import JOBS, JobSpec
from dropstream.jobs.runner import run_outbox_item
from dropstream.tenants.scope import unscoped
from tests.pipeline.conftest import Loop

#: How long the slow handler below takes: several short leases.
SLOW_SECONDS = 2.0


def slow_job(item: LeasedWork) -> None:
    """Handler of the test kind ``test.slow``: a long upstream call, holding no database lock."""
    time.sleep(SLOW_SECONDS)


def _add_slow_work(loop: Loop) -> int:
    add_work(db.session, kind="test.slow", subject_id=loop.tenant.store.id,
             store_id=loop.tenant.store.id, merchant_id=loop.tenant.merchant.id,
             provider_id=loop.tenant.provider.id)
    db.session.commit()
    return db.session.scalars(select(OutboxItem.id).where(OutboxItem.kind == "test.slow")).one()


def slow_batch_job(item: LeasedWork) -> None:
    """Handler of the test kind ``test.slow_batch``: takes along the other rows of its kind
    waiting for the store, works as long as ``slow_job``, and ends them with itself."""
    taken = outbox.take_along(db.session, item, 10, lease_policy().hold)
    time.sleep(SLOW_SECONDS)
    outbox.finish_taken(db.session, taken)


#: Set when the slow row of a backlog (below) starts: the rows after it wait their turn.
_slow_started = threading.Event()


def backlog_job(item: LeasedWork) -> None:
    """Handler of the test kind ``test.backlog``, which works through backlogs: the row whose
    payload says so is as slow as ``slow_job``."""
    if item.payload.get("slow"):
        _slow_started.set()
        time.sleep(SLOW_SECONDS)


def _item(item_id: int) -> OutboxItem:
    db.session.expire_all()
    with unscoped(db.session):
        return db.session.get(OutboxItem, item_id)


@pytest.fixture
def short_heartbeat(app: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Leases of 0.8 s renewed every 0.2 s: the production figures (60 s, 15 s) scaled down 75
    times, and with them any pause of the whole process. Late in a full run the test process
    holds over a million objects, and a full collection of them stalls every thread for up to
    2 s (measured with ``gc.callbacks``): longer than such a lease, and so a lapse no worker
    process would see (there, a 2 s pause is a thirtieth of a lease). The collector waits
    while these tests run."""
    if lease_policy().renew_every is None:
        pytest.skip("heartbeats run for worker processes on PostgreSQL (CI's PostgreSQL + Redis "
                    "run executes this)")
    monkeypatch.setattr(outbox, "HEARTBEAT_LEASE", timedelta(seconds=0.8))
    monkeypatch.setattr(outbox, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setitem(JOBS, "test.slow", JobSpec(f"{__name__}:slow_job"))
    monkeypatch.setitem(JOBS, "test.slow_batch", JobSpec(f"{__name__}:slow_batch_job"))
    monkeypatch.setitem(JOBS, "test.backlog", JobSpec(f"{__name__}:backlog_job",
                                                      works_through_backlogs=True))
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _run_while_another_worker_tries(run_id: int, try_id: int, after: threading.Event | None = None
                                    ) -> tuple[str, list[bool]]:
    """Run item ``run_id`` in a worker thread while a second worker tries all along (or from
    when ``after`` is set) to lease ``try_id``. Returns the run's outcome and whether each try
    got the lease."""
    app = current_app._get_current_object()
    outcome: list[str] = []

    def worker() -> None:
        with app.app_context():
            outcome.append(run_outbox_item(run_id))

    running = threading.Thread(target=worker)
    running.start()
    if after is not None:
        after.wait(timeout=10 * SLOW_SECONDS)
    taken_over = []
    while running.is_alive():
        time.sleep(0.15)
        with unscoped(db.session):
            taken_over.append(lease(db.session, try_id) is not None)
    running.join()
    return outcome[0] if outcome else "crashed", taken_over


def test_a_job_longer_than_its_lease_keeps_it_and_no_second_worker_takes_over(
        loop: Loop, short_heartbeat: None) -> None:
    item_id = _add_slow_work(loop)

    outcome, taken_over = _run_while_another_worker_tries(item_id, item_id)

    assert outcome == "done"
    assert len(taken_over) >= 8 and not any(taken_over), "the lease lapsed while the job ran"
    item = _item(item_id)
    assert item.state is OutboxState.DONE and item.attempts == 1 and item.leased_until is None


def test_rows_a_job_took_along_keep_their_lease_while_it_runs(
        loop: Loop, short_heartbeat: None) -> None:
    for n in range(2):
        add_work(db.session, kind="test.slow_batch", subject_id=n, store_id=loop.tenant.store.id,
                 merchant_id=loop.tenant.merchant.id, provider_id=loop.tenant.provider.id)
    db.session.commit()
    first, other = db.session.scalars(select(OutboxItem.id).where(
        OutboxItem.kind == "test.slow_batch").order_by(OutboxItem.id)).all()
    with unscoped(db.session):  # both waited: a backlog
        db.session.execute(update(OutboxItem).values(run_after=utcnow() - timedelta(seconds=5)))
        db.session.commit()

    outcome, taken_over = _run_while_another_worker_tries(first, other)  # the other's own job

    assert outcome == "done"
    assert len(taken_over) >= 8 and not any(taken_over), "a row taken along lapsed while the job ran"
    assert _item(other).state is OutboxState.DONE and _item(other).attempts == 1


def test_rows_a_job_goes_on_with_keep_their_lease_while_they_wait_their_turn(
        loop: Loop, short_heartbeat: None) -> None:
    """A job that waited in a backlog leases the rows waiting behind it and runs them one
    after another: one of them takes several short leases, and the row after it must still
    be this worker's when its turn comes (a second worker never takes it meanwhile)."""
    for n, slow in enumerate((False, True, False)):
        add_work(db.session, kind="test.backlog", subject_id=n, store_id=loop.tenant.store.id,
                 merchant_id=loop.tenant.merchant.id, provider_id=loop.tenant.provider.id,
                 payload={"slow": slow})
    db.session.commit()
    first, slow, last = db.session.scalars(select(OutboxItem.id).where(
        OutboxItem.kind == "test.backlog").order_by(OutboxItem.id)).all()
    with unscoped(db.session):  # they waited, with no queue job on the way for the others
        db.session.execute(update(OutboxItem).values(run_after=utcnow() - timedelta(seconds=5)))
        db.session.execute(update(OutboxItem).where(OutboxItem.id != first)
                           .values(dispatched_at=None))
        db.session.commit()
    _slow_started.clear()

    outcome, taken_over = _run_while_another_worker_tries(first, last, after=_slow_started)

    assert outcome == "done"
    assert len(taken_over) >= 8 and not any(taken_over), "a row waiting its turn lapsed"
    assert [(_item(i).state, _item(i).attempts) for i in (first, slow, last)] == [
        (OutboxState.DONE, 1)] * 3


def test_one_thread_renews_every_running_jobs_lease_and_ends_once_none_runs(
        loop: Loop, short_heartbeat: None) -> None:
    first = _add_slow_work(loop)
    add_work(db.session, kind="test.slow", subject_id=0, store_id=loop.tenant.store.id,
             merchant_id=loop.tenant.merchant.id, provider_id=loop.tenant.provider.id)
    db.session.commit()
    second = db.session.scalars(select(OutboxItem.id).where(OutboxItem.id != first)).one()
    app = current_app._get_current_object()
    outcomes: list[str] = []

    def worker(item_id: int) -> None:
        with app.app_context():
            outcomes.append(run_outbox_item(item_id))

    earlier = set(threading.enumerate())  # an earlier test's heartbeat may still be asleep

    def heartbeats() -> int:
        return sum(thread.name.startswith("lease") and thread not in earlier
                   for thread in threading.enumerate())

    workers = [threading.Thread(target=worker, args=(item_id,)) for item_id in (first, second)]
    for thread in workers:
        thread.start()
    seen = []
    while any(thread.is_alive() for thread in workers):
        seen.append(heartbeats())
        time.sleep(0.1)
    for thread in workers:
        thread.join()

    assert outcomes == ["done", "done"]
    assert max(seen) == 1, "one heartbeat for both jobs"
    assert all(_item(item_id).attempts == 1 for item_id in (first, second)), "no lease lapsed"
    time.sleep(3 * outbox.HEARTBEAT_SECONDS)
    assert heartbeats() == 0, "the heartbeat ended once no job ran"


def test_a_dead_workers_lease_lapses_after_the_short_lease_not_the_long_one(
        loop: Loop, short_heartbeat: None) -> None:
    item_id = _add_slow_work(loop)
    policy = lease_policy()
    with unscoped(db.session):
        held = lease(db.session, item_id, policy.hold)  # then its worker dies: nothing renews
    assert held is not None
    assert _item(item_id).leased_until <= utcnow() + timedelta(seconds=1)

    time.sleep(1.0)
    assert run_outbox_item(item_id) == "done", "another worker takes it once the lease lapsed"
    assert _item(item_id).attempts == 2


def test_a_lease_released_for_a_retry_is_not_renewed(loop: Loop, short_heartbeat: None) -> None:
    item_id = _add_slow_work(loop)
    with unscoped(db.session):
        held = lease(db.session, item_id, outbox.HEARTBEAT_LEASE)
        assert held is not None and outbox.renew(db.session, held, outbox.HEARTBEAT_LEASE)
        item = db.session.get(OutboxItem, item_id)
        item.leased_until = utcnow()  # what the runner does when the work will be retried
        db.session.commit()
        assert not outbox.renew(db.session, held, outbox.HEARTBEAT_LEASE), "an ended lease stays ended"


def test_the_embedded_default_holds_the_long_lease_without_a_heartbeat(app: object) -> None:
    from dropstream.jobs.queue import InProcessQueue
    from dropstream.state import get_state

    if not isinstance(get_state().queue, InProcessQueue):
        pytest.skip("the embedded default's queue only")
    policy = lease_policy()
    assert policy.hold == RUN_LEASE and policy.renew_every is None
