"""The reference connectors pass the connector contract suite (and so keep it honest)."""

from __future__ import annotations

from typing import Any

import pytest

from dropstream.connectors.base import ConnectorContext
from dropstream.testing.contract import StorefrontContract, WarehouseContract
from dropstream.testing.reference import (
    ReferenceStore,
    ReferenceWarehouse,
    store_sandbox,
    warehouse_sandbox,
)


class StoreHarness:
    def __init__(self) -> None:
        self.sandbox = store_sandbox("contract")

    def connector(self, token: str = "store-token") -> ReferenceStore:
        return ReferenceStore(ConnectorContext("reference-store", 1, {"sandbox": "contract"}, {"token": token}))

    def connector_with_bad_credentials(self) -> ReferenceStore:
        return self.connector("wrong")

    def create_order(self, lines: list[dict[str, Any]]) -> str:
        return self.sandbox.create_order(lines)

    def add_product(self, sku: str, tracked: bool) -> None:
        self.sandbox.add_product(sku, tracked)

    def inject_transient_failure(self) -> None:
        self.sandbox.faults.fail("transient")

    def store_shipments(self, external_id: str) -> list[dict[str, Any]]:
        return [s for s in self.sandbox.shipments.values() if s["order_id"] == external_id]


class WmsHarness:
    def __init__(self) -> None:
        self.sandbox = warehouse_sandbox("contract")

    def connector(self, token: str = "wms-token") -> ReferenceWarehouse:
        return ReferenceWarehouse(ConnectorContext("reference-wms", 1, {"sandbox": "contract"}, {"token": token}))

    def connector_with_bad_credentials(self) -> ReferenceWarehouse:
        return self.connector("wrong")

    def connector_taking_batches(self) -> ReferenceWarehouse:
        self.sandbox.batch_limit = 20
        return self.connector()

    def ship(self, reference: str) -> None:
        self.sandbox.ship(reference)

    def set_stock(self, sku: str, quantity: int) -> None:
        self.sandbox.set_stock(sku, quantity)

    def orders_with_reference(self, reference: str) -> int:
        return len(self.sandbox.by_reference(reference))

    def inject_transient_failure(self) -> None:
        self.sandbox.faults.fail("transient")


class TestReferenceStore(StorefrontContract):
    @pytest.fixture
    def harness(self, app: object) -> StoreHarness:
        return StoreHarness()


class TestReferenceWarehouse(WarehouseContract):
    @pytest.fixture
    def harness(self, app: object) -> WmsHarness:
        return WmsHarness()
