"""A job that waited in a backlog goes on with the work of its kind waiting behind it for the same
store, each piece run as the item it is, instead of leaving each to a queue job of its own (whose
bookkeeping costs about as much as a forward): what a flash sale's forwards need to keep up.
Work with a job on the way is left to that job, work that must run alone is never run beside
itself, and a failure is retried on its own without holding up the rest."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select, update

from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.jobs.outbox import STORE_IN_FLIGHT_CAP, add_work, lease, take_along
from dropstream.jobs.runner import BACKLOG_RUN, run_outbox_item
from dropstream.orders.importing import refresh_orders
from dropstream.orders.statuses import OrderStatus
from dropstream.tenants.scope import unscoped
from dropstream.testing.jobs import run_until_idle
from tests.pipeline.conftest import Loop, assert_forward_reads, forget_queue, recorded_statements


def _forwards_waiting(loop: Loop, count: int, waited: timedelta = timedelta(seconds=5)
                      ) -> tuple[list[str], list[int]]:
    """``count`` orders imported and queued whose forwards wait for a worker, with no queue job
    on the way (their store had its share of work in flight): the external ids, and the
    forwards' outbox ids in the order the orders were imported."""
    external_ids = [loop.shop.create_order([{"sku": "A", "quantity": n + 1}]) for n in range(count)]
    refresh_orders(db.session, loop.store, external_ids)
    db.session.commit()
    forget_queue()
    with unscoped(db.session):
        db.session.execute(update(OutboxItem).where(OutboxItem.kind == "order.forward").values(
            dispatched_at=None, run_after=utcnow() - waited))
        db.session.commit()
    return external_ids, _forwards()


def _forwards() -> list[int]:
    with unscoped(db.session):
        return list(db.session.scalars(select(OutboxItem.id).where(
            OutboxItem.kind == "order.forward").order_by(OutboxItem.id)))


def _items(ids: list[int]) -> list[OutboxItem]:
    db.session.expire_all()
    with unscoped(db.session):
        return [db.session.get(OutboxItem, item_id) for item_id in ids]


def test_a_forward_that_waited_goes_on_with_the_forwards_waiting_behind_it(loop: Loop) -> None:
    external_ids, [first, *behind] = _forwards_waiting(loop, 4)

    assert run_outbox_item(first) == "done"  # one queue job

    assert [loop.order(e).status for e in external_ids] == [OrderStatus.AT_WAREHOUSE] * 4
    assert len(loop.wms.orders) == 4
    forwards = _items([first, *behind])
    # Each run as its own item (one attempt, one outcome), none given a queue job.
    assert [(f.state, f.attempts) for f in forwards] == [(OutboxState.DONE, 1)] * 4
    assert all(f.dispatched_at is None for f in forwards[1:])
    # And each with its next step: the store was told every order was sent.
    with unscoped(db.session):
        marks = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.mark_sent")).all()
    assert sorted(m.state.value for m in marks) == ["done"] * 4
    assert all(e.kind == "store_status" for e in (loop.order(x).events[-1] for x in external_ids))


def test_a_job_goes_on_with_at_most_its_share_of_the_backlog(loop: Loop) -> None:
    external_ids, [first, *behind] = _forwards_waiting(loop, BACKLOG_RUN + 3)

    assert run_outbox_item(first) == "done"

    states = [item.state for item in _items(behind)]
    assert states == [OutboxState.DONE] * BACKLOG_RUN + [OutboxState.PENDING] * 2
    left = _items(behind[BACKLOG_RUN:])
    assert all(item.attempts == 0 and item.leased_until is None for item in left)  # untouched
    assert [loop.order(e).status for e in external_ids[-2:]] == [OrderStatus.QUEUED] * 2


