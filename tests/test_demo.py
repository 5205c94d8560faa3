"""The demo's orchestration: sandboxes through the demo hooks, a seeded provider with two
stores, shoppers, jobs and a web server — all running, then all stopped.

This runs on the reference plugin's in-memory sandboxes; the demo over the real connectors'
HTTP sandboxes is tested with them.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests
from sqlalchemy import select

from chaos._servers import listening_socket
from dropstream.catalog.models import Listing, ShippingRule
from dropstream.demo.runtime import DemoOptions, run_demo
from dropstream.extensions import db
from dropstream.orders.models import Order
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.tenants.scope import unscoped


@pytest.fixture
def app_config(app_config: dict[str, object]) -> dict[str, object]:
    # The reference sandboxes live in this process, so the demo's jobs must too.
    return {**app_config, "REDIS_URL": None}


def test_the_demo_runs_the_whole_loop_and_stops_cleanly(app) -> None:  # type: ignore[no-untyped-def]
    listener = listening_socket()  # held from now: nothing can take the port while it starts
    port = listener.getsockname()[1]
    said: list[str] = []
    health: list[int] = []
    threads_before = set(threading.enumerate())

    def say(line: str) -> None:
        said.append(line)
        if line.startswith("Press Ctrl-C") and not health:
            health.append(requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code)

    db.session.commit()
    try:
        run = run_demo(app, DemoOptions(port=port, fd=listener.fileno(), orders_per_minute=900,
                                        duration=6, progress_every=2), say=say)
    finally:
        listener.close()

    text = "\n".join(said)
    assert health == [200]
    assert "sign in as admin@demo-" in text and "API key      ds_" in text
    assert "orders:" in text and "DropStream demo stopped." in text
    assert run.stoppers == []
    assert not [t for t in set(threading.enumerate()) - threads_before if t.is_alive()], "a demo thread outlived it"
    with unscoped(db.session):
        orders = db.session.scalars(select(Order)).all()
        statuses = Counter(order.status for order in orders)
        holds = {order.hold_reason for order in orders if order.status is OrderStatus.ON_HOLD}
        assert len(orders) >= 15  # 900 a minute for 6 s on a possibly busy machine
        assert statuses[OrderStatus.AT_WAREHOUSE] >= len(orders) // 2
        assert holds <= {HoldReason.NO_SKU, HoldReason.UNMAPPED_SHIPPING_METHOD} and holds
        assert {l.store_sku for l in db.session.scalars(select(Listing))} == {"DS-TEE-BLK", "DS-GIFTBOX"}
        assert {r.store_method for r in db.session.scalars(select(ShippingRule))} == {"Free Shipping", "Express Delivery"}
