"""``dropstream worker``: an RQ worker running outbox items inside an application context.

It is a :class:`rq.SimpleWorker` (no fork per job): every job is one short, idempotent outbox
item whose state lives in the database, so a crash mid-job costs a lease timeout, not work —
and skipping the fork makes each job several times cheaper.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flask import Flask

from dropstream.jobs.queue import QUEUES, RQQueue

log = logging.getLogger(__name__)


def run_worker(app: Flask, queues: Sequence[str] = QUEUES, burst: bool = False,
               with_scheduler: bool = False) -> bool:
    """Work the given queues (most urgent first) until stopped, or until empty with ``burst``."""
    from rq import SimpleWorker

    queue = app.extensions["dropstream"].queue
    if not isinstance(queue, RQQueue):
        raise RuntimeError("REDIS_URL is not set: the embedded default runs jobs in-process, "
                           "no `dropstream worker` is needed.")

    class AppContextWorker(SimpleWorker):
        def perform_job(self, *args: Any, **kwargs: Any) -> bool:
            with app.app_context():
                return super().perform_job(*args, **kwargs)

    worker = AppContextWorker([queue.queue(name) for name in queues], connection=queue.connection)
    return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="WARNING")