def test_each_forward_of_a_backlog_reads_what_it_sends_in_as_few_statements(loop: Loop) -> None:
    """Each forward run from a backlog reads its store with its warehouse, and its order in two
    statements, as a forward that runs alone does. The job holds the store and warehouse it
    loaded (for its next steps), and each commit expires them: the next row reads them again
    in one statement, not refreshed one by one."""
    external_ids, [first, *behind] = _forwards_waiting(loop, 3)
    assert loop.store.warehouse is not None  # held, as the worker's first row leaves them

    with recorded_statements() as statements:
        assert run_outbox_item(first) == "done"

    assert len(loop.wms.orders) == 3
    assert_forward_reads(statements, forwards=3)


def test_whether_a_backlogs_rows_run_elsewhere_is_asked_once_for_all_of_them(loop: Loop) -> None:
    """Forwards run alone per order: before a job goes on with a backlog of them, it asks
    whether another worker runs any of their orders, under each order's lock. One question
    and one round trip of locks for the whole run, not two statements a row."""
    external_ids, [first, *behind] = _forwards_waiting(loop, BACKLOG_RUN + 1)
    running = lease(db.session, first)
    assert running is not None

    with recorded_statements() as statements, unscoped(db.session):
        taken = take_along(db.session, running, BACKLOG_RUN, timedelta(minutes=1),
                           undispatched_only=True, runs_alone=True)

    assert sorted(row.id for row in taken) == behind
    asked = [s for s in statements if s.startswith("SELECT outbox.subject_id")]
    locked = [s for s in statements if "pg_advisory_xact_lock" in s]
    assert len(asked) == 1
    assert len(locked) == (1 if db.engine.dialect.name == "postgresql" else 0)


def test_a_job_never_leases_more_of_a_long_backlog_than_it_asked_for(loop: Loop) -> None:
    """However long the backlog, a take-along leases at most what it asked for; the rest waits,
    untouched, for other workers (on PostgreSQL a plain LIMIT subquery once leased 86 rows of
    an ask for 8)."""
    store = loop.store
    waiting = dict(provider_id=store.provider_id, merchant_id=store.merchant_id,
                   store_id=store.id, queue="default", kind="order.forward", payload={},
                   state=OutboxState.PENDING, attempts=0, run_after=utcnow() - timedelta(seconds=5))
    with unscoped(db.session):
        ids = db.session.scalars(insert(OutboxItem).returning(OutboxItem.id), [
            dict(waiting, subject_id=n, dedupe_key=f"forward:{n}") for n in range(12 * BACKLOG_RUN)
        ]).all()
        db.session.commit()
        running = lease(db.session, ids[0])
        assert running is not None
        hold = timedelta(minutes=1)

        taken = [take_along(db.session, running, BACKLOG_RUN, hold),
                 take_along(db.session, running, BACKLOG_RUN, hold, undispatched_only=True)]

        assert [len(rows) for rows in taken] == [BACKLOG_RUN, BACKLOG_RUN]
        leased = db.session.scalar(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.leased_until.is_not(None)))
    assert leased == 1 + 2 * BACKLOG_RUN


def test_work_that_did_not_wait_runs_alone_in_its_job(loop: Loop) -> None:
    """No backlog (the work was due a moment ago): a job runs its own item and its follow-ups
    only, and asks nothing more of the database."""
    external_ids, [first, *behind] = _forwards_waiting(loop, 3, waited=timedelta())

    assert run_outbox_item(first) == "done"

    assert [loop.order(e).status for e in external_ids] == (
        [OrderStatus.AT_WAREHOUSE] + [OrderStatus.QUEUED] * 2)
    assert all(item.attempts == 0 for item in _items(behind))


def test_work_with_a_queue_job_on_the_way_is_left_to_it(loop: Loop) -> None:
    external_ids, [first, dispatched, waiting] = _forwards_waiting(loop, 3)
    with unscoped(db.session):
        db.session.execute(update(OutboxItem).where(OutboxItem.id == dispatched)
                           .values(dispatched_at=utcnow()))
        db.session.commit()

    assert run_outbox_item(first) == "done"

    assert [item.state for item in _items([first, dispatched, waiting])] == [
        OutboxState.DONE, OutboxState.PENDING, OutboxState.DONE]
    assert _items([dispatched])[0].attempts == 0
    assert run_outbox_item(dispatched) == "done"  # its own job, when it comes
    assert len(loop.wms.orders) == 3


