"""A process dying at the dangerous moments: the remote system has done what it was asked, and
DropStream has not recorded it yet. The retry (after the dead worker's lease runs out) must find
what was done instead of doing it again — 0 lost, 0 duplicated.

The death is simulated in-process: right after the remote call returns, the call raises
:class:`ProcessKilled`, a ``BaseException`` that no ``except Exception`` in DropStream catches, so
nothing after that point runs — no commit, no error handling, no retry bookkeeping — and the
test then throws the transaction away as a dropped connection would. Everything else is real:
HTTP to the sandboxes, the database, the queue (RQ when ``REDIS_URL`` is set).
"""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.jobs import runner
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.testing import plugin as reference_plugin
from dropstream.testing.jobs import end_leases, make_due, run_until_idle
from dropstream_bigcommerce import importing
from dropstream_bigcommerce import plugin as bigcommerce_plugin
from dropstream_bigcommerce.client import BigCommerceClient
from dropstream_bigcommerce.connector import BigCommerceConnector
from dropstream.connectors.types import FulfillmentData, FulfillmentLine
from dropstream_bigcommerce.sandbox.testing import SandboxStore
from dropstream_wms_generic import plugin as wms_plugin
from dropstream_wms_generic.connector import GenericWmsConnector
from dropstream_wms_generic.sandbox import WmsSandbox
from plugins.bigcommerce.tests.bigcommerce_support import (
    add_products,
    connector,
    sandbox,
    served,
    shop,
)
from plugins.bigcommerce.tests.bigcommerce_support import wire as wire_bigcommerce
from plugins.wms_generic.tests.wms_support import wire as wire_wms
from plugins.wms_generic.tests.wms_support import wms
from tests.conftest import running_app

SHIPPED = 2
LARGE_ORDER_LINES = 600


class ProcessKilled(BaseException):
    """The process died here (SIGKILL, OOM, power): nothing after this line runs."""


@dataclass
class CrashPoint:
    name: str
    fired: bool = False


def crash_after(monkeypatch: pytest.MonkeyPatch, owner: type, method: str,
                when: Callable[..., bool] = lambda *args, **kwargs: True) -> CrashPoint:
    """Kill the process once, right after ``owner.method`` returned (when ``when`` says so)."""
    original = getattr(owner, method)
    point = CrashPoint(f"{owner.__name__}.{method}")

    def dying(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if not point.fired and when(*args, **kwargs):
            point.fired = True
            raise ProcessKilled(f"killed right after {point.name} returned")
        return result

    monkeypatch.setattr(owner, method, dying)
    return point


def run_until_killed(point: CrashPoint) -> None:
    """Run the pipeline's work until the process dies at ``point``."""
    try:
        run_until_idle(max_rounds=10)
    except ProcessKilled:
        pass  # the embedded queue runs jobs in this thread: the death reaches us
    except AssertionError:
        # An RQ worker catches everything a job raises; the dead job's item stays leased, so
        # work is "still due" — exactly what a dead worker leaves behind.
        if not point.fired:
            raise
    assert point.fired, f"the pipeline never reached {point.name}"
    db.session.rollback()  # a dead process's open transaction dies with its connection


def restart_and_finish() -> None:
    """Another worker, after the dead one's lease ran out (and every backoff wait)."""
    end_leases()
    make_due()
    run_until_idle()


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Any]:
    """Both built-in connectors beside the reference ones; BigCommerce's in-call retries short."""
    with running_app({**app_config, "BIGCOMMERCE_RETRY_DELAYS": (0.01, 0.02)},
                     plugins=[("reference", reference_plugin), ("bigcommerce", bigcommerce_plugin),
                              ("wms_generic", wms_plugin)]) as running:
        yield running


def _orders(external_id: str) -> list[Order]:
    db.session.expire_all()
    return list(db.session.scalars(select(Order).where(Order.external_id == str(external_id))))


