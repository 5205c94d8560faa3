"""The plugin's part in ``dropstream demo``, through the hooks the demo calls: a sandbox started,
a store created in it with the catalogue and connected in DropStream, orders placed that its
webhooks announce."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from bigcommerce_support import app, served
from sqlalchemy import func, select
from tests.conftest import _schema, app_config, database_url
from tests.factories import MerchantFactory, ProviderFactory, WarehouseFactory

from dropstream.demo.catalog import CATALOG, ENGRAVING, MUG, TEE, UNMAPPED_METHOD
from dropstream.demo_support import DemoContext
from dropstream.extensions import db
from dropstream.jobs.models import InboxEvent
from dropstream.state import get_state
from dropstream.stores.credentials import read_credentials
from dropstream.stores.models import Store, StoreState
from dropstream_bigcommerce.demo import EXTENSION
from dropstream_bigcommerce.hooks import SCOPES


@pytest.fixture
def demo(app: Any, served: str) -> Iterator[DemoContext]:
    context = DemoContext(app=app, public_base_url=served, rng=random.Random(7))
    yield context
    for service in context.services.values():
        service.stop()


def _started(demo: DemoContext) -> Any:
    get_state(demo.app).plugin_manager.hook.demo_start_services(demo=demo)
    return demo.app.extensions[EXTENSION].sandbox


def _store(demo: DemoContext) -> Store:
    provider = ProviderFactory()
    merchant = MerchantFactory(provider_id=provider.id, name="Demo Goods")
    warehouse = WarehouseFactory(provider_id=provider.id, settings={"sandbox": "demo"})
    store = get_state(demo.app).plugin_manager.hook.demo_create_store(
        demo=demo, session=db.session, merchant=merchant, warehouse=warehouse, catalog=CATALOG
    )
    db.session.commit()
    return store


def test_hook_demo_start_services(demo: DemoContext) -> None:
    sandbox = _started(demo)
    [service] = [s for s in demo.services.values() if "BigCommerce" in s.name]
    assert service.url == sandbox.api_base_url
    with requests.get(f"{service.url}/_sandbox", timeout=5) as answer:
        assert answer.status_code == 200
    service.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{service.url}/_sandbox", timeout=2)


def test_hook_demo_create_store(demo: DemoContext) -> None:
    sandbox = _started(demo)
    store = _store(demo)

    assert store.connector_id == "bigcommerce" and store.state is StoreState.ACTIVE
    credentials = read_credentials(store)
    assert credentials["store_hash"] == store.external_id and credentials["webhook_secret"]
    assert credentials["access_token"] not in (store.credentials_ciphertext or "")
    assert store.settings["api_base_url"] == sandbox.api_base_url
    hooks = sandbox.hooks(store.external_id)
    assert {h["scope"] for h in hooks} == set(SCOPES)
    assert all(
        h["is_active"]
        and h["destination"] == f"{demo.public_base_url}/connectors/bigcommerce/webhooks"
        for h in hooks
    )
    # The catalogue's awkward products exist as the demo needs them.
    assert sandbox.inventory_level(store.external_id, MUG.sku) == MUG.stock
    products = demo.app.extensions[EXTENSION].products[store.external_id]
    assert (
        set(products) == {product.name for product in CATALOG.products}
        and ENGRAVING.name in products
    )


def test_hook_demo_place_order(demo: DemoContext) -> None:
    sandbox = _started(demo)
    store = _store(demo)

    order_id = get_state(demo.app).plugin_manager.hook.demo_place_order(
        demo=demo, store=store, lines=[(TEE, 2), (ENGRAVING, 1)], shipping_method=UNMAPPED_METHOD
    )

    placed = sandbox.get_order(store.external_id, int(order_id))
    assert placed["status_id"] == 11
    assert [(p["sku"], p["quantity"]) for p in placed["products"]] == [(TEE.sku, 2), ("", 1)]
    assert placed["shipping_addresses"][0]["shipping_method"] == UNMAPPED_METHOD
    db.session.commit()
    assert sandbox.wait_for_webhooks(10)
    # Delivered to DropStream and kept as hints (created, then the move to Awaiting Fulfillment).
    assert db.session.scalar(select(func.count()).select_from(InboxEvent)) == 2


def test_the_demo_runs_on_the_bigcommerce_and_wms_sandboxes(app_config: dict[str, object]) -> None:
    """``dropstream demo`` with the real connectors: orders placed in the BigCommerce sandbox
    reach the WMS sandbox by webhook, and come back shipped."""
    import socket
    import threading

    from tests.conftest import _empty_everything

    from dropstream.app import create_app
    from dropstream.demo.runtime import DemoOptions, run_demo
    from dropstream.orders.models import Order
    from dropstream.orders.statuses import OrderStatus
    from dropstream.tenants.scope import unscoped
    from dropstream_bigcommerce import plugin as bigcommerce_plugin
    from dropstream_wms_generic import plugin as wms_plugin

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo_app = create_app(
        {**app_config, "REDIS_URL": None},
        env={},
        load_entry_points=False,
        plugins=[("wms_generic", wms_plugin), ("bigcommerce", bigcommerce_plugin)],
    )
    threads_before = set(threading.enumerate())
    with demo_app.app_context():
        _empty_everything(demo_app)
        try:
            run_demo(
                demo_app,
                DemoOptions(port=port, orders_per_minute=600, duration=8, progress_every=4),
                say=lambda line: None,
            )
            with unscoped(db.session):
                orders = db.session.scalars(select(Order)).all()
                sent = [
                    o
                    for o in orders
                    if o.status
                    in (
                        OrderStatus.AT_WAREHOUSE,
                        OrderStatus.SHIPPED,
                        OrderStatus.PARTIALLY_SHIPPED,
                    )
                ]
                holds = {o.hold_reason.value for o in orders if o.status is OrderStatus.ON_HOLD}
            assert len(orders) >= 10 and len(sent) >= len(orders) // 2
            assert holds <= {
                "no_sku",
                "unmapped_shipping_method",
            }  # the catalogue's deliberate ones
            assert not [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
        finally:
            db.session.remove()
            get_state(demo_app).queue.close()
            db.engine.dispose()
