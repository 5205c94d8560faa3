"""The plugin's part in ``dropstream demo``: its sandbox starts and stops as a demo service, and
the warehouse it creates is stocked from the catalogue, serves the catalogue's ship codes, takes
orders for a store that sets no account, and pushes shipments back to DropStream."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select
from tests.conftest import _schema, app_config, database_url
from tests.factories import MerchantFactory, ProviderFactory, ShippingRuleFactory, StoreFactory
from wms_support import app, served

from dropstream.demo_support import DemoCatalog, DemoContext, DemoProduct
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment
from dropstream.state import get_state
from dropstream.stores.connections import warehouse_connector
from dropstream.stores.credentials import write_credentials
from dropstream.testing.jobs import run_until_idle
from dropstream.testing.reference import store_sandbox

CATALOG = DemoCatalog(
    products=(
        DemoProduct("TSHIRT", "T-shirt", stock=40),
        DemoProduct("MUG", "Mug", warehouse_sku="WH-MUG", stock=12),
        DemoProduct(None, "Gift wrap"),
        DemoProduct("GIFTSET", "Gift set", components={"TSHIRT": 1, "WH-MUG": 2}),
    ),
    shipping_methods={"Standard shipping": "STD", "Express": "EXP", "Pickup": None},
)


def ours(hook: str) -> Any:
    """Call ``hook`` on this plugin alone (the reference plugin takes part in demos too)."""
    pm = get_state().plugin_manager
    return pm.subset_hook_caller(hook, remove_plugins=[pm.get_plugin("reference")])


@pytest.fixture
def demo(app: Any, served: str) -> Iterator[DemoContext]:
    context = DemoContext(app=app, public_base_url=served, rng=random.Random(5))
    try:
        yield context
    finally:
        for service in context.services.values():
            service.stop()


def test_hook_demo_start_services(demo: DemoContext) -> None:
    ours("demo_start_services")(demo=demo)

    service = demo.services["wms"]
    summary = requests.get(f"{service.url}/_sandbox/summary", timeout=5).json()["result"]
    assert summary["url"] == service.url and service.url.startswith("http://127.0.0.1:")
    assert 5 <= summary["settings"]["ship_delay"] <= 15 and summary["settings"]["auto_ship"]
    service.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{service.url}/_sandbox/summary", timeout=2)
    demo.services.clear()


def test_hook_demo_create_warehouse(demo: DemoContext) -> None:
    provider = ProviderFactory(name="Demo 3PL", slug="demo-3pl")
    assert (
        ours("demo_create_warehouse")(
            demo=demo, session=db.session, provider=provider, catalog=CATALOG
        )
        is None
    )  # no sandbox running: not ours
    ours("demo_start_services")(demo=demo)
    url = demo.services["wms"].url

    warehouse = ours("demo_create_warehouse")(
        demo=demo, session=db.session, provider=provider, catalog=CATALOG
    )
    db.session.commit()

    assert warehouse.connector_id == "wms_generic" and warehouse.settings["base_url"] == url
    warehouse_id = warehouse.id
    connector = warehouse_connector(warehouse)
    assert connector.setup_checks() and all(c.passed for c in connector.setup_checks())
    stock = {
        level.sku: level.quantity for level in connector.fetch_inventory(None, full=True).levels
    }
    assert stock == CATALOG.warehouse_stock() == {"TSHIRT": 40, "WH-MUG": 12}
    assert {"STD", "EXP", "GRND"} <= {m.code for m in connector.ship_methods()}

    # A store linked without an account uses the demo account; its order ships and the shipment
    # is pushed back (signed) while the demo runs.
    merchant = MerchantFactory(provider_id=provider.id)
    store = StoreFactory(
        provider_id=provider.id,
        merchant_id=merchant.id,
        warehouse_id=warehouse.id,
        settings={"sandbox": "demo"},
        warehouse_account={},
    )
    write_credentials(store, {"token": "store-token"})
    ShippingRuleFactory(
        provider_id=provider.id,
        merchant_id=merchant.id,
        store_id=store.id,
        store_method="Standard shipping",
        match_key="standard shipping",
        warehouse_code="STD",
    )
    db.session.commit()
    requests.post(
        f"{url}/_sandbox/configure", json={"ship_delay": 0.05}, timeout=5
    ).raise_for_status()
    store_sandbox("demo").create_order(
        [{"sku": "TSHIRT", "quantity": 1}], shipping_method="Standard shipping"
    )
    run_until_idle()
    db.session.remove()

    deadline, pushed = time.monotonic() + 10, []
    while not pushed and time.monotonic() < deadline:
        time.sleep(0.1)
        pushed = db.session.scalars(select(Shipment)).all()
        db.session.rollback()  # hold no transaction while the server thread writes
    assert pushed and pushed[0].tracking_number.startswith("1Z")
    summary = requests.get(f"{url}/_sandbox/summary", timeout=5).json()["result"]
    assert (
        summary["push"]
        == f"{demo.public_base_url}/connectors/wms_generic/warehouses/{warehouse_id}"
    )
