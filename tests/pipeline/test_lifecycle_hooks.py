"""Plugins observe the pipeline through the lifecycle hooks, after each change is committed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dropstream.extensions import db
from dropstream.hookspecs import hookimpl
from dropstream.state import get_state
from dropstream.testing.jobs import run_until_idle
from tests.pipeline.conftest import Loop


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def order_imported(self, order_id: int, store_id: int, merchant_id: int, external_id: str) -> None:
        self.calls.append(("order_imported", {"external_id": external_id, "merchant_id": merchant_id}))

    @hookimpl
    def order_held(self, order_id: int, reason: str) -> None:  # fewer arguments: allowed
        self.calls.append(("order_held", {"reason": reason}))

    @hookimpl
    def order_released(self, order_id: int, automatic: bool) -> None:
        self.calls.append(("order_released", {"automatic": automatic}))

    @hookimpl
    def order_forwarded(self, order_id: int, warehouse_order_ids: list[str]) -> None:
        self.calls.append(("order_forwarded", {"ids": warehouse_order_ids}))

    @hookimpl
    def order_shipped(self, order_id: int, shipment_id: int, complete: bool) -> None:
        self.calls.append(("order_shipped", {"complete": complete}))

    @hookimpl
    def inventory_pushed(self, store_id: int, results: list) -> None:
        self.calls.append(("inventory_pushed", {"skus": sorted(r.sku for r in results)}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def recorder(loop: Loop) -> Iterator[Recorder]:
    recorder = Recorder()
    pm = get_state().plugin_manager
    pm.register(recorder, name="recorder")
    yield recorder
    pm.unregister(recorder)


def _held_then_released(loop: Loop) -> str:
    from dropstream.catalog.models import ShippingRule
    from dropstream.orders.holds import request_hold_rescan

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}], shipping_method="Courier")
    run_until_idle()
    db.session.add(ShippingRule(provider_id=loop.tenant.provider.id, merchant_id=loop.tenant.merchant.id,
                                store_id=loop.tenant.store.id, store_method="Courier", match_key="courier",
                                warehouse_code="CR"))
    request_hold_rescan(db.session, loop.store)
    db.session.commit()
    run_until_idle()
    return external_id


def test_hook_order_imported(loop: Loop, recorder: Recorder) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    loop.poll()  # read again: imported is announced once
    assert [c for c in recorder.calls if c[0] == "order_imported"] == [
        ("order_imported", {"external_id": external_id, "merchant_id": loop.tenant.merchant.id})]


def test_hook_order_held(loop: Loop, recorder: Recorder) -> None:
    _held_then_released(loop)
    assert ("order_held", {"reason": "unmapped_shipping_method"}) in recorder.calls


def test_hook_order_released(loop: Loop, recorder: Recorder) -> None:
    _held_then_released(loop)
    assert ("order_released", {"automatic": True}) in recorder.calls
    assert recorder.names().index("order_held") < recorder.names().index("order_released")


def test_hook_order_forwarded(loop: Loop, recorder: Recorder) -> None:
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    assert ("order_forwarded", {"ids": ["WO-1"]}) in recorder.calls


def test_hook_order_shipped(loop: Loop, recorder: Recorder) -> None:
    loop.shop.create_order([{"sku": "A", "quantity": 2}])
    run_until_idle()
    reference = loop.wms.orders[0]["reference"]
    loop.wms.ship(reference, {loop.wms.orders[0]["lines"][0]["reference"]: 1})
    loop.poll()
    loop.wms.ship(reference)
    loop.poll()
    assert [c for c in recorder.calls if c[0] == "order_shipped"] == [
        ("order_shipped", {"complete": False}), ("order_shipped", {"complete": True})]


def test_hook_inventory_pushed(loop: Loop, recorder: Recorder) -> None:
    loop.shop.add_product("MUG", tracked=True)
    loop.wms.set_stock("MUG", 3)
    loop.wms.set_stock("NOPE", 3)
    loop.poll()
    assert ("inventory_pushed", {"skus": ["MUG", "NOPE"]}) in recorder.calls


def test_a_failing_observer_never_breaks_the_pipeline(loop: Loop) -> None:
    class Broken:
        @hookimpl
        def order_imported(self, order_id: int) -> None:
            raise RuntimeError("observer bug")

    get_state().plugin_manager.register(Broken(), name="broken")
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    assert loop.order(external_id).status.value == "at_warehouse"


def test_plugins_hear_of_no_import_that_was_rolled_back(
        loop: Loop, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import that fails after announcing itself goes back to its savepoint, and the order
    is kept in error instead: the announcement went with it."""
    from dropstream.orders import importing

    def tell_then_fail(*args: Any, _tell=importing.tell, **kwargs: Any) -> None:
        _tell(*args, **kwargs)
        raise ValueError("failed after telling")

    monkeypatch.setattr(importing, "tell", tell_then_fail)
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()

    order = loop.order(external_id)
    assert order.status.value == "error" and order.error_code == "import_failed"
    assert "failed after telling" in (order.error_message or "")
    assert recorder.names() == []
    assert loop.wms.orders == []
