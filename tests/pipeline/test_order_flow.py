"""Orders flow from the store to the warehouse and shipments back, through the real queue."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select

from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.testing.jobs import run_until_idle
from tests.pipeline.conftest import Loop, assert_forward_reads, recorded_statements


def test_an_order_goes_to_the_warehouse_and_its_shipment_back_to_the_store(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "TSHIRT", "quantity": 2}, {"sku": "MUG", "quantity": 1}])

    run_until_idle()

    order = loop.order(external_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    [wms_order] = loop.wms.orders
    assert wms_order["reference"] == f"DS-{loop.tenant.store.id}-{external_id}"
    assert [(l["sku"], l["quantity"]) for l in wms_order["lines"]] == [("TSHIRT", 2), ("MUG", 1)]
    assert wms_order["ship_code"] == "GRND"
    assert loop.shop.orders[external_id]["status"] == "awaiting_shipment"

    shipment = loop.wms.ship(wms_order["reference"])
    loop.poll()

    order = loop.order(external_id)
    assert order.status is OrderStatus.SHIPPED
    [posted] = loop.shop.shipments.values()
    assert posted["tracking"] == shipment["tracking"] and posted["carrier"] == "UPS"
    assert sorted(posted["lines"]) == [("1", 2), ("2", 1)]
    assert loop.shop.orders[external_id]["status"] == "shipped"
    kinds = [e.kind for e in order.events]
    assert kinds[:3] == ["imported", "queued", "forwarded"]
    assert "shipment_posted" in kinds


def test_importing_the_same_order_again_changes_nothing(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "TSHIRT", "quantity": 1}])
    run_until_idle()
    # The overlap window reads the order again on every sweep; nothing may duplicate.
    for channel in loop.store.channels:
        channel.next_run_at = None
    db.session.commit()
    run_until_idle()
    run_until_idle()

    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert len(loop.wms.orders) == 1
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE


def test_an_edit_stamped_the_same_second_as_the_last_read_is_not_taken_for_a_duplicate(loop: Loop) -> None:
    # Stores stamp changes to the second: a fix made within the second of the import carries
    # the same stamp as the copy DropStream already has.
    external_id = loop.shop.create_order([{"sku": "TSHIRT", "quantity": 1}], shipping_method="Carrier pigeon")
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.ON_HOLD

    loop.shop.orders[external_id]["destinations"]["1"]["shipping_method"] = "Ground"  # same stamp
    for channel in loop.store.channels:
        channel.next_run_at = None
    db.session.commit()
    run_until_idle()

    loop.poll()  # a re-read of the same copy adds nothing

    order = loop.order(external_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    assert [o["ship_code"] for o in loop.wms.orders] == ["GRND"]
    assert [e.kind for e in order.events].count("updated") == 1


def test_partial_shipments_are_posted_as_they_come(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 3}, {"sku": "B", "quantity": 1}])
    run_until_idle()
    reference = loop.wms.orders[0]["reference"]
    line_a = loop.wms.orders[0]["lines"][0]["reference"]

    loop.wms.ship(reference, {line_a: 1})
    loop.poll()
    assert loop.order(external_id).status is OrderStatus.PARTIALLY_SHIPPED
    assert loop.shop.orders[external_id]["status"] == "partially_shipped"

    loop.wms.ship(reference)
    loop.poll()
    assert loop.order(external_id).status is OrderStatus.SHIPPED
    assert len(loop.shop.shipments) == 2
    assert db.session.scalar(select(func.count()).select_from(Shipment).where(
        Shipment.state == ShipmentState.POSTED)) == 2


def test_a_shipment_is_never_posted_twice_even_when_the_first_outcome_was_lost(loop: Loop) -> None:
    from dropstream.fulfillment.services import post_shipment

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    loop.wms.ship(loop.wms.orders[0]["reference"])
    loop.poll()
    shipment = db.session.scalars(select(Shipment)).one()
    # Pretend the store's reply was lost: DropStream still thinks the shipment is pending.
    shipment.state = ShipmentState.PENDING
    db.session.commit()

    post_shipment(db.session, shipment)
    db.session.commit()

    assert len(loop.shop.shipments) == 1
    assert loop.order(external_id).status is OrderStatus.SHIPPED


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
                    reason="on SQLite a job holds the write lock: no one can cancel meanwhile")
def test_an_order_cancelled_while_it_is_being_sent_is_cancelled_at_the_warehouse(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask import current_app

    from dropstream.orders.cancellation import cancel_order
    from dropstream.tenants.scope import unscoped
    from dropstream.testing.reference import ReferenceWarehouse

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    app = current_app._get_current_object()
    send = ReferenceWarehouse.forward_order

    def send_while_a_person_cancels(self: ReferenceWarehouse, order: object) -> object:
        ack = send(self, order)  # type: ignore[arg-type]
        # The warehouse has it; in another transaction, before DropStream records that, a
        # person cancels the order (to them it was never sent).
        with app.app_context(), unscoped(db.session):
            row = db.session.scalars(select(Order).where(Order.external_id == external_id)).one()
            cancel_order(db.session, row, actor="a person", reason="the customer called")
            db.session.commit()
        return ack

    monkeypatch.setattr(ReferenceWarehouse, "forward_order", send_while_a_person_cancels)
    run_until_idle()

    order = loop.order(external_id)
    assert order.status is OrderStatus.CANCELLED
    assert "cancel_forwarding" in [e.kind for e in order.events]
    [wms_order] = loop.wms.orders
    assert wms_order["status"] == "cancelled", "the warehouse was told to cancel what it got"


def test_a_digital_only_order_is_skipped_with_a_reason(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "EBOOK", "quantity": 1, "kind": "digital"},
                                          {"sku": None, "quantity": 1, "kind": "gift_certificate"}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.SKIPPED
    assert loop.wms.orders == []
    assert "Nothing to ship" in order.events[-1].message


def test_an_order_to_two_addresses_becomes_two_warehouse_orders(loop: Loop) -> None:
    from dropstream.testing.reference import default_address

    external_id = loop.shop.create_order(
        [{"sku": "A", "quantity": 1, "destination": "1"}, {"sku": "B", "quantity": 2, "destination": "2"}],
        destinations=[{"id": "1", "shipping_method": "Ground", "address": default_address()},
                      {"id": "2", "shipping_method": "ground ", "address": {**default_address(), "name": "Grace Hopper"}}],
    )
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    references = sorted(o["reference"] for o in loop.wms.orders)
    assert references == [f"DS-{loop.tenant.store.id}-{external_id}-1", f"DS-{loop.tenant.store.id}-{external_id}-2"]
    for reference in references:
        loop.wms.ship(reference)
    loop.poll()
    assert loop.order(external_id).status is OrderStatus.SHIPPED
    assert loop.shop.orders[external_id]["status"] == "shipped"


def test_every_step_is_on_the_timeline(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    order = loop.order(external_id)
    # In the order the timeline shows them (a read without ORDER BY returns them as the
    # database finds them, which on PostgreSQL is not always the order they were written in).
    events = order.events
    assert [e.kind for e in events] == ["imported", "queued", "forwarded", "store_status"]
    assert all(e.message for e in events)


def test_stores_sharing_a_warehouse_account_each_get_only_their_shipments(loop: Loop) -> None:
    from dropstream.stores.credentials import write_credentials
    from dropstream.testing.reference import store_sandbox
    from tests.factories import MerchantFactory, ShippingRuleFactory, StoreFactory

    t = loop.tenant
    sibling = MerchantFactory(provider_id=t.provider.id, name="sibling")
    other = StoreFactory(provider_id=t.provider.id, merchant_id=sibling.id, warehouse_id=t.warehouse.id,
                         settings={"sandbox": "sibling-shop"})
    write_credentials(other, {"token": "store-token"})
    ShippingRuleFactory(provider_id=t.provider.id, merchant_id=sibling.id, store_id=other.id,
                        store_method="Ground", match_key="ground", warehouse_code="GRND")
    db.session.commit()
    other_shop = store_sandbox("sibling-shop")
    mine = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    theirs = other_shop.create_order([{"sku": "B", "quantity": 1}])
    run_until_idle()
    for wms_order in loop.wms.orders:  # one warehouse, one account, both stores' orders
        loop.wms.ship(wms_order["reference"])
    loop.poll()
    for channel in other.channels:
        channel.next_run_at = None
    db.session.commit()
    run_until_idle()

    assert loop.order(mine).status is OrderStatus.SHIPPED
    assert [s["order_id"] for s in loop.shop.shipments.values()] == [mine]
    assert [s["order_id"] for s in other_shop.shipments.values()] == [theirs]
    assert db.session.scalar(select(func.count()).select_from(Shipment)) == 2


def test_a_new_order_is_written_once_with_its_mapping_and_status(loop: Loop) -> None:
    """The import maps a new order before writing it: its rows are inserted with their final
    values and never updated after (each update is a round trip on every order imported)."""
    from dropstream.orders.importing import refresh_order

    external_id = loop.shop.create_order([{"sku": "TSHIRT", "quantity": 2},
                                          {"sku": "MUG", "quantity": 1}])

    with recorded_statements() as statements:
        refresh_order(db.session, loop.store, external_id)
        db.session.commit()

    writes = [" ".join(s.split()[:3]) for s in statements
              if s.upper().startswith(("INSERT", "UPDATE"))]

    order = loop.order(external_id)
    assert order.status is OrderStatus.QUEUED
    assert [(line.warehouse_sku, line.quantity)
            for line in order.warehouse_lines] == [("TSHIRT", 2), ("MUG", 1)]
    [address] = order.shipping_addresses
    assert address.ship_code == "GRND"
    assert address.warehouse_ref == f"DS-{loop.store.id}-{external_id}"
    assert [e.kind for e in order.events] == ["imported", "queued"]
    # Nothing is written twice: no UPDATE follows the INSERTs (a database that cannot insert
    # several rows with RETURNING in one statement, SQLite, inserts them one by one).
    assert [w for w in writes if not w.startswith("INSERT")] == []
    assert set(writes) == {"INSERT INTO orders", "INSERT INTO order_addresses",
                           "INSERT INTO order_lines", "INSERT INTO warehouse_lines",
                           "INSERT INTO order_events", "INSERT INTO outbox"}
    assert writes.count("INSERT INTO orders") == 1


def test_a_shipment_is_recorded_with_its_order_read_in_the_same_query(loop: Loop) -> None:
    """Recording a warehouse shipment (pushed or polled) reads its consignment together with
    the order whose timeline gets the entry: one query, not a second one for the order."""
    from dropstream.fulfillment.services import record_shipment
    from dropstream.stores.connections import warehouse_connector

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    loop.wms.ship(f"DS-{loop.tenant.store.id}-{external_id}")
    store = loop.store
    [data] = warehouse_connector(store.warehouse, store).fetch_shipments(None).shipments
    db.session.expire_all()

    with recorded_statements() as statements:
        shipment = record_shipment(db.session, store, data)
        db.session.commit()

    assert shipment.state is ShipmentState.PENDING
    assert loop.order(external_id).events[-1].kind == "shipment_received"
    assert [s for s in statements if s.startswith("SELECT orders.")] == []


def test_orders_imported_together_write_their_billing_and_shipping_addresses_at_once(
        loop: Loop) -> None:
    """A billing address has the shipping addresses' columns too: the flush writes a table's
    rows in one statement only while their columns match, and billing, shipping, billing …
    (two orders read together) cost a statement each."""
    from dataclasses import replace

    from dropstream.connectors.types import Address
    from dropstream.orders.importing import import_orders
    from dropstream.stores.connections import store_connector

    external_ids = [loop.shop.create_order([{"sku": "MUG", "quantity": 1}]) for _ in range(2)]
    billing = Address(name="Ada Buyer", street1="1 Pay St", city="Leeds", country_code="GB")
    read = [replace(store_connector(loop.store).fetch_order(external_id), billing_address=billing)
            for external_id in external_ids]

    with recorded_statements() as statements:
        import_orders(db.session, loop.store, read)
        db.session.commit()

    for external_id in external_ids:
        order = loop.order(external_id)
        assert order.status is OrderStatus.QUEUED
        assert sorted((a.role, a.name) for a in order.addresses)[0] == ("billing", "Ada Buyer")
    if db.engine.dialect.name == "postgresql":  # (SQLite inserts rows one by one)
        assert sum(s.startswith("INSERT INTO order_addresses") for s in statements) == 1


def test_an_order_another_worker_inserted_first_is_taken_as_it_is(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers read the same new order; the one whose insert loses to the other's commit
    keeps the winner's order: one order, one timeline, one trip to the warehouse."""
    from dropstream.orders import importing
    from dropstream.stores.connections import store_connector

    external_id = loop.shop.create_order([{"sku": "TSHIRT", "quantity": 1}])
    read_by_loser = store_connector(loop.store).fetch_order(external_id)
    run_until_idle()
    winner = loop.order(external_id)
    events_before = [e.kind for e in winner.events]
    # The loser looked for the order before the winner committed it: it saw none.
    looks: list[None] = [None]
    real_find = importing._find
    monkeypatch.setattr(importing, "_find", lambda session, store, external_id:
                        looks.pop() if looks else real_find(session, store, external_id))

    kept = importing.import_order(db.session, loop.store, read_by_loser)
    db.session.commit()
    run_until_idle()

    assert looks == [] and kept is not None and kept.id == winner.id
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert [e.kind for e in loop.order(external_id).events] == events_before
    assert len(loop.wms.orders) == 1


