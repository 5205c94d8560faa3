"""The embedded runtime — worker threads and the scheduler thread beside the app — moves many
orders concurrently with nothing lost and nothing duplicated (on SQLite, and on PostgreSQL in CI).
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from chaos._servers import listening_socket, wait_for
from dropstream.app import create_app
from dropstream.db import utcnow
from dropstream.demo.runtime import dropstream_command, process_env
from dropstream.extensions import db
from dropstream.jobs import outbox, sole_runner
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.jobs.scheduler import start_in_process, wait_idle
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.state import get_state
from dropstream.stores.models import Channel
from dropstream.tenants.scope import unscoped
from tests.conftest import TEST_KEYS
from tests.factories import MerchantFactory, ProviderFactory
from tests.pipeline.conftest import wire


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    # This test is about the in-process queue, whatever the environment's REDIS_URL says.
    return {**app_config, "REDIS_URL": None, "JOBS_INLINE_WORKERS": 3}


def test_orders_flow_through_worker_threads_exactly_once(app: object) -> None:
    loops = [wire(name) for name in ("north", "south")]
    for loop in loops:
        loop.store.channel(Channel.INVENTORY).enabled = False
    db.session.commit()
    created = {loop.tenant.store.id: [loop.shop.create_order([{"sku": f"SKU-{n % 7}", "quantity": 1 + n % 3}])
                                      for n in range(60)] for loop in loops}
    db.session.commit()  # no idle transaction of ours may hold SQLite's write lock meanwhile
    queue = get_state().queue
    queue.start()
    stop = start_in_process(app, tick_seconds=0.05)  # type: ignore[arg-type]
    try:
        assert wait_idle(app, timeout=60)  # type: ignore[arg-type]
    finally:
        stop.stop()
        queue.close()

    db.session.expire_all()
    orders = db.session.scalars(select(Order)).all()
    assert Counter(o.status for o in orders) == {OrderStatus.AT_WAREHOUSE: 120}, _unfinished()
    for loop in loops:
        references = Counter(o["reference"] for o in loop.wms.orders)
        assert len(references) == len(created[loop.tenant.store.id]) and set(references.values()) == {1}


def _unfinished() -> str:
    """What the work not done says of itself (this test failed once in many runs, with orders
    left queued after the runtime reported idle: this says why, if it happens again)."""
    rows = db.session.execute(
        select(OutboxItem.kind, OutboxItem.attempts, OutboxItem.run_after, OutboxItem.last_error)
        .where(OutboxItem.state != OutboxState.DONE)
    ).all()
    return f"{len(rows)} items not done: " + "; ".join(str(tuple(row)) for row in rows[:10])


# -- work a dead process was running ------------------------------------------------------------


def _sqlite_app(tmp_path: Path, tables: bool = True) -> Any:
    """An embedded default of its own on a SQLite file, whatever the session's database (the
    lock these tests are about is a file beside SQLite's); with its tables, unless not."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'dropstream.db'}",
                      "REDIS_URL": None, "SECRET_KEY": "embedded-test-secret-key-0123456789abcdef",
                      "ENCRYPTION_KEYS": list(TEST_KEYS), "INSTANCE_PATH": str(tmp_path)}, env={})
    if tables:
        with app.app_context():
            db.create_all()
    return app


def _left_running(app: Any) -> int:
    """A forward as a worker leaves it while it runs (leased for ``RUN_LEASE``, its attempt
    counted), of an order gone meanwhile: when it runs again it finds nothing to send and ends."""
    with app.app_context(), unscoped(db.session):
        merchant = MerchantFactory(provider_id=ProviderFactory().id)
        now = utcnow()
        item = OutboxItem(provider_id=merchant.provider_id, merchant_id=merchant.id,
                          kind="order.forward", subject_id=999_999, dedupe_key="order.forward:999999",
                          attempts=1, run_after=now, dispatched_at=now,
                          leased_until=now + outbox.RUN_LEASE)
        db.session.add(item)
        db.session.commit()
        return item.id


def _state(app: Any, outbox_id: int) -> tuple[OutboxState, bool]:
    """The item's state, and whether a worker still holds it."""
    with app.app_context(), unscoped(db.session):
        item = db.session.get(OutboxItem, outbox_id)
        assert item is not None
        return item.state, item.leased_until is not None and item.leased_until > utcnow()


def test_work_a_killed_process_was_running_goes_again_as_soon_as_it_starts_again(
        tmp_path: Path) -> None:
    app = _sqlite_app(tmp_path)
    listener = listening_socket()  # a supervisor's: the port outlives each process
    port = listener.getsockname()[1]

    def serve() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            dropstream_command("serve", "--fd", str(listener.fileno()), "--quiet"),
            env=process_env(app), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(listener.fileno(),))

    first, second = serve(), None
    try:
        # It serves once its workers run: it took the lock before, as the only process.
        wait_for("the first process", lambda: _serving(port), timeout=60)
        assert _lock_is_held(app)
        outbox_id = _left_running(app)  # the first process's job, when SIGKILL comes
        first.kill()
        first.wait(timeout=30)
        second = serve()
        # Without the lock the work would wait out its lease: 300 s.
        wait_for("the forward to run again", lambda: _state(app, outbox_id)[0] is OutboxState.DONE,
                 timeout=60)
        assert _serving(port)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        listener.close()
    with app.app_context():
        db.engine.dispose()


def test_a_process_that_is_not_the_only_one_running_work_leaves_every_lease_alone(
        tmp_path: Path) -> None:
    app = _sqlite_app(tmp_path)
    outbox_id = _left_running(app)
    with app.app_context():
        other_process = sole_runner.claim(db.engine)  # as a live process holds it
    assert other_process is not None
    queue = get_state(app).queue
    try:
        queue.start()
        assert _state(app, outbox_id) == (OutboxState.PENDING, True)
    finally:
        queue.close()
        sole_runner.let_go(other_process)

    queue.start()  # now the only one: the lease was left by no live process
    try:
        assert _state(app, outbox_id)[1] is False
    finally:
        queue.close()
    with app.app_context():
        db.engine.dispose()


def test_workers_start_on_a_database_not_migrated_yet(tmp_path: Path) -> None:
    # Only the lock's holder looks for leases to end: with no tables yet it says so and goes on,
    # as the rest of the process does until `dropstream db upgrade` runs.
    app = _sqlite_app(tmp_path, tables=False)
    queue = get_state(app).queue
    queue.start()
    try:
        assert _lock_is_held(app)
    finally:
        queue.close()
    assert not _lock_is_held(app)  # let go when its workers stopped
    with app.app_context():
        db.engine.dispose()


def _serving(port: int) -> bool:
    with requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
        return response.ok


def _lock_is_held(app: Any) -> bool:
    """Whether some process holds the embedded default's lock on ``app``'s database."""
    with app.app_context():
        lock = sole_runner.claim(db.engine)
    sole_runner.let_go(lock)
    return lock is None
