"""Two shipments of one order posted at the same moment by two workers: the order ends shipped,
with every line's shipped quantity counted once per shipment. (Found by the reconciliation run on
PostgreSQL: both workers read the lines before either committed, each added only its own units,
and the order stayed partially shipped although the warehouse had shipped it all.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.fulfillment.services import post_shipment, sync_shipments
from dropstream.orders.models import OrderLine
from dropstream.orders.statuses import OrderStatus
from dropstream.stores.models import Channel
from dropstream.testing import reference
from dropstream.testing.jobs import run_until_idle
from tests.pipeline.conftest import Loop, loop  # noqa: F401 - the fixture
from tests.reliability.concurrency import finishes_while_held, meet, run_at_once


def test_two_shipments_of_one_order_posted_at_once_both_count(
        app: Any, loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}])
    run_until_idle()
    wms_order = loop.wms.orders[0]
    for line in wms_order["lines"]:  # two parcels, one line each
        loop.wms.ship(wms_order["reference"], {line["reference"]: 1})
    store = loop.store
    sync_shipments(db.session, store, store.channel(Channel.SHIPMENTS))
    db.session.commit()
    shipment_ids = list(db.session.scalars(select(Shipment.id).order_by(Shipment.id)))
    db.session.commit()  # nothing of this session may hold the database while the workers run

    # Each worker reaches the store at the same moment (or, where the database makes the second
    # wait for the first, after a short wait).
    together = threading.Barrier(2, timeout=2)
    post = reference.ReferenceStore.post_fulfillment

    def post_together(self: Any, fulfillment: Any) -> Any:
        meet(together)
        return post(self, fulfillment)

    monkeypatch.setattr(reference.ReferenceStore, "post_fulfillment", post_together)

    def posts(shipment_id: int) -> Callable[[], None]:
        return lambda: post_shipment(db.session, db.session.get(Shipment, shipment_id))

    assert run_at_once(app, [(f"post {sid}", posts(sid)) for sid in shipment_ids]) == []
    order = loop.order(external_id)
    assert order.status is OrderStatus.SHIPPED
    assert [line.quantity_shipped for line in db.session.scalars(
        select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id))] == [1, 1]
    assert set(db.session.scalars(select(Shipment.state))) == {ShipmentState.POSTED}


@pytest.mark.parametrize(("parcels", "shipped"), [(("SH-1", "SH-2"), 2), (("SH-1", "SH-1"), 1)],
                         ids=["two parcels", "one parcel told twice"])
def test_shipments_of_one_line_recorded_at_once_count_once_each(
        app: Any, loop: Loop, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        parcels: tuple[str, str], shipped: int) -> None:
    """Shipments of the same line recorded at the same moment (a WMS's push and the shipments
    poll, or two pushes): the warehouse line counts each parcel's units once. Both recordings
    read the line before either commits; without a lock the second wrote its own total over
    the first's, and one parcel's units were lost."""
    from dropstream.connectors.types import ShipmentData, ShipmentLineData
    from dropstream.fulfillment import services
    from dropstream.orders.models import WarehouseLine
    from dropstream.stores.models import Store

    loop.shop.create_order([{"sku": "A", "quantity": 2}])
    run_until_idle()
    reference_, [line] = loop.wms.orders[0]["reference"], loop.wms.orders[0]["lines"]
    store_id = loop.store.id
    db.session.commit()  # nothing of this session may hold the database while the workers run

    together = threading.Barrier(2, timeout=2)
    apply = services._apply_to_warehouse_lines

    def apply_together(*args: Any) -> Any:
        problem = apply(*args)
        meet(together)  # both have read the line
        return problem

    monkeypatch.setattr(services, "_apply_to_warehouse_lines", apply_together)

    def records(parcel: str) -> Callable[[], None]:
        one_unit = ShipmentLineData(quantity=1, line_reference=line["reference"], sku="A")
        return lambda: services.record_shipment(
            db.session, db.session.get(Store, store_id),
            ShipmentData(parcel, reference_, (one_unit,), tracking_number=f"1Z{parcel}"))

    assert run_at_once(app, [(parcel, records(parcel)) for parcel in parcels]) == []
    db.session.expire_all()
    states = [s.state for s in db.session.scalars(select(Shipment))]
    assert states == [ShipmentState.PENDING] * len(set(parcels))
    assert db.session.scalars(select(WarehouseLine.quantity_shipped)).all() == [shipped]


def test_a_post_waiting_for_the_store_does_not_hold_up_the_next_parcel_of_its_order(
        app: Any, loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A shipment's post locks its order while it waits for the store (its API quota may keep
    it up to half a minute). The order's next parcel, pushed by the WMS meanwhile, refers to the
    order (its shipment row, its timeline event): recording it must not wait for the post, or
    the WMS's push hangs with it."""
    from dropstream.connectors.types import ShipmentData, ShipmentLineData
    from dropstream.fulfillment import services
    from dropstream.stores.models import Store

    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: one writer at a time")
    loop.shop.create_order([{"sku": "A", "quantity": 2}])
    run_until_idle()
    reference_, [line] = loop.wms.orders[0]["reference"], loop.wms.orders[0]["lines"]
    store_id = loop.store.id
    db.session.commit()

    def parcel(name: str) -> ShipmentData:
        one_unit = ShipmentLineData(quantity=1, line_reference=line["reference"], sku="A")
        return ShipmentData(name, reference_, (one_unit,), tracking_number=f"1Z{name}")

    first = services.record_shipment(db.session, loop.store, parcel("SH-1"))
    first_id = first.id
    db.session.commit()

    at_store, answer = threading.Event(), threading.Event()
    post = reference.ReferenceStore.post_fulfillment

    def slow_post(self: Any, fulfillment: Any) -> Any:
        at_store.set()
        answer.wait(20)  # the store's quota is spent: the post waits for it to reset
        return post(self, fulfillment)

    monkeypatch.setattr(reference.ReferenceStore, "post_fulfillment", slow_post)
    def posts_the_first() -> None:
        post_shipment(db.session, db.session.get(Shipment, first_id))

    def records_the_second() -> None:
        services.record_shipment(db.session, db.session.get(Store, store_id), parcel("SH-2"))

    recorded_while_the_post_waited = finishes_while_held(app, posts_the_first, at_store, answer,
                                                         records_the_second)
    assert recorded_while_the_post_waited, "recording the next parcel waited for the post"
    db.session.expire_all()
    assert len(db.session.scalars(select(Shipment)).all()) == 2
