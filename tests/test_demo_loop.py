"""The whole loop over the real connectors and their HTTP sandboxes, as `dropstream demo` runs
it: BigCommerce sandbox → DropStream → generic-WMS sandbox → shipments and stock back.

On the embedded default the jobs run in threads; in CI (PostgreSQL + Redis) the demo starts real
`dropstream worker` processes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import flask_migrate
import pytest
import requests
from sqlalchemy import select

from chaos._servers import listening_socket
from dropstream.app import create_app
from dropstream.demo.runtime import DemoOptions, DemoRun, start
from dropstream.demo_support import DemoContext
from dropstream.extensions import db
from dropstream.inventory.models import InventoryItem, ItemState
from dropstream.stores.models import Store
from dropstream.tenants.scope import unscoped

TWO_MINUTES = 120


@pytest.fixture
def running_demo(app_config: dict[str, object], fresh_database_url: str) -> Iterator[tuple[DemoRun, str]]:
    listener = listening_socket()  # held from now: nothing can take the port while it starts
    port = listener.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": fresh_database_url, "ALLOW_LOOPBACK": True,
                      "PUBLIC_BASE_URL": base}, env={}, load_entry_points=True)
    with app.app_context():
        flask_migrate.upgrade()
        db.session.remove()
    run = DemoRun(DemoContext(app=app, public_base_url=base, rng=random.Random(3)))
    said: list[str] = []
    try:
        start(app, run, DemoOptions(port=port, fd=listener.fileno(), orders_per_minute=120,
                                    workers=2), say=said.append)
        yield run, base
    finally:
        run.stop()
        listener.close()
        with app.app_context():
            db.engine.dispose()


def test_orders_ship_with_tracking_in_the_store_within_two_minutes(running_demo) -> None:  # type: ignore[no-untyped-def]
    run, base = running_demo
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {run.setup.api_key}"
    deadline = time.monotonic() + TWO_MINUTES
    shipped: list[dict] = []
    while time.monotonic() < deadline and len(shipped) < 3:
        time.sleep(2)
        shipped = api.get(f"{base}/api/v1/orders", params={"status": "shipped"}, timeout=10).json()["items"]
    assert len(shipped) >= 3, "no shipped orders within two minutes"

    sandbox = run.demo.services["BigCommerce sandbox"].url
    for summary in shipped[:3]:
        order = api.get(f"{base}/api/v1/orders/{summary['id']}", timeout=10).json()
        tracking = {s["tracking_number"] for s in order["shipments"]}
        assert tracking and all(tracking), "shipped orders carry tracking numbers"
        with run.demo.app.app_context(), unscoped(db.session):
            store_hash = db.session.get(Store, order["store_id"]).external_id
            db.session.remove()
        remote = requests.get(f"{sandbox}/_sandbox/stores/{store_hash}/orders/{order['external_id']}", timeout=10).json()
        assert remote["status_id"] == 2, "the store shows the order Shipped"
        assert {s["tracking_number"] for s in remote["shipments"]} == tracking


def test_stock_reaches_the_store_for_tracked_items_only(running_demo) -> None:  # type: ignore[no-untyped-def]
    run, _base = running_demo
    app = run.demo.app
    deadline = time.monotonic() + TWO_MINUTES
    items: dict[str, InventoryItem] = {}
    while time.monotonic() < deadline:
        with app.app_context(), unscoped(db.session):
            items = {i.store_sku: i for i in db.session.scalars(select(InventoryItem).where(
                InventoryItem.store_id == run.store_ids[0]))}
            db.session.expunge_all()
            db.session.remove()
        if items.get("DS-MUG") is not None and items["DS-MUG"].state is ItemState.PUSHED \
                and items.get("DS-CAP") is not None and items["DS-CAP"].state is ItemState.SKIPPED:
            break
        time.sleep(2)
    assert items["DS-MUG"].state is ItemState.PUSHED
    assert (items["DS-CAP"].state, items["DS-CAP"].reason) == (ItemState.SKIPPED, "tracking_off")
    sandbox = run.demo.services["BigCommerce sandbox"].url
    with app.app_context(), unscoped(db.session):
        store = db.session.get(Store, items["DS-MUG"].store_id)
        store_hash = store.external_id
        db.session.remove()
    level = requests.get(f"{sandbox}/_sandbox/stores/{store_hash}/inventory/DS-MUG", timeout=10).json()
    assert level["inventory_level"] == items["DS-MUG"].pushed_quantity > 0
