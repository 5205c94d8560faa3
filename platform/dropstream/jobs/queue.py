"""Where outbox work is handed to be run: RQ on Redis, or an in-process queue.

Either way the queue only carries an outbox id; the database row is the truth. Losing the queue
(Redis flushed, process killed) costs time, never work: the relay re-dispatches every pending row
whose dispatch lease has run out.
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import threading
from collections.abc import Sequence
from typing import IO, Protocol

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from dropstream.jobs import sole_runner

log = logging.getLogger(__name__)

#: Queues by urgency; workers listen to them in this order.
QUEUES = ("webhooks", "default", "bulk")
JOB_FUNCTION = "dropstream.jobs.runner.run_outbox_item"
#: A job is stopped after this many seconds: less than the unrenewed run lease
#: (``outbox.RUN_LEASE``, 300 s), and a worker renews its shorter heartbeat lease only while the
#: job runs, so no job still runs once its row's lease has ended and the row is handed out again.
JOB_TIMEOUT = 240


def job_id(outbox_id: int) -> str:
    """Deterministic: one live job per outbox row, however often it is dispatched."""
    return f"outbox-{outbox_id}"


class JobQueue(Protocol):
    name: str

    def dispatch(self, items: Sequence[tuple[int, str]]) -> None:
        """Hand ``(outbox_id, queue_name)`` pairs to workers. Must not raise on a queue outage
        (log it; the relay will dispatch again)."""

    def reachable(self) -> bool: ...

    def close(self) -> None: ...


class RQQueue:
    """RQ on Redis; ``dropstream worker`` processes run the jobs."""

    name = "rq"

    def __init__(self, redis_url: str) -> None:
        from redis import Redis

        self.connection = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._queues: dict[str, object] = {}

    def queue(self, name: str):  # type: ignore[no-untyped-def]
        from rq import Queue

        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.connection)
        return self._queues[name]

    def dispatch(self, items: Sequence[tuple[int, str]]) -> None:
        """Enqueue each row's job unless it is still waiting in its queue.

        Any other job under the row's id is stale. The database hands a row out again only
        when no worker holds its run lease, and a job cannot outlive that lease (its timeout is
        shorter, or its worker renews it while it runs: ``jobs/heartbeat.py``), so a job still
        "started" then belongs to a worker that died — SIGKILL leaves
        it started until RQ's own clean-up, up to twenty minutes later — and a job "queued" but
        no longer in its queue was lost between the queue and a worker.

        Three round trips whatever the number of items (statuses, queue positions of the
        queued ones, the enqueues): every webhook and every job dispatches.
        """
        from redis.exceptions import RedisError
        from rq import Queue
        from rq.job import Job, JobStatus

        if not items:
            return
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                for outbox_id, _queue_name in items:
                    pipe.hget(Job.key_for(job_id(outbox_id)), "status")
                statuses = [(status or b"").decode() for status in pipe.execute()]
            waiting = {item for item, status in zip(items, statuses)
                       if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED)}
            queued = [item for item, status in zip(items, statuses) if status == JobStatus.QUEUED]
            with self.connection.pipeline(transaction=False) as pipe:
                for outbox_id, queue_name in queued:
                    pipe.lpos(self.queue(queue_name).key, job_id(outbox_id))
                waiting |= {item for item, position in zip(queued, pipe.execute())
                            if position is not None}
            by_queue: dict[str, list[int]] = {}
            for item in dict.fromkeys(items):  # a row dispatched twice in one call: one job
                if item not in waiting:
                    by_queue.setdefault(item[1], []).append(item[0])
            if not by_queue:
                return
            with self.connection.pipeline() as pipe:
                for queue_name, outbox_ids in by_queue.items():
                    self.queue(queue_name).enqueue_many([Queue.prepare_data(
                        JOB_FUNCTION, args=(outbox_id,), job_id=job_id(outbox_id),
                        result_ttl=0, failure_ttl=7 * 24 * 3600, timeout=JOB_TIMEOUT,
                        meta={"outbox_id": outbox_id}) for outbox_id in outbox_ids], pipeline=pipe)
                pipe.execute()
        except RedisError as exc:
            log.warning("queue unavailable, the relay will dispatch again: %s", exc)

    def reachable(self) -> bool:
        from redis.exceptions import RedisError

        try:
            return bool(self.connection.ping())
        except RedisError:
            return False

    def close(self) -> None:
        self.connection.close()


class InProcessQueue:
    """The embedded default: worker threads inside the process, each in an app context.

    Threads start on :meth:`start` (the demo, ``dropstream serve``, tests that want them);
    until then dispatched ids wait in memory and the relay can always re-dispatch them. A
    process that starts them as the only one running work on its SQLite file first ends the
    leases a dead process left (``jobs/sole_runner``): that work goes again at once.
    """

    name = "in-process"

    def __init__(self, app: Flask, workers: int) -> None:
        self.app = app
        self.workers = workers
        self._pending: stdlib_queue.Queue[int | None] = stdlib_queue.Queue()
        self._live: set[int] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sole_runner: IO[str] | None = None

    def dispatch(self, items: Sequence[tuple[int, str]]) -> None:
        with self._lock:
            for outbox_id, _queue_name in items:
                if outbox_id in self._live:
                    continue
                self._live.add(outbox_id)
                self._pending.put(outbox_id)

    def start(self) -> None:
        if self._threads:
            return
        self._end_dead_processes_leases()
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"dropstream-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _end_dead_processes_leases(self) -> None:
        from dropstream.extensions import db
        from dropstream.jobs import outbox
        from dropstream.tenants.scope import unscoped

        with self.app.app_context():
            self._sole_runner = sole_runner.claim(db.engine)
            if self._sole_runner is None:
                return
            try:
                with unscoped(db.session):
                    ended = outbox.end_leases(db.session)
            except SQLAlchemyError as error:  # a database not migrated yet, say: start anyway
                db.session.rollback()
                log.warning("could not end the leases an earlier process left: %s", error)
                return
        if ended:
            log.warning("%d items were running when an earlier process stopped without finishing "
                        "them; they go again now", ended)

    def _work(self) -> None:
        from dropstream.jobs.runner import run_outbox_item

        while True:
            outbox_id = self._pending.get()
            if outbox_id is None:
                return
            try:
                with self.app.app_context():
                    run_outbox_item(outbox_id)
            except Exception:  # the runner records failures; this is a last resort
                log.exception("in-process job for outbox item %s crashed", outbox_id)
            finally:
                with self._lock:
                    self._live.discard(outbox_id)

    def drain(self) -> list[int]:
        """Take every waiting id (tests run them synchronously with ``run_pending``)."""
        taken: list[int] = []
        with self._lock:
            while True:
                try:
                    outbox_id = self._pending.get_nowait()
                except stdlib_queue.Empty:
                    break
                if outbox_id is not None:
                    taken.append(outbox_id)
                    self._live.discard(outbox_id)
        return taken

    def reachable(self) -> bool:
        return True

    def close(self) -> None:
        for _ in self._threads:
            self._pending.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        still_running = any(thread.is_alive() for thread in self._threads)
        self._threads.clear()
        if not still_running:  # else the lock goes with the process: its leases are live
            sole_runner.let_go(self._sole_runner)
            self._sole_runner = None


def build_queue(app: Flask) -> JobQueue:
    if app.config.get("REDIS_URL"):
        return RQQueue(app.config["REDIS_URL"])
    return InProcessQueue(app, int(app.config.get("JOBS_INLINE_WORKERS", 2)))
