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
from typing import Protocol

from flask import Flask

log = logging.getLogger(__name__)

#: Queues by urgency; workers listen to them in this order.
QUEUES = ("webhooks", "default", "bulk")
JOB_FUNCTION = "dropstream.jobs.runner.run_outbox_item"


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
        from redis.exceptions import RedisError
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        live = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
        try:
            for outbox_id, queue_name in items:
                try:
                    if Job.fetch(job_id(outbox_id), connection=self.connection).get_status() in live:
                        continue
                except NoSuchJobError:
                    pass
                self.queue(queue_name).enqueue_call(
                    JOB_FUNCTION, args=(outbox_id,), job_id=job_id(outbox_id),
                    result_ttl=0, failure_ttl=7 * 24 * 3600, timeout=600,
                    meta={"outbox_id": outbox_id},
                )
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
    until then dispatched ids wait in memory and the relay can always re-dispatch them.
    """

    name = "in-process"

    def __init__(self, app: Flask, workers: int) -> None:
        self.app = app
        self.workers = workers
        self._pending: stdlib_queue.Queue[int | None] = stdlib_queue.Queue()
        self._live: set[int] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

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
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"dropstream-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

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
        self._threads.clear()


def build_queue(app: Flask) -> JobQueue:
    if app.config.get("REDIS_URL"):
        return RQQueue(app.config["REDIS_URL"])
    return InProcessQueue(app, int(app.config.get("JOBS_INLINE_WORKERS", 2)))