def test_orders_read_together_are_mapped_against_one_read_and_written_together(loop: Loop) -> None:
    """A backlog's re-reads (a flash sale's webhooks) are imported as one: the store's
    listings and rules are read once, the new orders written in one savepoint, and each ends
    as it would have alone: mapped, held with its reason, queued once."""
    from dropstream.orders.importing import refresh_orders
    from tests.factories import ListingFactory

    t = loop.tenant
    ListingFactory(provider_id=t.provider.id, merchant_id=t.merchant.id, store_id=t.store.id,
                   store_sku="TEE-RED", warehouse_sku="WH-TEE-RED")
    db.session.commit()
    mapped = loop.shop.create_order([{"sku": "TEE-RED", "quantity": 2}])
    plain = loop.shop.create_order([{"sku": "MUG", "quantity": 1}])
    held = loop.shop.create_order([{"sku": "MUG", "quantity": 1}], shipping_method="Teleport")

    with recorded_statements() as statements:
        refresh_orders(db.session, loop.store, [mapped, plain, held])
        db.session.commit()

    assert [(line.warehouse_sku, line.quantity)
            for line in loop.order(mapped).warehouse_lines] == [("WH-TEE-RED", 2)]
    assert loop.order(mapped).status is OrderStatus.QUEUED
    assert loop.order(plain).status is OrderStatus.QUEUED
    assert loop.order(held).status is OrderStatus.ON_HOLD
    assert "'Teleport'" in (loop.order(held).hold_detail or "")
    assert [e.kind for e in loop.order(mapped).events] == ["imported", "queued"]
    assert [e.kind for e in loop.order(held).events] == ["imported", "held"]
    assert sum(s.startswith("SELECT listings.") for s in statements) == 1
    assert not [s for s in statements if s.startswith("SELECT listing_components.")]  # joined
    assert sum(s.startswith("SELECT shipping_rules.") for s in statements) == 1
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 1
    run_until_idle()
    assert sorted(o["reference"] for o in loop.wms.orders) == sorted(
        f"DS-{t.store.id}-{external_id}" for external_id in (mapped, plain))


