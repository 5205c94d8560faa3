"""The connector contract suite (``dropstream.testing.contract``), run against the BigCommerce
sandbox over real HTTP."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

from typing import Any

import pytest
from bigcommerce_support import app, connector, credentials_of, sandbox, shop
from tests.conftest import _schema, app_config, database_url

from dropstream.connectors.base import StorefrontConnector
from dropstream.testing.contract import StorefrontContract
from dropstream_bigcommerce.sandbox.testing import SandboxStore

#: Webhooks must go to an https address on port 443; nothing listens there in these tests.
PUBLIC = "https://127.0.0.1"


class SandboxHarness:
    def __init__(self, shop: SandboxStore) -> None:
        self.shop = shop
        self.sandbox = shop.sandbox

    def connector(self) -> StorefrontConnector:
        return connector(self.shop, public_base_url=PUBLIC)

    def connector_with_bad_credentials(self) -> StorefrontConnector:
        return connector(
            self.shop,
            {**credentials_of(self.shop), "access_token": "not-the-token"},
            public_base_url=PUBLIC,
        )

    def _ensure(self, sku: str, tracking: str = "product") -> None:
        try:
            self.sandbox.inventory_level(self.shop.hash, sku)
        except KeyError:
            self.sandbox.add_product(
                self.shop.hash,
                name=f"Product {sku}",
                sku=sku,
                inventory_tracking=tracking,
                inventory_level=50,
            )

    def create_order(self, lines: list[dict[str, Any]]) -> str:
        for line in lines:
            self._ensure(line["sku"])
        return str(self.sandbox.create_order(self.shop.hash, lines=lines))

    def add_product(self, sku: str, tracked: bool) -> None:
        self._ensure(sku, "product" if tracked else "none")

    def inject_transient_failure(self) -> None:
        # More 503s than the client retries within one call.
        self.sandbox.inject("503", store_hash=self.shop.hash, count=5)

    def store_shipments(self, external_id: str) -> list[dict[str, Any]]:
        order = self.sandbox.get_order(self.shop.hash, int(external_id))
        return [
            {**shipment, "tracking": shipment["tracking_number"]} for shipment in order["shipments"]
        ]


class TestBigCommerceContract(StorefrontContract):
    @pytest.fixture
    def harness(self, app: Any, shop: SandboxStore) -> SandboxHarness:
        return SandboxHarness(shop)
