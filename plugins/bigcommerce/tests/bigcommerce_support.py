"""Fixtures and helpers for the BigCommerce connector's tests (imported by the test modules; not a
``conftest.py``, which would clash with the core's).

Everything talks over real HTTP: the BigCommerce sandbox runs on a free loopback port, and where
the sandbox calls DropStream (webhooks, the uninstall callback), DropStream is served on one too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.conftest import live_server, running_app
from tests.factories import MerchantFactory, ProviderFactory, ShippingRuleFactory, WarehouseFactory

from dropstream.connectors.base import ConnectorContext
from dropstream.extensions import db
from dropstream.orders.models import Order
from dropstream.stores import services
from dropstream.stores.credentials import write_credentials
from dropstream.stores.models import Store
from dropstream.stores.setup import run_setup_checks
from dropstream.tenants.scope import TenantScope
from dropstream.testing import plugin as reference_plugin
from dropstream.testing.reference import WarehouseSandbox, warehouse_sandbox
from dropstream_bigcommerce import plugin as bigcommerce_plugin
from dropstream_bigcommerce.connector import BigCommerceConnector
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import SandboxStore, new_store

SHIPPING_METHOD = "Free Shipping"
SHIP_CODE = "GRND"


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Any]:
    """The core's ``app`` fixture with this plugin registered beside the reference connectors;
    5xx retries inside one call are shortened so fault tests stay fast."""
    with running_app(
        {**app_config, "BIGCOMMERCE_RETRY_DELAYS": (0.01, 0.02)},
        plugins=[("reference", reference_plugin), ("bigcommerce", bigcommerce_plugin)],
    ) as app:
        yield app


@pytest.fixture
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(webhook_retry_scale=0.001, slow_seconds=2.0) as running:
        yield running


@pytest.fixture
def shop(sandbox: BigCommerceSandbox) -> SandboxStore:
    """A sandbox store with a store-level API account holding DropStream's scopes."""
    return new_store(sandbox)


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """DropStream on a free loopback port (webhooks and callbacks reach it there); also its
    PUBLIC_BASE_URL for this test."""
    with live_server(app) as base:
        yield base


def credentials_of(shop: SandboxStore) -> dict[str, str]:
    return {
        key: shop.credentials[key] for key in ("client_id", "client_secret", "access_token")
    } | {"store_hash": shop.hash}


def connector(
    shop: SandboxStore,
    credentials: dict[str, Any] | None = None,
    public_base_url: str = "http://dropstream.test",
    **settings: Any,
) -> BigCommerceConnector:
    """A connector bound to ``shop`` without a DropStream store row (unit-level calls)."""
    return BigCommerceConnector(
        ConnectorContext(
            "bigcommerce",
            1,
            {"api_base_url": shop.sandbox.api_base_url, **settings},
            credentials if credentials is not None else credentials_of(shop),
            public_base_url=public_base_url,
        )
    )


def add_products(shop: SandboxStore, *specs: tuple[str | None, str]) -> list[dict[str, Any]]:
    """``(sku, tracking)`` pairs → products with 10 units each."""
    return [
        shop.sandbox.add_product(
            shop.hash,
            name=f"Product {sku or 'without SKU'}",
            sku=sku,
            inventory_tracking=tracking,
            inventory_level=10,
        )
        for sku, tracking in specs
    ]


@dataclass
class Wired:
    """A merchant's BigCommerce store (on the sandbox) linked to the reference warehouse."""

    shop: SandboxStore
    store_id: int
    wms: WarehouseSandbox

    @property
    def store(self) -> Store:
        return db.session.get(Store, self.store_id)

    def order(self, external_id: int | str) -> Order:
        db.session.expire_all()
        return (
            db.session.query(Order)
            .filter_by(store_id=self.store_id, external_id=str(external_id))
            .one()
        )

    def deliver_webhooks(self) -> None:
        """Let the sandbox deliver what it has queued (nothing of ours holds the database)."""
        db.session.commit()
        assert self.shop.sandbox.wait_for_webhooks(10), "webhooks still in flight"


def wire(
    shop: SandboxStore, name: str = "acme", *, activate: bool = True, **settings: Any
) -> Wired:
    """Create the DropStream store through ``stores.services`` (validated, encrypted), with a
    shipping rule for the sandbox's default method, and run its set-up checks."""
    provider = ProviderFactory(name=f"{name} 3PL", slug=f"{name}-3pl")
    merchant = MerchantFactory(provider_id=provider.id, name=f"{name} goods")
    warehouse = WarehouseFactory(provider_id=provider.id, settings={"sandbox": name})
    write_credentials(warehouse, {"token": "wms-token"})
    store = services.create_store(
        db.session,
        TenantScope(provider.id),
        {
            "name": f"{name} BigCommerce",
            "connector_id": "bigcommerce",
            "merchant_id": merchant.id,
            "warehouse_id": warehouse.id,
            "settings": {"api_base_url": shop.sandbox.api_base_url, **settings},
            "credentials": credentials_of(shop),
        },
    )
    ShippingRuleFactory(
        provider_id=provider.id,
        merchant_id=merchant.id,
        store_id=store.id,
        store_method=SHIPPING_METHOD,
        match_key=SHIPPING_METHOD.lower(),
        warehouse_code=SHIP_CODE,
    )
    db.session.commit()
    if activate:
        checks = run_setup_checks(db.session, store)
        db.session.commit()
        assert all(c.passed for c in checks if c.required), [c for c in checks if not c.passed]
    return Wired(shop, store.id, warehouse_sandbox(name))