def test_a_forward_is_never_run_beside_another_worker_sending_the_same_order(loop: Loop) -> None:
    """An order held and released while its first forward was running has a second forward
    waiting. A job going through the backlog leaves it while the first runs: sent at once,
    both would look the reference up before either created it."""
    external_ids, [first, busy] = _forwards_waiting(loop, 2)
    order_id = loop.order(external_ids[1]).id
    with unscoped(db.session):
        assert lease(db.session, busy) is not None  # another worker is sending that order
        add_work(db.session, kind="order.forward", subject_id=order_id, store_id=loop.tenant.store.id,
                 merchant_id=loop.tenant.merchant.id, provider_id=loop.tenant.provider.id)
        db.session.commit()
        forget_queue()
        second = db.session.scalars(select(OutboxItem.id).where(
            OutboxItem.kind == "order.forward", OutboxItem.id.not_in([first, busy]))).one()
        db.session.execute(update(OutboxItem).where(OutboxItem.id == second).values(
            dispatched_at=None, run_after=utcnow() - timedelta(seconds=5)))
        db.session.commit()

    assert run_outbox_item(first) == "done"

    waiting = _items([second])[0]
    assert waiting.state is OutboxState.PENDING
    assert waiting.attempts == 0 and waiting.leased_until is None  # as it was: it waits its turn
    assert [o["reference"] for o in loop.wms.orders] == [
        f"DS-{loop.tenant.store.id}-{external_ids[0]}"]


def test_a_failure_in_the_backlog_is_retried_on_its_own_and_the_rest_still_go(loop: Loop) -> None:
    external_ids, [first, failing, after] = _forwards_waiting(loop, 3)
    # The first order was held by a person while its forward waited: its job sends nothing,
    # so the warehouse's one failure falls on the next forward, run in the same job.
    loop.order(external_ids[0]).status = OrderStatus.ON_HOLD
    db.session.commit()
    loop.wms.faults.fail("transient", times=1, on="forward_order")

    assert run_outbox_item(first) == "done"

    retried, went = _items([failing, after])
    assert retried.state is OutboxState.PENDING and retried.attempts == 1
    assert retried.run_after > utcnow() and retried.leased_until <= utcnow()  # backs off
    assert loop.order(external_ids[1]).status is OrderStatus.RETRYING
    assert went.state is OutboxState.DONE
    assert loop.order(external_ids[2]).status is OrderStatus.AT_WAREHOUSE


def test_a_warehouses_day_of_shipments_is_posted_by_the_jobs_that_waited(loop: Loop) -> None:
    """A WMS that ships a day's orders at once: their posts wait for the store's share of
    workers, and the first job that gets to them posts the ones waiting behind it too."""
    from dropstream.fulfillment.models import Shipment, ShipmentState
    from dropstream.fulfillment.services import sync_shipments
    from dropstream.stores.models import Channel
    from dropstream.testing.jobs import run_until_idle

    external_ids = [loop.shop.create_order([{"sku": "A", "quantity": 1}]) for _ in range(4)]
    run_until_idle()
    for wms_order in loop.wms.orders:
        loop.wms.ship(wms_order["reference"])
    store = loop.store
    sync_shipments(db.session, store, store.channel(Channel.SHIPMENTS))
    forget_queue()
    with unscoped(db.session):
        db.session.execute(update(OutboxItem).where(OutboxItem.kind == "shipment.post").values(
            dispatched_at=None, run_after=utcnow() - timedelta(seconds=5)))
        db.session.commit()
        posts = list(db.session.scalars(select(OutboxItem.id).where(
            OutboxItem.kind == "shipment.post").order_by(OutboxItem.id)))
    assert len(posts) == 4

    assert run_outbox_item(posts[0]) == "done"

    assert [item.state for item in _items(posts)] == [OutboxState.DONE] * 4
    assert [loop.order(e).status for e in external_ids] == [OrderStatus.SHIPPED] * 4
    assert len(loop.shop.shipments) == 4
    assert db.session.scalar(select(func.count()).select_from(Shipment).where(
        Shipment.state == ShipmentState.POSTED)) == 4


