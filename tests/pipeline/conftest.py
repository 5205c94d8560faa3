"""A tenant wired to the reference store and warehouse, ready for orders to flow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import event

from dropstream.extensions import db
from dropstream.orders.models import Order
from dropstream.state import get_state
from dropstream.stores.credentials import write_credentials
from dropstream.testing.reference import (
    StoreSandbox,
    WarehouseSandbox,
    store_sandbox,
    warehouse_sandbox,
)
from tests.factories import ShippingRuleFactory
from tests.tenancy import Tenant, make_tenant


@dataclass
class Loop:
    tenant: Tenant
    shop: StoreSandbox
    wms: WarehouseSandbox

    @property
    def store(self):  # type: ignore[no-untyped-def]
        from dropstream.stores.models import Store

        return db.session.get(Store, self.tenant.store.id)

    def poll(self) -> None:
        """Run every channel now (as its schedule would, later) and all the work it makes."""
        from dropstream.testing.jobs import run_until_idle

        for channel in self.store.channels:
            channel.next_run_at = None
        db.session.commit()
        run_until_idle()

    def order(self, external_id: str) -> Order:
        db.session.expire_all()
        order = db.session.query(Order).filter_by(store_id=self.tenant.store.id, external_id=external_id).one()
        return order


def forget_queue() -> None:
    """What a flushed Redis (or a killed embedded process) does to dispatched jobs."""
    queue = get_state().queue
    if hasattr(queue, "drain"):
        queue.drain()
    else:
        queue.connection.flushdb()


@contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs while the context is open, its whitespace
    collapsed (what a test counts round trips by)."""
    statements: list[str] = []

    def on_execute(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)


def assert_forward_reads(statements: list[str], forwards: int) -> None:
    """``forwards`` forwards read what they send in as few statements as they can: each its
    store with its warehouse, its order with its addresses, then its warehouse lines with the
    store lines they come from; never a warehouse, address or store line on its own."""
    assert [s for s in statements if s.startswith((
        "SELECT warehouses.", "SELECT order_addresses.", "SELECT order_lines."))] == []
    stores = [s for s in statements if s.startswith("SELECT stores.")]
    assert len(stores) <= forwards and all("JOIN warehouses" in s for s in stores)
    orders = [s for s in statements if s.startswith("SELECT orders.") and "JOIN" in s]
    assert len(orders) == forwards and all("JOIN order_addresses" in s for s in orders)
    lines = [s for s in statements if s.startswith("SELECT warehouse_lines.")]
    assert len(lines) == forwards and all("JOIN order_lines" in s for s in lines)


@contextmanager
def recorded_rollbacks() -> Iterator[list[object]]:
    """The connections the app's engine rolls back while the context is open (a rollback makes
    psycopg forget every statement it prepared on the connection)."""
    rollbacks: list[object] = []

    def on_rollback(connection: object) -> None:
        rollbacks.append(connection)

    event.listen(db.engine, "rollback", on_rollback)
    try:
        yield rollbacks
    finally:
        event.remove(db.engine, "rollback", on_rollback)


def wire(name: str) -> Loop:
    tenant = make_tenant(name, sandbox=name)
    write_credentials(tenant.store, {"token": "store-token"})
    write_credentials(tenant.warehouse, {"token": "wms-token"})
    ShippingRuleFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                        store_id=tenant.store.id, store_method="Ground", match_key="ground",
                        warehouse_code="GRND")
    db.session.commit()
    return Loop(tenant, store_sandbox(name), warehouse_sandbox(name))


@pytest.fixture
def loop(app: object) -> Loop:
    return wire("acme")
