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
        demo=demo, session=db.session, merchant=merchant, warehouse=warehouse, catalog=CATALOG)
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
    assert {h["scope"] for h in hooks} == {"store/order/created", "store/order/statusUpdated"}
    assert all(h["is_active"] and h["destination"] == f"{demo.public_base_url}/connectors/bigcommerce/webhooks"
               for h in hooks)
    # The catalogue's awkward products exist as the demo needs them.
    assert sandbox.inventory_level(store.external_id, MUG.sku) == MUG.stock
    products = demo.app.extensions[EXTENSION].products[store.external_id]
    assert set(products) == {product.name for product in CATALOG.products} and ENGRAVING.name in products


def test_hook_demo_place_order(demo: DemoContext) -> None:
    sandbox = _started(demo)
    store = _store(demo)

    order_id = get_state(demo.app).plugin_manager.hook.demo_place_order(
        demo=demo, store=store, lines=[(TEE, 2), (ENGRAVING, 1)], shipping_method=UNMAPPED_METHOD)

    placed = sandbox.get_order(store.external_id, int(order_id))
    assert placed["status_id"] == 11
    assert [(p["sku"], p["quantity"]) for p in placed["products"]] == [(TEE.sku, 2), ("", 1)]
    assert placed["shipping_addresses"][0]["shipping_method"] == UNMAPPED_METHOD
    db.session.commit()
    assert sandbox.wait_for_webhooks(10)
    # Delivered to DropStream and kept as hints (created, then the move to Awaiting Fulfillment).
    assert db.session.scalar(select(func.count()).select_from(InboxEvent)) == 2