# ------------------------------------------------------------------------------------------------
# A warehouse that takes batches: a backlog's forwards go in one call and one commit
# ------------------------------------------------------------------------------------------------


def test_a_backlogs_forwards_go_to_a_warehouse_taking_batches_in_one_call(loop: Loop) -> None:
    loop.wms.batch_limit = 20
    count = BACKLOG_RUN + 2  # more than the store's share of work in flight
    external_ids, [first, *behind] = _forwards_waiting(loop, count)

    with recorded_statements() as statements:
        assert run_outbox_item(first) == "done"

    assert loop.wms.batches == [count]
    assert [loop.order(e).status for e in external_ids] == [OrderStatus.AT_WAREHOUSE] * count
    references = sorted(o["reference"] for o in loop.wms.orders)
    assert references == sorted(f"DS-{loop.tenant.store.id}-{e}" for e in external_ids)
    # Each run once, all done in the job's commit; each order's timeline tells it was sent.
    forwards = _items([first, *behind])
    assert [(f.state, f.attempts) for f in forwards] == [(OutboxState.DONE, 1)] * count
    for external_id in external_ids:
        assert "forwarded" in [event.kind for event in loop.order(external_id).events]
    # The orders were read together: one statement for the orders, one for their lines.
    orders = [s for s in statements if s.startswith("SELECT orders.") and "JOIN order_addresses" in s]
    lines = [s for s in statements if s.startswith("SELECT warehouse_lines.")]
    assert (len(orders), len(lines)) == (1, 1)
    # Each order's "mark as sent" waits for room (the store has its share in flight), except
    # the job's own next step: the job goes on with them as with a backlog of its own kind,
    # and leaves the rest to the relay.
    with unscoped(db.session):
        marks = db.session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "order.mark_sent").order_by(OutboxItem.id)).all()
    assert [m.state for m in marks] == [OutboxState.DONE] * (1 + BACKLOG_RUN) + [
        OutboxState.PENDING]
    assert all(m.dispatched_at is None for m in marks[1:])  # none was given a queue job
    run_until_idle()
    assert all(loop.order(e).events[-1].kind == "store_status" for e in external_ids)


def test_an_imported_backlogs_forwards_go_in_one_batch(loop: Loop) -> None:
    """An import of a backlog leaves a forward per order, and its worker runs the first next:
    that forward has not waited, but the others wait behind it (more than the store's share
    of work in flight: no room to queue them). As the next step of a job that waited, it
    sends them with it where the warehouse takes batches."""
    loop.wms.batch_limit = 20
    count = STORE_IN_FLIGHT_CAP + 4
    external_ids = [loop.shop.create_order([{"sku": "A", "quantity": 1}]) for _ in range(count)]
    store = loop.tenant.store
    for external_id in external_ids:
        add_work(db.session, kind="order.refresh", subject_id=store.id, store_id=store.id,
                 merchant_id=store.merchant_id, provider_id=store.provider_id,
                 dedupe_key=f"order.refresh:{store.id}:{external_id}",
                 payload={"external_id": external_id})
    db.session.commit()
    forget_queue()
    with unscoped(db.session):  # the webhooks' re-reads waited: a backlog
        db.session.execute(update(OutboxItem).values(
            dispatched_at=None, run_after=utcnow() - timedelta(seconds=5)))
        db.session.commit()
        first = db.session.scalars(select(OutboxItem.id).order_by(OutboxItem.id)).first()

    assert run_outbox_item(first) == "done"

    assert loop.wms.batches == [count]
    assert [loop.order(e).status for e in external_ids] == [OrderStatus.AT_WAREHOUSE] * count


