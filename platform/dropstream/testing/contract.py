"""The connector contract suite: tests any connector package runs against itself.

Subclass :class:`StorefrontContract` or :class:`WarehouseContract` in your package's tests and
provide the fixtures they need; pytest collects the inherited tests::

    from dropstream.testing.contract import StorefrontContract

    class TestMyStore(StorefrontContract):
        @pytest.fixture
        def harness(self, my_sandbox):
            return MyStoreHarness(my_sandbox)   # implements StorefrontHarness

The suite asserts what the core relies on: the declared identity and schemas, complete orders,
idempotent writes (a repeated fulfillment or order reference never duplicates), an outcome for
every inventory item, and typed errors for remote failures. The reference connectors in
:mod:`dropstream.testing.reference` pass it; so must every connector.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import pytest
from marshmallow import Schema

from dropstream.connectors.base import (
    AuthError,
    Capability,
    ConnectorRole,
    StorefrontConnector,
    TransientError,
    WarehouseConnector,
)
from dropstream.connectors.types import (
    Address,
    CancelOutcome,
    FulfillmentData,
    FulfillmentLine,
    InventoryOutcome,
    InventoryUpdate,
    OrderData,
    SetupCheck,
    WarehouseLine,
    WarehouseOrder,
    WarehouseOrderAck,
)


class StorefrontHarness(Protocol):
    """Drives the remote store (its sandbox) for the suite."""

    def connector(self) -> StorefrontConnector: ...
    def connector_with_bad_credentials(self) -> StorefrontConnector: ...
    def create_order(self, lines: list[dict[str, Any]]) -> str:
        """Create an order at the monitored status; lines are ``{"sku", "quantity"}``."""
    def add_product(self, sku: str, tracked: bool) -> None: ...
    def inject_transient_failure(self) -> None:
        """Make the next call fail the way an outage does (5xx, reset, timeout)."""
    def store_shipments(self, external_id: str) -> list[dict[str, Any]]:
        """The shipments the store holds for an order (each with at least ``tracking``)."""


class WarehouseHarness(Protocol):
    def connector(self) -> WarehouseConnector: ...
    def connector_with_bad_credentials(self) -> WarehouseConnector: ...
    def ship(self, reference: str) -> None:
        """Ship every line of the warehouse order with this reference."""
    def set_stock(self, sku: str, quantity: int) -> None: ...
    def orders_with_reference(self, reference: str) -> int: ...
    def inject_transient_failure(self) -> None: ...
    # Optional, for a connector that can take batches: ``connector_taking_batches()``, a
    # connector set up so that its ``forward_batch_limit()`` is over 1.


class _Common:
    role: ConnectorRole

    def test_declares_identity_and_schemas(self, harness: Any) -> None:
        connector = harness.connector()
        assert isinstance(connector.id, str) and connector.id
        assert connector.name
        assert connector.role is self.role
        assert all(isinstance(c, Capability) for c in connector.capabilities)
        for schema in (connector.settings_schema, connector.credentials_schema):
            assert isinstance(schema, type) and issubclass(schema, Schema)

    def test_credential_fields_are_write_only(self, harness: Any) -> None:
        schema = harness.connector().credentials_schema()
        dumped_fields = [name for name, field in schema.fields.items() if not field.load_only]
        assert dumped_fields == [], f"credentials would be serialised back: {dumped_fields}"

    def test_setup_checks_pass_with_good_credentials(self, harness: Any) -> None:
        checks = list(harness.connector().setup_checks())
        assert checks and all(isinstance(c, SetupCheck) for c in checks)
        assert all(c.passed for c in checks if c.required), [c for c in checks if not c.passed]

    def test_setup_checks_fail_with_a_fix_for_bad_credentials(self, harness: Any) -> None:
        checks = list(harness.connector_with_bad_credentials().setup_checks())
        failed = [c for c in checks if not c.passed]
        assert failed and all(c.fix for c in failed)


class StorefrontContract(_Common):
    role = ConnectorRole.STOREFRONT

    def test_fetch_order_reads_the_whole_order(self, harness: StorefrontHarness) -> None:
        lines = [{"sku": f"SKU-{n}", "quantity": n} for n in range(1, 4)]
        external_id = harness.create_order(lines)
        order = harness.connector().fetch_order(external_id)
        assert isinstance(order, OrderData)
        assert order.external_id == external_id
        assert [(l.sku, l.quantity) for l in order.lines] == [(l["sku"], l["quantity"]) for l in lines]
        assert order.destinations and all(isinstance(d.address, Address) for d in order.destinations)
        assert order.placed_at.tzinfo is not None and order.updated_at.tzinfo is not None

    def test_orders_read_by_id_are_what_fetch_order_reads(self, harness: StorefrontHarness) -> None:
        """``fetch_orders_by_id`` is optional (reading nothing is allowed); what it does read
        must be the order as ``fetch_order`` reads it, under the id asked for."""
        external_ids = [harness.create_order([{"sku": f"BATCH-{n}", "quantity": n}]) for n in (1, 2)]
        connector = harness.connector()
        found = connector.fetch_orders_by_id([*external_ids, "no-such-order"])
        assert set(found) <= set(external_ids)
        for external_id, order in found.items():
            assert order == connector.fetch_order(external_id)

    def test_fetch_orders_finds_new_orders_and_moves_the_cursor(self, harness: StorefrontHarness) -> None:
        connector = harness.connector()
        first = connector.fetch_orders(None)
        external_id = harness.create_order([{"sku": "CURSOR-1", "quantity": 1}])
        seen: list[str] = [o.external_id for o in first.orders]
        page = connector.fetch_orders(first.cursor)
        seen += [o.external_id for o in page.orders]
        while page.more:
            page = connector.fetch_orders(page.cursor)
            seen += [o.external_id for o in page.orders]
        assert external_id in seen

    def test_a_sweep_over_more_than_a_page_changed_at_once_ends_and_sees_each(
            self, harness: StorefrontHarness) -> None:
        """A flash sale: more orders than fit in a page, changed within the overlap window a
        sweep reads again. Following ``more`` must end, having returned every one of them (a
        cursor that re-applies the overlap on each page returns the first page forever)."""
        created = {harness.create_order([{"sku": f"SALE-{n}", "quantity": 1}]) for n in range(120)}
        connector = harness.connector()
        seen: set[str] = set()
        page = connector.fetch_orders(None)
        seen.update(o.external_id for o in page.orders)
        for _ in range(len(created)):  # a page holds at least one order: this many is enough
            if not page.more:
                break
            page = connector.fetch_orders(page.cursor)
            seen.update(o.external_id for o in page.orders)
        assert not page.more, "the sweep did not end"
        assert created <= seen

    def test_post_fulfillment_is_idempotent_by_key(self, harness: StorefrontHarness) -> None:
        external_id = harness.create_order([{"sku": "SHIP-1", "quantity": 2}])
        order = harness.connector().fetch_order(external_id)
        assert order is not None
        fulfillment = FulfillmentData(
            order_external_id=external_id, destination_external_id=order.destinations[0].external_id,
            key=f"contract-{external_id}",
            lines=(FulfillmentLine(order.lines[0].external_id, 2),),
            tracking_number="1Z999AA10123456784", carrier="ups", shipping_method="Ground",
        )
        first = harness.connector().post_fulfillment(fulfillment)
        again = harness.connector().post_fulfillment(fulfillment)
        assert first.created and not again.created
        assert again.external_id == first.external_id
        assert len(harness.store_shipments(external_id)) == 1

    def test_push_inventory_reports_every_item(self, harness: StorefrontHarness) -> None:
        harness.add_product("INV-TRACKED", tracked=True)
        harness.add_product("INV-UNTRACKED", tracked=False)
        updates = [InventoryUpdate("INV-TRACKED", 5), InventoryUpdate("INV-UNTRACKED", 5),
                   InventoryUpdate("INV-UNKNOWN", 5)]
        results = {r.sku: r for r in harness.connector().push_inventory(updates)}
        assert set(results) == {u.sku for u in updates}
        assert results["INV-TRACKED"].outcome is InventoryOutcome.PUSHED
        assert results["INV-UNTRACKED"].outcome is InventoryOutcome.SKIPPED
        assert results["INV-UNTRACKED"].reason == "tracking_off"
        assert results["INV-UNKNOWN"].outcome is not InventoryOutcome.PUSHED and results["INV-UNKNOWN"].reason

    def test_bad_credentials_raise_auth_error(self, harness: StorefrontHarness) -> None:
        with pytest.raises(AuthError):
            harness.connector_with_bad_credentials().fetch_orders(None)

    def test_outages_raise_transient_error(self, harness: StorefrontHarness) -> None:
        harness.inject_transient_failure()
        with pytest.raises(TransientError):
            harness.connector().fetch_orders(None)


class WarehouseContract(_Common):
    role = ConnectorRole.WAREHOUSE

    def _order(self, reference: str, skus: tuple[str, ...] = ("WH-1",)) -> WarehouseOrder:
        return WarehouseOrder(
            reference=reference, order_number=reference, placed_at=datetime.now(UTC),
            ship_to=Address(name="Ada Lovelace", street1="12 Analytical Row", city="London",
                            postal_code="N1 9GU", country_code="GB"),
            ship_code="GRND",
            lines=tuple(WarehouseLine(str(n), sku, 1, sku) for n, sku in enumerate(skus, start=1)),
        )

    def test_forward_order_is_idempotent_by_reference(self, harness: WarehouseHarness) -> None:
        order = self._order("CONTRACT-1")
        first = harness.connector().forward_order(order)
        again = harness.connector().forward_order(order)
        assert first.created and not again.created
        assert again.warehouse_order_id == first.warehouse_order_id
        assert harness.orders_with_reference("CONTRACT-1") == 1

    def test_a_batch_is_forwarded_as_each_order_alone_would_be(
            self, harness: WarehouseHarness) -> None:
        """For a connector that takes batches (its harness's ``connector_taking_batches``):
        one result per order, in order, each idempotent by reference like ``forward_order``."""
        make = getattr(harness, "connector_taking_batches", None)
        if make is None:
            pytest.skip("the connector sends one order a call")
        connector = make()
        assert connector.forward_batch_limit() > 1
        first = connector.forward_order(self._order("CONTRACT-B1"))
        results = connector.forward_orders([self._order("CONTRACT-B1"),
                                            self._order("CONTRACT-B2")])
        assert [type(result) for result in results] == [WarehouseOrderAck] * 2
        again, new = results
        assert not again.created and again.warehouse_order_id == first.warehouse_order_id
        assert new.created and new.reference == "CONTRACT-B2"
        assert harness.orders_with_reference("CONTRACT-B1") == 1
        assert harness.orders_with_reference("CONTRACT-B2") == 1

    def test_shipments_come_back_with_the_reference(self, harness: WarehouseHarness) -> None:
        harness.connector().forward_order(self._order("CONTRACT-2"))
        harness.ship("CONTRACT-2")
        connector = harness.connector()
        page = connector.fetch_shipments(None)
        shipments = list(page.shipments)
        while page.more:
            page = connector.fetch_shipments(page.cursor)
            shipments += page.shipments
        mine = [s for s in shipments if s.order_reference == "CONTRACT-2"]
        assert len(mine) == 1 and mine[0].lines and mine[0].warehouse_shipment_id

    def test_cancel_after_shipping_is_too_late(self, harness: WarehouseHarness) -> None:
        connector = harness.connector()
        ack = connector.forward_order(self._order("CONTRACT-3"))
        harness.ship("CONTRACT-3")
        assert connector.cancel_order("CONTRACT-3", ack.warehouse_order_id) is CancelOutcome.TOO_LATE
        ack = connector.forward_order(self._order("CONTRACT-4"))
        assert connector.cancel_order("CONTRACT-4", ack.warehouse_order_id) is CancelOutcome.CANCELLED

    def test_full_inventory_snapshot_lists_stock(self, harness: WarehouseHarness) -> None:
        harness.set_stock("STOCK-1", 7)
        snapshot = harness.connector().fetch_inventory(None, full=True)
        levels = {level.sku: level.quantity for level in snapshot.levels}
        assert snapshot.complete and levels.get("STOCK-1") == 7

    def test_bad_credentials_raise_auth_error(self, harness: WarehouseHarness) -> None:
        with pytest.raises(AuthError):
            harness.connector_with_bad_credentials().forward_order(self._order("CONTRACT-AUTH"))

    def test_outages_raise_transient_error(self, harness: WarehouseHarness) -> None:
        harness.inject_transient_failure()
        with pytest.raises(TransientError):
            harness.connector().fetch_shipments(None)
