"""Running work in threads at the same moment, as two workers or two requests would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from dropstream.extensions import db


def meet(barrier: threading.Barrier) -> None:
    """Wait until every thread has come this far, unless the database made one wait for
    another: then go on when the barrier times out."""
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass


def run_at_once(app: Any, jobs: Iterable[tuple[str, Callable[[], None]]]) -> list[BaseException]:
    """Run each ``(name, job)`` in a thread of that name, in an app context (and so a session and
    connection) of its own, committing when the job returns; returns what the jobs raised."""
    failures: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        with app.app_context():
            try:
                job()
                db.session.commit()
            except BaseException as error:  # noqa: BLE001 - returned to the test
                failures.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(job,), name=name) for name, job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return failures


def finishes_while_held(app: Any, holder: Callable[[], None], held: threading.Event,
                        release: threading.Event, work: Callable[[], None],
                        patience: float = 10.0) -> bool:
    """Run ``holder`` in a thread, as :func:`run_at_once` does: it sets ``held`` once it holds
    what the test is about (a lock, a transaction, a remote call) and keeps it until
    ``release`` is set. Then run ``work`` in another thread: True when it finished within
    ``patience`` seconds, while the holder still held. Both threads have ended, and what either
    raised is raised, when this returns."""
    failures: list[BaseException] = []

    def thread(name: str, job: Callable[[], None]) -> threading.Thread:
        return threading.Thread(target=lambda: failures.extend(run_at_once(app, [(name, job)])))

    holding, working = thread("holder", holder), thread("work", work)
    holding.start()
    try:
        if not held.wait(patience):
            raise AssertionError("the holder never took hold")
        working.start()
        working.join(patience)
        finished = not working.is_alive()
    finally:
        release.set()
        holding.join(30)
        if working.ident is not None:
            working.join(30)
    if failures:
        raise failures[0]
    return finished
