"""The embedded runtime — worker threads and the scheduler thread beside the app — moves many
orders concurrently with nothing lost and nothing duplicated (on SQLite, and on PostgreSQL in CI).
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.jobs.scheduler import start_in_process, wait_idle
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.state import get_state
from dropstream.stores.models import Channel
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