def test_an_order_that_cannot_be_kept_leaves_the_others_read_with_it_imported(loop: Loop) -> None:
    """One order of a batch whose SKU does not fit is kept in error, with the field and the
    fix; the batch's other orders are imported as if it had not been there."""
    from dropstream.orders.importing import refresh_orders

    first = loop.shop.create_order([{"sku": "TSHIRT", "quantity": 1}])
    too_long = loop.shop.create_order([{"sku": "X" * 300, "quantity": 1}])
    last = loop.shop.create_order([{"sku": "MUG", "quantity": 1}])

    refresh_orders(db.session, loop.store, [first, too_long, last])
    db.session.commit()
    run_until_idle()

    kept = loop.order(too_long)
    assert kept.status is OrderStatus.ERROR and kept.error_code == "import_failed"
    assert (kept.error_message or "").startswith("lines[0].sku: 300 characters")
    for external_id in (first, last):
        assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
        kinds = [e.kind for e in loop.order(external_id).events]
        assert kinds[:3] == ["imported", "queued", "forwarded"]
    assert len(loop.wms.orders) == 2
    assert db.session.scalar(select(func.count()).select_from(Order)) == 3


def test_an_order_of_a_batch_another_worker_inserted_first_is_taken_as_it_is(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers read the same backlog; the one whose batch insert loses to the other's
    commit of one of its orders keeps that order as the winner made it and imports the rest."""
    from dropstream.orders import importing
    from dropstream.stores.connections import store_connector

    raced = loop.shop.create_order([{"sku": "TSHIRT", "quantity": 1}])
    other = loop.shop.create_order([{"sku": "MUG", "quantity": 1}])
    read_by_loser = store_connector(loop.store).fetch_orders_by_id([raced, other])
    importing.refresh_order(db.session, loop.store, raced)  # the winner, for one of them
    db.session.commit()
    run_until_idle()
    winner = loop.order(raced)
    events_before = [e.kind for e in winner.events]
    # The loser looked for its orders before the winner committed: it saw none of them.
    looks: list[dict] = [{}]
    real_find_all = importing._find_all
    monkeypatch.setattr(importing, "_find_all", lambda session, store, external_ids:
                        looks.pop() if looks else real_find_all(session, store, external_ids))

    importing.import_orders(db.session, loop.store, [read_by_loser[raced], read_by_loser[other]])
    db.session.commit()
    run_until_idle()

    assert looks == []
    assert loop.order(raced).id == winner.id
    assert [e.kind for e in loop.order(raced).events] == events_before
    assert loop.order(other).status is OrderStatus.AT_WAREHOUSE
    assert db.session.scalar(select(func.count()).select_from(Order)) == 2
    assert sorted(o["reference"] for o in loop.wms.orders) == sorted(
        f"DS-{loop.store.id}-{external_id}" for external_id in (raced, other))


def test_a_forward_reads_its_store_in_one_statement_and_its_order_in_two(loop: Loop) -> None:
    """A worker's job starts with nothing loaded: the store its work is for is read with its
    warehouse, which a forward calls; the order with its addresses, then its warehouse lines
    with the store lines they come from (their names go to the warehouse)."""
    from dropstream.orders.importing import refresh_order

    external_id = loop.shop.create_order([{"sku": "MUG", "quantity": 2},
                                          {"sku": "A", "quantity": 1}])
    refresh_order(db.session, loop.store, external_id)
    db.session.commit()

    order_id, statements = _run_as_a_worker(loop, "order.forward", external_id)

    order = db.session.get(Order, order_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    assert [line["name"] for line in loop.wms.orders[0]["lines"]] == [
        line.name for line in order.lines]
    assert_forward_reads(statements, forwards=1)


def test_a_shipment_post_reads_its_consignment_with_it_and_not_the_stores_copy(loop: Loop) -> None:
    """A worker's shipment post starts with nothing loaded: the shipment is read with its
    consignment (destination, shipping method) in one query, and loading the order leaves out
    the store's copy of it, which the post does not read (it is still kept, and read when
    asked)."""
    from dropstream.connectors.types import ShipmentData, ShipmentLineData
    from dropstream.fulfillment.services import record_shipment

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    [line] = loop.wms.orders[0]["lines"]
    record_shipment(db.session, loop.store, ShipmentData(
        "SH-1", loop.wms.orders[0]["reference"],
        (ShipmentLineData(quantity=1, line_reference=line["reference"], sku="A"),),
        carrier="UPS", tracking_number="1ZPOSTED"))
    db.session.commit()

    order_id, statements = _run_as_a_worker(loop, "shipment.post", external_id)

    assert db.session.get(Order, order_id).status is OrderStatus.SHIPPED
    assert [s["tracking"] for s in loop.shop.shipments.values()] == ["1ZPOSTED"]
    assert [s for s in statements if s.startswith("SELECT order_addresses.")] == []
    assert any(s.startswith("SELECT shipments.") and "JOIN order_addresses" in s
               for s in statements)
    assert [s for s in statements if s.startswith("SELECT") and "source_payload" in s] == []
    assert db.session.get(Order, order_id).source_payload  # kept, and read when asked


def _run_as_a_worker(loop: Loop, kind: str, external_id: str) -> tuple[int, list[str]]:
    """Run the one piece of work of ``kind`` as a worker's job finds it, nothing loaded: the
    id of the order (by its store id) and the statements the job ran."""
    from dropstream.jobs.models import OutboxItem
    from dropstream.jobs.runner import run_outbox_item

    work = db.session.scalars(select(OutboxItem.id).where(OutboxItem.kind == kind)).one()
    order_id = loop.order(external_id).id
    db.session.remove()  # as a worker's job finds its session
    with recorded_statements() as statements:
        run_outbox_item(work)
    return order_id, statements


def test_a_consignment_acknowledged_before_a_failure_is_not_sent_again(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each consignment's acknowledgement is written (and committed) before the next is sent:
    when the second fails, the retry sends only the second."""
    from dropstream.connectors.base import TransientError
    from dropstream.testing.jobs import make_due
    from dropstream.testing.reference import ReferenceWarehouse, default_address

    created: list[str] = []
    forward = ReferenceWarehouse.forward_order

    def second_fails_once(self: object, order: object):  # type: ignore[no-untyped-def]
        reference = order.reference  # type: ignore[attr-defined]
        created.append(reference)
        if reference.endswith("-2") and created.count(reference) == 1:
            raise TransientError("reference WMS: 503")
        return forward(self, order)  # type: ignore[arg-type]

    monkeypatch.setattr(ReferenceWarehouse, "forward_order", second_fails_once)
    external_id = loop.shop.create_order(
        [{"sku": "A", "quantity": 1, "destination": "1"}, {"sku": "B", "quantity": 2, "destination": "2"}],
        destinations=[{"id": "1", "shipping_method": "Ground", "address": default_address()},
                      {"id": "2", "shipping_method": "Ground", "address": default_address()}],
    )
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.RETRYING
    first, second = order.shipping_addresses
    assert first.warehouse_order_id and first.forwarded_at and not second.warehouse_order_id

    make_due()  # as if the retry's backoff had passed
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    assert all(address.warehouse_order_id for address in order.shipping_addresses)
    prefix = f"DS-{loop.tenant.store.id}-{external_id}"
    assert created == [f"{prefix}-1", f"{prefix}-2", f"{prefix}-2"]
    assert len(loop.wms.orders) == 2