def test_a_forward_outside_a_backlog_asks_for_nothing_more(loop: Loop) -> None:
    """A forward that did not wait, run as no backlog's next step, sends its own order alone:
    an idle pipeline pays no query for batches."""
    loop.wms.batch_limit = 20
    external_ids, [first, *_] = _forwards_waiting(loop, 3, waited=timedelta())

    with recorded_statements() as statements:
        assert run_outbox_item(first) == "done"

    assert loop.wms.batches == []
    assert [loop.order(e).status for e in external_ids] == (
        [OrderStatus.AT_WAREHOUSE] + [OrderStatus.QUEUED] * 2)
    assert not [s for s in statements if s.startswith("WITH waiting AS")]  # no take-along


def test_an_order_the_warehouse_refuses_in_a_batch_is_held_and_the_rest_go(loop: Loop) -> None:
    loop.wms.batch_limit = 20
    loop.wms.known_skus = {"A"}
    external_ids = [loop.shop.create_order([{"sku": sku, "quantity": 1}]) for sku in "ABA"]
    refresh_orders(db.session, loop.store, external_ids)
    db.session.commit()
    forget_queue()
    with unscoped(db.session):
        db.session.execute(update(OutboxItem).where(OutboxItem.kind == "order.forward").values(
            dispatched_at=None, run_after=utcnow() - timedelta(seconds=5)))
        db.session.commit()
    first = _forwards()[0]

    assert run_outbox_item(first) == "done"

    assert loop.wms.batches == [3]
    held = loop.order(external_ids[1])
    assert [loop.order(e).status for e in external_ids] == [
        OrderStatus.AT_WAREHOUSE, OrderStatus.ON_HOLD, OrderStatus.AT_WAREHOUSE]
    assert held.hold_reason.value == "unknown_sku" and "lines[0]" in held.hold_detail
    assert [o["reference"] for o in loop.wms.orders] == [
        f"DS-{loop.tenant.store.id}-{e}" for e in (external_ids[0], external_ids[2])]


def test_a_batch_whose_reply_is_lost_is_sent_again_and_reaches_the_warehouse_once(
        loop: Loop) -> None:
    """The call fails as a whole after the warehouse stored the orders: the job's order is
    retried, the ones it took along are handed back to run on their own, waiting as long as it
    does (due at once, they would be taken along and sent again straight away, over and over,
    while a warehouse is down), and each, sent again, is found at the warehouse rather than
    made twice."""
    loop.wms.batch_limit = 20
    loop.wms.lose_reply_next = 1
    external_ids, [first, *behind] = _forwards_waiting(loop, 3)

    assert run_outbox_item(first) == "retrying"

    lead, *handed_back = _items([first, *behind])
    assert lead.state is OutboxState.PENDING and lead.attempts == 1 and lead.run_after > utcnow()
    assert loop.order(external_ids[0]).status is OrderStatus.RETRYING
    assert [(i.state, i.attempts) for i in handed_back] == [(OutboxState.PENDING, 0)] * 2
    assert all(i.leased_until is None or i.leased_until <= utcnow() for i in handed_back)
    assert all(i.run_after > utcnow() + timedelta(seconds=2) for i in handed_back)
    assert [loop.order(e).status for e in external_ids[1:]] == [OrderStatus.QUEUED] * 2

    with unscoped(db.session):  # the backoff over
        db.session.execute(update(OutboxItem).where(OutboxItem.kind == "order.forward").values(
            run_after=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    run_until_idle()

    assert [loop.order(e).status for e in external_ids] == [OrderStatus.AT_WAREHOUSE] * 3
    assert len(loop.wms.orders) == 3
    assert all("found_at_warehouse" in [event.kind for event in loop.order(e).events]
               for e in external_ids)
