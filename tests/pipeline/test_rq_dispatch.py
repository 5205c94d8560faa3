"""Handing work to RQ: one job per outbox row in its queue, never two while one waits, and a
stale job (its worker died, or it was lost between the queue and a worker) replaced; and the
worker that runs them telling RQ it is alive."""

from __future__ import annotations

import pytest
from rq import Worker
from rq.job import Job, JobStatus
from rq.utils import now, utcparse

from dropstream.jobs.queue import RQQueue, job_id
from dropstream.jobs.worker import AppContextWorker
from dropstream.state import get_state


@pytest.fixture
def queue(app: object) -> RQQueue:
    queue = get_state().queue
    if not isinstance(queue, RQQueue):
        pytest.skip("RQ needs Redis (CI's PostgreSQL + Redis run executes this)")
    return queue


def _waiting(queue: RQQueue, name: str) -> list[str]:
    return queue.queue(name).job_ids


def test_each_row_gets_one_job_in_its_queue_however_often_it_is_dispatched(queue: RQQueue) -> None:
    queue.dispatch([(1, "webhooks"), (2, "default"), (2, "default"), (3, "bulk")])
    queue.dispatch([(1, "webhooks"), (2, "default")])  # the relay again, before any worker ran

    assert _waiting(queue, "webhooks") == [job_id(1)]
    assert _waiting(queue, "default") == [job_id(2)]
    assert _waiting(queue, "bulk") == [job_id(3)]
    job = Job.fetch(job_id(2), connection=queue.connection)
    assert job.args == (2,) and job.result_ttl == 0  # only the id travels; no result is kept


def test_a_stale_job_under_a_rows_id_is_replaced_and_a_scheduled_one_is_left(queue: RQQueue) -> None:
    queue.dispatch([(7, "default"), (8, "default"), (9, "default")])
    queue.connection.delete(queue.queue("default").key)  # all three left their queue: 7 to
    Job.fetch(job_id(7), connection=queue.connection).set_status(JobStatus.STARTED)  # a worker
    # that was killed, 8 was lost between the queue and a worker (still "queued"), 9 waits
    # scheduled for later
    Job.fetch(job_id(9), connection=queue.connection).set_status(JobStatus.SCHEDULED)

    queue.dispatch([(7, "default"), (8, "default"), (9, "default")])

    assert sorted(_waiting(queue, "default")) == [job_id(7), job_id(8)]


def test_a_workers_heartbeat_keeps_it_and_its_executions_registered_for_the_timeout(
        app: object, queue: RQQueue) -> None:
    # The heartbeat's three commands go in one round trip (jobs/worker.py); what it says must
    # stay what RQ's says: the worker alive until the timeout, as the queue's dashboard shows.
    worker = AppContextWorker([queue.queue("default")], connection=queue.connection)
    worker.app = app  # type: ignore[assignment]
    worker.register_birth()
    try:
        queue.connection.sadd(worker.executions_key, "an-execution")
        before = now()
        worker.heartbeat(timeout=500)
        assert 490 <= queue.connection.ttl(worker.key) <= 500
        assert 490 <= queue.connection.ttl(worker.executions_key) <= 500
        beat = utcparse(queue.connection.hget(worker.key, "last_heartbeat").decode())
        assert before.replace(microsecond=0) <= beat <= now()
        assert Worker.find_by_key(worker.key, connection=queue.connection) is not None
    finally:
        worker.register_death()
