"""Restarts, small: a job's PostgreSQL connection cut mid-transaction (as a restart cuts it) must
leave its work free for a retry at once; Redis shut down without saving while a worker is inside
a job, back empty after a few seconds, then flushed, must leave the worker alive and every order
arriving once. ``chaos/restarts.py`` is the full-size run (PostgreSQL restarted ``immediate`` and
``fast`` too, on a private cluster).

Redis is a private ``redis-server`` on a free port (never the shared one); the database is a
scratch database on the session's PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from chaos._servers import Hub, PrivateRedis, running_hub
from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.orders.statuses import OrderStatus
from dropstream.testing.databases import scratch_database
from dropstream.testing.jobs import make_due, run_until_idle
from dropstream.testing.reference import ReferenceWarehouse
from tests.pipeline.conftest import wire

DATABASE_URL = os.environ.get("DATABASE_URL") or ""
on_postgres = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgres"),
    reason="cuts a PostgreSQL connection: CI's PostgreSQL + Redis run executes this")
with_services = pytest.mark.skipif(
    not (DATABASE_URL.startswith("postgres") and os.environ.get("REDIS_URL")
         and shutil.which("redis-server")),
    reason="restarts a private Redis under separate DropStream processes on PostgreSQL: CI's "
    "PostgreSQL + Redis run executes this",
)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def hub(redis: PrivateRedis, tmp_path: Path) -> Iterator[Hub]:
    with scratch_database(DATABASE_URL, tmp_path, "dropstream_restarts") as url:
        with running_hub(url, redis.url, {"workers": 1}, folder=tmp_path / "hub") as running:
            yield running


@on_postgres
def test_a_job_whose_database_connection_is_cut_is_released_for_its_retry(
    app: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = wire("acme")
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    forward = ReferenceWarehouse.forward_order

    def cut_then_forward(self: ReferenceWarehouse, order: object) -> object:
        monkeypatch.setattr(ReferenceWarehouse, "forward_order", forward)  # once
        # What a PostgreSQL restart does to the worker's connection, mid-transaction.
        db.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        raise AssertionError("the connection survived its own termination")

    monkeypatch.setattr(ReferenceWarehouse, "forward_order", cut_then_forward)

    run_until_idle()

    [item] = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.forward"))
    assert item.state is OutboxState.PENDING and item.leased_until <= utcnow(), (
        "released for its retry, not held until its run lease ends")
    assert "terminating connection" in (item.last_error or "")
    assert loop.order(external_id).status is OrderStatus.RETRYING
    make_due()
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1


@with_services
def test_a_worker_lives_through_redis_restarts_and_flushes(hub: Hub, redis: PrivateRedis) -> None:
    # The WMS answers this order after 3 s; Redis is gone from the start of that call until
    # after its end, so the worker meets a dead Redis when it finishes the job.
    hub.wms_admin("inject", kind="slow", on="create_order", seconds=3)
    first = hub.place_order()
    deadline = time.monotonic() + 20
    while not hub.job_running("order.forward"):
        assert time.monotonic() < deadline, "no worker took the order to the WMS"
        time.sleep(0.05)
    redis.restart(down_seconds=5)
    second = hub.place_order(1)  # while the queue is empty: the relay must queue its work again
    time.sleep(2)
    redis.flushall()
    third = hub.place_order()

    hub.catch_up()  # the dispatch leases of what Redis forgot run out
    report, _seconds = hub.settle(timeout=40)

    assert hub.processes["worker-0"].alive, "the worker process exited"
    assert report.ok, report.summary()
    references = [o["reference"] for o in hub.wms_orders()]
    for store, order in ((0, first), (1, second), (0, third)):
        assert references.count(f"DS-{hub.store_ids[store]}-{order}") == 1
