"""``dropstream worker``: an RQ worker running outbox items inside an application context.

It is a :class:`rq.SimpleWorker` (no fork per job): every job is one short, idempotent outbox
item whose state lives in the database, so a crash mid-job costs a lease timeout, not work —
and skipping the fork makes each job several times cheaper.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from flask import Flask
from rq import SimpleWorker

from dropstream.jobs.queue import QUEUES, RQQueue

log = logging.getLogger(__name__)


class AppContextWorker(SimpleWorker):
    """RQ's worker running each job inside the application's context (``app``, set before it
    works)."""

    app: Flask
    stop_asked = False

    def perform_job(self, *args: Any, **kwargs: Any) -> bool:
        with self.app.app_context():
            return super().perform_job(*args, **kwargs)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_asked = True  # SIGTERM / Ctrl-C: really stop, not a Redis failure
        super().request_stop(signum, frame)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, its three commands sent together. RQ sends this heartbeat on its own
        (in no pipeline) three times per job, one round trip per command: nine of the twenty
        or so round trips each job costs, where three do."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        with self.connection.pipeline(transaction=False) as beat:
            super().heartbeat(timeout, beat)
            beat.execute()


def run_worker(app: Flask, queues: Sequence[str] = QUEUES, burst: bool = False,
               with_scheduler: bool = False, redis_wait: float = 1.0) -> bool:
    """Work the given queues (most urgent first) until stopped, or until empty with ``burst``.

    A restarted or unreachable Redis does not end the process: RQ gives up on a Redis error
    anywhere but its wait for the next job (finishing a job, its heartbeat), so the worker is
    started again once Redis answers (every ``redis_wait`` seconds it looks). Nothing is lost
    meanwhile: the work is in the database, and the relay queues again what Redis forgot.
    """
    from redis.exceptions import RedisError
    from rq.exceptions import StopRequested

    queue = app.extensions["dropstream"].queue
    if not isinstance(queue, RQQueue):
        raise RuntimeError("REDIS_URL is not set: the embedded default runs jobs in-process, "
                           "no `dropstream worker` is needed.")

    worked = False
    while True:
        worker = AppContextWorker([queue.queue(name) for name in queues],
                                  connection=queue.connection)
        worker.app = app
        try:
            worked = worker.work(burst=burst, with_scheduler=with_scheduler,
                                 logging_level="WARNING") or worked
        except RedisError as error:  # RQ's own clean-up on the way out needs Redis too
            log.warning("worker %s stopped: Redis failed (%s)", worker.name, error)
        if burst or worker.stop_asked:
            return worked
        log.warning("the worker stopped on a Redis failure; it starts again when Redis answers")
        try:
            while not queue.reachable():
                time.sleep(redis_wait)
        except StopRequested:  # asked to stop while waiting (RQ's signal handler is still set)
            return worked
