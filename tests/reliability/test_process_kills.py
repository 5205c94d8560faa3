"""Process kills, small: real ``dropstream serve``, ``dropstream worker`` and ``dropstream
scheduler`` processes on PostgreSQL and Redis, the sandboxes and the demo's shoppers in this
process; a worker SIGKILLed inside a WMS call, then processes SIGKILLed at random and restarted
during the load; the invariant checker must then find nothing lost, duplicated or
unacknowledged. ``chaos/process_kills.py`` is the full-size run.

The waits a real outage costs (a dead worker's run lease, the store channels' intervals) are
ended at once after the load with ``Hub.catch_up`` — after the live workers stopped warmly, so
only dead workers' leases end — to keep this short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from chaos._servers import Hub, listening_socket, scratch_hub, wait_for
from chaos.process_kills import run_kills
from dropstream.app import create_app
from dropstream.demo.runtime import dropstream_command, process_env
from dropstream.extensions import db
from tests.conftest import TEST_KEYS

DATABASE_URL = os.environ.get("DATABASE_URL") or ""
REDIS_URL = os.environ.get("REDIS_URL") or ""
needs_services = pytest.mark.skipif(
    not (DATABASE_URL.startswith("postgres") and REDIS_URL),
    reason="kills separate processes sharing PostgreSQL and Redis: the embedded default has "
    "one process (CI's PostgreSQL + Redis run executes this)",
)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    with scratch_hub(DATABASE_URL, REDIS_URL, {"workers": 1}, folder=tmp_path) as running:
        yield running


@needs_services
def test_processes_killed_mid_job_and_at_random_lose_and_duplicate_nothing(hub: Hub) -> None:
    # First a worker killed inside a WMS call (the WMS takes 5 s to answer this one): its job
    # stays "started" in Redis, and the order must still reach the WMS once, by another worker.
    hub.wms_admin("inject", kind="slow", on="create_order", seconds=5)
    first = hub.place_order()
    deadline = time.monotonic() + 20
    while not hub.job_running("order.forward"):
        assert time.monotonic() < deadline, "no worker took the order to the WMS"
        time.sleep(0.05)
    hub.processes["worker-0"].kill()
    hub.processes["worker-0"].start()

    # Then the web process, the worker and the scheduler killed at random under load.
    result = run_kills(hub, seed=11, seconds=10, orders_per_minute=120, kills=6, gap=(1.0, 2.0),
                       restart_after=(0.0, 1.0), catch_up=True, settle_timeout=45)

    report = result["report"]
    assert report.ok, report.summary() + f"\nkills: {result['kill_log']}"
    assert result["kills"] >= 3 and report.checked["store orders eligible"] >= 12, result
    references = [o["reference"] for o in hub.wms_orders()]
    assert references.count(f"DS-{hub.store_ids[0]}-{first}") == 1


def test_serve_runs_the_web_application_in_its_own_process_until_sigterm(
    fresh_database_url: str, tmp_path: Path
) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": fresh_database_url, "REDIS_URL": None,
                      "SECRET_KEY": "serve-test-secret-key-0123456789abcdef",
                      "ENCRYPTION_KEYS": list(TEST_KEYS), "INSTANCE_PATH": str(tmp_path)}, env={})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    # As a supervisor starts it (socket activation): on a socket it holds, already listening.
    listener = listening_socket()
    port = listener.getsockname()[1]
    serving = subprocess.Popen(
        dropstream_command("serve", "--fd", str(listener.fileno()), "--quiet"),
        env=process_env(app), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        pass_fds=(listener.fileno(),))

    def healthy() -> bool:
        with requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            # The embedded default: this process also runs the jobs.
            return response.json() == {"status": "ok", "database": "ok", "queue": {
                "backend": "in-process", "status": "ok"}}

    try:
        wait_for("dropstream serve", healthy, timeout=60)
    finally:
        serving.send_signal(signal.SIGTERM)
        output, _ = serving.communicate(timeout=30)
        listener.close()
    assert serving.returncode == 0, output.decode()
    assert f"serving on http://127.0.0.1:{port}" in output.decode()
