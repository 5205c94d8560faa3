"""Real-browser test support: the app served over HTTP by werkzeug in a thread, the pipeline
running behind it (the in-process queue's worker threads, or an RQ worker on Redis, plus the
scheduler), and Debian's Chromium driven by Playwright. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dropstream.jobs.queue import InProcessQueue
from dropstream.jobs.scheduler import start_in_process
from dropstream.state import get_state
from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


def require_browser() -> None:
    """Skip (with the reason) when Chromium or Playwright is missing, except in CI, where a
    missing browser must fail the run rather than quietly test nothing."""
    problem = None
    if not os.path.exists(CHROMIUM):
        problem = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium chromium-driver)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright for Python is not installed (pip install playwright)"
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run in CI: {problem}")
    pytest.skip(f"browser tests skipped: {problem}")


@contextmanager
def pipeline(app: Any, tick: float = 0.2) -> Iterator[None]:
    """Background work running as in production, only faster: the scheduler ticks every
    ``tick`` seconds and the configured queue's workers run what it dispatches."""
    queue = get_state(app).queue
    stop = threading.Event()
    worker = None
    if isinstance(queue, InProcessQueue):
        queue.start()
    else:
        worker_rq = _thread_worker(app, queue)

        def work() -> None:
            while not stop.is_set():
                worker_rq.work(burst=True)
                stop.wait(tick)

        worker = threading.Thread(target=work, name="console-test-rq-worker", daemon=True)
        worker.start()
    scheduler = start_in_process(app, tick_seconds=tick)
    try:
        yield
    finally:
        scheduler.stop(timeout=30)
        stop.set()
        if worker is not None:
            worker.join(30)


def _thread_worker(app: Any, queue: Any) -> Any:
    """An RQ worker for a background thread: the same jobs as `dropstream worker`, without the
    signal handlers (only the main thread may install them)."""
    from rq import SimpleWorker
    from rq.timeouts import TimerDeathPenalty

    from dropstream.jobs.queue import QUEUES

    class ThreadWorker(SimpleWorker):
        death_penalty_class = TimerDeathPenalty  # SIGALRM, the default, is main-thread only

        def _install_signal_handlers(self) -> None:
            pass

        def perform_job(self, *args: Any, **kwargs: Any) -> bool:
            with app.app_context():
                return super().perform_job(*args, **kwargs)

    return ThreadWorker([queue.queue(name) for name in QUEUES], connection=queue.connection)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/console/")
    assert "/console/sign-in" in page.url  # signed out: sent to sign in first
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_for(condition: Any, timeout: float = 20.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the pipeline")
        time.sleep(every)
