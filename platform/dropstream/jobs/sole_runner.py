"""The embedded default's claim to be the one process running its database's work.

The embedded default renews no run lease (``jobs/heartbeat.py``), so its leases last
``RUN_LEASE`` (300 s), longer than any job: work a process was running when it died would wait
that long after a restart. But on SQLite the embedded default is one process. When it starts and
no other process runs work on the same database file, every lease still live was left by a
process that died, and its work can go again at once.

A lock says whether another process runs work there: an exclusive ``flock`` on a file beside
the database, taken when the in-process queue starts, held while it runs, and let go by the
kernel when the process ends, however it ends (SIGKILL included). A process that cannot take it
(another one runs work on this file) leaves every lease as it is. So does PostgreSQL without
Redis, where several processes may each run in-process workers and no file is shared.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

#: Beside the database file: ``dropstream.db`` → ``dropstream.db.jobs-lock``.
LOCK_SUFFIX = ".jobs-lock"


def lock_path(engine: Engine) -> Path | None:
    """The lock file of a SQLite database file; None for an in-memory database or another
    kind of database."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = Path(url.database).resolve()
    return database.with_name(database.name + LOCK_SUFFIX)


def claim(engine: Engine) -> IO[str] | None:
    """Take the lock: the open lock file (keep it open while work runs; :func:`let_go` after),
    or None when another process holds it, or there is nothing to lock."""
    path = lock_path(engine)
    if path is None:
        return None
    try:
        import fcntl
    except ImportError:  # no flock (Windows): leases are left to run out, as before
        return None
    lock = path.open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        log.warning("another process runs DropStream's work on %s: work it leaves running if it "
                    "stops waits out its lease (SQLite serves one process best)", path.name)
        return None
    return lock


def let_go(lock: IO[str] | None) -> None:
    if lock is not None:
        lock.close()  # closing the last descriptor of the file lets the flock go
