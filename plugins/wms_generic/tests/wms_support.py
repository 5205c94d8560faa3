"""Fixtures and helpers for the generic WMS plugin's tests (imported by the test modules; not a
``conftest.py``, which would clash with the core's).

Everything talks over real HTTP: the WMS sandbox runs on a free loopback port, and where the
sandbox pushes to DropStream, DropStream is served on one too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.conftest import live_server, running_app
from tests.factories import (
    MerchantFactory,
    ProviderFactory,
    ShippingRuleFactory,
    StoreFactory,
    WarehouseFactory,
)

from dropstream.connectors.base import ConnectorContext
from dropstream.extensions import db
from dropstream.stores.credentials import write_credentials
from dropstream.stores.models import Store, Warehouse
from dropstream.testing import plugin as reference_plugin
from dropstream.testing.reference import StoreSandbox, store_sandbox
from dropstream_wms_generic import plugin as wms_plugin
from dropstream_wms_generic.connector import GenericWmsConnector
from dropstream_wms_generic.sandbox import WmsSandbox

ACCOUNT = "ACME"
TOKEN = "wms-token"
INBOUND_KEY = "inbound-key-0123456789abcdef"
SIGNING_SECRET = "signing-secret-0123456789abcdef-0123456789"


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Any]:
    """The core's ``app`` fixture, with this plugin registered beside the reference connectors."""
    with running_app(app_config, plugins=[("reference", reference_plugin), ("wms_generic", wms_plugin)]) as app:
        yield app


@pytest.fixture
def wms() -> Iterator[WmsSandbox]:
    """A sandbox that ships only when told to (``advance``/``ship``) and pushes only when told
    (``deliver_pushes``), with account ACME."""
    with WmsSandbox(auto=False, ship_delay=0, partial_ratio=0) as sandbox:
        sandbox.add_account(ACCOUNT)
        yield sandbox


def connector(
    wms: WmsSandbox, credentials: dict[str, Any] | None = None, **settings: Any
) -> GenericWmsConnector:
    return GenericWmsConnector(
        ConnectorContext(
            "wms_generic",
            1,
            {"base_url": wms.url, "default_account": ACCOUNT, **settings},
            credentials if credentials is not None else {"token": TOKEN},
        )
    )


@dataclass
class Wired:
    """A merchant's reference store linked to a generic-WMS warehouse on the sandbox."""

    wms: WmsSandbox
    shop: StoreSandbox
    store_id: int
    warehouse_id: int

    @property
    def store(self) -> Store:
        return db.session.get(Store, self.store_id)

    @property
    def warehouse(self) -> Warehouse:
        return db.session.get(Warehouse, self.warehouse_id)


def wire(wms: WmsSandbox, name: str = "acme", account: str = ACCOUNT, **settings: Any) -> Wired:
    provider = ProviderFactory(name=f"{name} 3PL", slug=f"{name}-3pl")
    merchant = MerchantFactory(provider_id=provider.id, name=f"{name} goods")
    warehouse = WarehouseFactory(
        provider_id=provider.id,
        connector_id="wms_generic",
        settings={"base_url": wms.url, **settings},
    )
    store = StoreFactory(
        provider_id=provider.id,
        merchant_id=merchant.id,
        warehouse_id=warehouse.id,
        settings={"sandbox": name},
        external_id=f"{name}-store",
        warehouse_account={"customer_code": account},
    )
    write_credentials(store, {"token": "store-token"})
    write_credentials(
        warehouse, {"token": TOKEN, "inbound_key": INBOUND_KEY, "signing_secret": SIGNING_SECRET}
    )
    ShippingRuleFactory(
        provider_id=provider.id,
        merchant_id=merchant.id,
        store_id=store.id,
        store_method="Ground",
        match_key="ground",
        warehouse_code="GRND",
    )
    db.session.commit()
    return Wired(wms, store_sandbox(name), store.id, warehouse.id)


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """DropStream itself on a free loopback port (for the sandbox's pushes); its base URL."""
    with live_server(app) as base:
        yield base


def inbound_url(base: str, warehouse_id: int) -> str:
    return f"{base}/connectors/wms_generic/warehouses/{warehouse_id}"