def test_killed_after_the_wms_accepted_an_order_the_retry_finds_it_instead_of_sending_again(
    app: Any, wms: WmsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    wms.configure(dedupe=False)  # this WMS would store a repeated reference as a second order
    wired = wire_wms(wms, dedupes_references=False)
    external_id = wired.shop.create_order([{"sku": "TSHIRT", "quantity": 2}])
    point = crash_after(monkeypatch, GenericWmsConnector, "forward_order")

    run_until_killed(point)

    assert len(wms.orders()) == 1, "the WMS accepted the order before the process died"
    [order] = _orders(external_id)
    assert order.status is OrderStatus.QUEUED and not order.addresses[-1].warehouse_order_id

    restart_and_finish()

    [order] = _orders(external_id)
    [wms_order] = wms.orders()
    assert order.status is OrderStatus.AT_WAREHOUSE
    assert order.addresses[-1].warehouse_order_id == wms_order["id"]
    assert "found_at_warehouse" in [event.kind for event in order.events]
    creates = wms.requests("create_order")
    assert len(creates) == 1, "looked up by reference first, never created twice"


def test_a_failure_met_while_the_database_restarts_is_recorded_once_it_is_back(
    app: Any, wms: WmsSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    wired = wire_wms(wms)
    wms.inject("error", on="create_order", status=503)
    external_id = wired.shop.create_order([{"sku": "TSHIRT", "quantity": 1}])
    # The database restarts just as the worker records that the WMS failed: two tries fail.
    restarting = iter([OperationalError("UPDATE outbox …", {}, ConnectionError(
        "server closed the connection unexpectedly"))] * 2)
    record = runner._retry_or_give_up

    def record_after_restart(*args: Any) -> str:
        for failure in restarting:
            raise failure
        return record(*args)

    monkeypatch.setattr(runner, "_retry_or_give_up", record_after_restart)

    run_until_idle()

    [order] = _orders(external_id)
    assert order.status is OrderStatus.RETRYING
    [item] = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.forward"))
    assert item.state is OutboxState.PENDING and "503" in (item.last_error or "")
    assert item.leased_until <= utcnow(), "released for its retry, not held for its run lease"


def test_killed_after_bigcommerce_created_a_shipment_it_is_posted_once(
    app: Any, shop: SandboxStore, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_products(shop, ("TEE", "product"))
    wired = wire_bigcommerce(shop)
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": "TEE", "quantity": 2}])
    wired.deliver_webhooks()
    run_until_idle()
    assert wired.order(order_id).status is OrderStatus.AT_WAREHOUSE
    [wms_order] = wired.wms.orders
    wired.wms.ship(wms_order["reference"])
    point = crash_after(monkeypatch, BigCommerceConnector, "post_fulfillment")

    for channel in wired.store.channels:  # the shipments poll is due now
        channel.next_run_at = None
    db.session.commit()
    run_until_killed(point)

    assert len(shop.sandbox.get_order(shop.hash, order_id)["shipments"]) == 1
    [shipment] = db.session.scalars(select(Shipment)).all()
    assert shipment.state is ShipmentState.PENDING, "DropStream never recorded the post"

    restart_and_finish()
    wired.deliver_webhooks()

    [posted] = shop.sandbox.get_order(shop.hash, order_id)["shipments"]
    db.session.expire_all()
    [shipment] = db.session.scalars(select(Shipment)).all()
    assert shipment.state is ShipmentState.POSTED
    assert shipment.store_shipment_id == str(posted["id"])
    assert wired.order(order_id).status is OrderStatus.SHIPPED
    [remote] = [o for o in shop.sandbox.snapshot()["stores"][shop.hash]["orders"]
                if o["id"] == order_id]
    assert [status for _, status in remote["status_history"]].count(SHIPPED) == 1


def test_the_retry_after_a_kill_finds_its_own_shipment_not_one_whose_key_starts_like_it(
    app: Any, shop: SandboxStore
) -> None:
    add_products(shop, ("TEE", "product"))
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": "TEE", "quantity": 2}])
    [line] = connector(shop).fetch_order(str(order_id)).lines

    def parcel(key: str, first_attempt: bool) -> FulfillmentData:
        return FulfillmentData(
            order_external_id=str(order_id), destination_external_id=line.destination_id,
            key=key, lines=(FulfillmentLine(line.external_id, 1),), tracking_number=f"T-{key}",
            carrier="UPS", first_attempt=first_attempt)

    connector(shop).post_fulfillment(parcel("ds-shipment-12", first_attempt=True))
    # Shipment 1's worker died before its post; its retry looks for an earlier post first.
    result = connector(shop).post_fulfillment(parcel("ds-shipment-1", first_attempt=False))

    assert result.created
    posted = shop.sandbox.get_order(shop.hash, order_id)["shipments"]
    comments = sorted(shipment["comments"] for shipment in posted)
    assert comments == ["DropStream shipment ds-shipment-1", "DropStream shipment ds-shipment-12"]


def test_killed_midway_through_a_large_orders_pages_the_retry_imports_it_whole_once(
    app: Any, shop: SandboxStore, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store whose orders do not embed their products: they are read page by page (250 each).
    monkeypatch.setattr(importing, "INCLUDES", {})
    skus = [f"L-{number:03d}" for number in range(LARGE_ORDER_LINES)]
    add_products(shop, *[(sku, "product") for sku in skus])
    wired = wire_bigcommerce(shop)
    for channel in wired.store.channels:  # only the webhook brings it in: one reader to kill
        channel.enabled = False
    db.session.commit()
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": sku, "quantity": 1}
                                                           for sku in skus])
    point = crash_after(
        monkeypatch, BigCommerceClient, "get",
        when=lambda client, path, params=None: path.endswith(f"/orders/{order_id}/products")
        and (params or {}).get("page") == 2,
    )

    wired.deliver_webhooks()
    run_until_killed(point)
    assert _orders(order_id) == [], "nothing of a half-read order is kept"

    restart_and_finish()

    [order] = _orders(order_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    assert sorted(line.sku for line in order.lines) == skus
    [wms_order] = wired.wms.orders
    assert sorted(line["sku"] for line in wms_order["lines"]) == skus
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