def test_an_event_of_an_order_already_written_is_one_insert(loop: Loop) -> None:
    """A step on the timeline of an order already written is inserted at once, without loading
    the timeline; it reads back in its place, with its facts."""
    from dropstream.orders.timeline import record

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    order = loop.order(external_id)

    with recorded_statements() as statements:
        record(db.session, order, "note", "A person looked at it.", actor="user:7", remote=None)
        db.session.commit()

    assert [s.split(" (")[0] for s in statements if not s.startswith(("SELECT set_config", "BEGIN",
                                                                       "COMMIT"))] == [
        "INSERT INTO order_events"]
    order = loop.order(external_id)
    assert [e.kind for e in order.events] == ["imported", "queued", "forwarded", "store_status", "note"]
    assert order.events[-1].detail == {"actor": "user:7"}
    assert order.events[-1].created_at is not None


def test_an_event_of_an_order_whose_timeline_is_loaded_appears_in_it(loop: Loop) -> None:
    from dropstream.orders.timeline import record

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    order = loop.order(external_id)
    assert len(order.events) == 4  # loaded

    record(db.session, order, "note", "A person looked at it.")
    assert [e.kind for e in order.events][-1] == "note"  # before the commit
    db.session.commit()
    assert [e.kind for e in loop.order(external_id).events][-1] == "note"
