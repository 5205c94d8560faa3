"""The database is the truth and the queue is disposable: lost jobs are re-driven, leases keep a
job from running twice, webhooks are stored once, and no store starves the others."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import InboxEvent, OutboxItem, OutboxState
from dropstream.jobs.outbox import STORE_IN_FLIGHT_CAP, add_work, lease, relay_due_work
from dropstream.jobs.runner import run_outbox_item
from dropstream.orders.inbox import receive_order_hint
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.state import get_state
from dropstream.testing.jobs import run_until_idle
from tests.pipeline.conftest import (
    Loop,
    forget_queue,
    recorded_rollbacks,
    recorded_statements,
    wire,
)


def test_work_whose_job_was_lost_is_dispatched_again(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    receive_order_hint(db.session, loop.store, event_key="evt-1", topic="order.created",
                       external_id=external_id, payload={"id": external_id})
    db.session.commit()
    forget_queue()
    assert relay_due_work() == 0, "a freshly dispatched item is left to its worker"

    # Once its dispatch lease runs out, the relay hands it out again.
    db.session.execute(update(OutboxItem).values(dispatched_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    run_until_idle(channels=False)
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1


def test_a_leased_item_is_not_run_by_a_second_worker(loop: Loop) -> None:
    add_work(db.session, kind="store.rescan_holds", subject_id=loop.tenant.store.id,
             store_id=loop.tenant.store.id, merchant_id=loop.tenant.merchant.id,
             provider_id=loop.tenant.provider.id)
    db.session.commit()
    item_id = db.session.scalars(select(OutboxItem.id)).one()
    assert lease(db.session, item_id) is not None
    with recorded_rollbacks() as rollbacks:
        assert run_outbox_item(item_id) == "skipped"  # a duplicate job finds the lease taken
    # It ended with a commit: a rollback makes psycopg forget every statement it prepared on
    # the worker's connection.
    assert rollbacks == []

    # A crashed worker's lease expires and the work is done by another.
    db.session.execute(update(OutboxItem).values(leased_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert run_outbox_item(item_id) == "done"
    assert run_outbox_item(item_id) == "skipped"


def test_the_same_webhook_delivered_many_times_is_stored_and_acted_on_once(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    results = [receive_order_hint(db.session, loop.store, event_key="hash-abc", topic="order.statusUpdated",
                                  external_id=external_id, payload={"id": external_id}) for _ in range(5)]
    db.session.commit()
    assert results == [True, False, False, False, False]
    assert len(db.session.scalars(select(InboxEvent)).all()) == 1
    run_until_idle(channels=False)
    assert len(loop.wms.orders) == 1


def test_asking_twice_for_pending_work_adds_it_once(loop: Loop) -> None:
    for _ in range(3):
        add_work(db.session, kind="store.rescan_holds", subject_id=loop.tenant.store.id,
                 store_id=loop.tenant.store.id, merchant_id=loop.tenant.merchant.id,
                 provider_id=loop.tenant.provider.id)
    db.session.commit()
    assert len(db.session.scalars(select(OutboxItem)).all()) == 1
    run_until_idle(channels=False)
    add_work(db.session, kind="store.rescan_holds", subject_id=loop.tenant.store.id,
             store_id=loop.tenant.store.id, merchant_id=loop.tenant.merchant.id,
             provider_id=loop.tenant.provider.id)
    db.session.commit()
    states = sorted(s.value for s in db.session.scalars(select(OutboxItem.state)))
    assert states == ["done", "pending"], "once done, the same work can be asked for again"


def test_a_backlog_on_one_store_does_not_starve_another(loop: Loop) -> None:
    other = wire("globex")
    busy_store, quiet_store = loop.tenant.store, other.tenant.store
    for n in range(40):
        add_work(db.session, kind="store.rescan_holds", subject_id=busy_store.id, store_id=busy_store.id,
                 merchant_id=busy_store.merchant_id, provider_id=busy_store.provider_id,
                 dedupe_key=f"burst-{n}")
    add_work(db.session, kind="store.rescan_holds", subject_id=quiet_store.id, store_id=quiet_store.id,
             merchant_id=quiet_store.merchant_id, provider_id=quiet_store.provider_id)
    db.session.commit()
    dispatched = db.session.execute(select(OutboxItem.store_id).where(OutboxItem.dispatched_at.is_not(None))).scalars().all()
    assert dispatched.count(busy_store.id) == STORE_IN_FLIGHT_CAP
    assert quiet_store.id in dispatched, "the quiet store's work goes out at once"
    forget_queue()
    db.session.execute(update(OutboxItem).values(dispatched_at=None))
    db.session.commit()
    relay_due_work(limit=10)
    first_round = db.session.execute(select(OutboxItem.store_id).where(OutboxItem.dispatched_at.is_not(None))).scalars().all()
    assert quiet_store.id in first_round and first_round.count(busy_store.id) <= STORE_IN_FLIGHT_CAP
    run_until_idle(channels=False)
    assert set(db.session.scalars(select(OutboxItem.state))) == {OutboxState.DONE}


def test_new_work_for_a_store_whose_work_waits_for_the_relay_waits_behind_it(loop: Loop) -> None:
    """A flash sale's backlog: the store's work waits for the relay. A new order's re-read
    does not jump it with a queue job of its own; it waits its turn, and the job that runs the
    re-reads waiting takes it along. A store with nothing waiting still gets its work at once."""
    other = wire("globex")
    busy, quiet = loop.tenant.store, other.tenant.store
    waiting = [loop.shop.create_order([{"sku": "A", "quantity": 1}]) for _ in range(3)]
    for external_id in waiting:
        receive_order_hint(db.session, busy, event_key=f"created-{external_id}",
                           topic="store/order/created", external_id=external_id, payload={})
    db.session.commit()
    forget_queue()  # their jobs lost: the three wait for the relay
    db.session.execute(update(OutboxItem).values(dispatched_at=None,
                                                 run_after=utcnow() - timedelta(seconds=5)))
    db.session.commit()

    newest = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    receive_order_hint(db.session, busy, event_key="created-newest", topic="store/order/created",
                       external_id=newest, payload={})
    elsewhere = other.shop.create_order([{"sku": "A", "quantity": 1}])
    receive_order_hint(db.session, quiet, event_key="created-elsewhere",
                       topic="store/order/created", external_id=elsewhere, payload={})
    db.session.commit()

    queued = _queued_ids()
    rows = {(row.store_id, row.payload["external_id"]): row.id
            for row in db.session.scalars(select(OutboxItem))}
    assert queued == [rows[quiet.id, elsewhere]], "only the quiet store's re-read has a queue job"
    assert db.session.get(OutboxItem, rows[busy.id, newest]).dispatched_at is None

    assert run_outbox_item(rows[busy.id, waiting[0]]) == "done"  # as the relay hands it out
    db.session.expire_all()
    assert [db.session.get(OutboxItem, rows[busy.id, e]).state for e in [*waiting, newest]] == [
        OutboxState.DONE] * 4
    assert all(loop.order(e).status is not None for e in [*waiting, newest])  # all imported


def test_a_request_arriving_while_the_same_work_runs_is_not_folded_into_it(loop: Loop) -> None:
    # A webhook while the re-read of its order is in flight may carry news the running re-read
    # missed: here the order reaches the monitored status just after the first re-read read it.
    from dropstream.jobs.models import OutboxState
    from dropstream.orders.importing import refresh_order

    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}], status="pending")
    receive_order_hint(db.session, loop.store, event_key="created", topic="order.created",
                       external_id=external_id, payload={})
    db.session.commit()
    first = db.session.scalars(select(OutboxItem.id)).one()
    assert lease(db.session, first) is not None
    assert refresh_order(db.session, loop.store, external_id) is None  # read: not ready yet
    loop.shop.set_status(external_id, "awaiting_fulfillment")
    receive_order_hint(db.session, loop.store, event_key="status", topic="order.statusUpdated",
                       external_id=external_id, payload={})
    db.session.execute(update(OutboxItem).where(OutboxItem.id == first).values(state=OutboxState.DONE))
    db.session.commit()  # the first re-read finishes, having seen nothing to import

    run_until_idle(channels=False)
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE


def _queued_ids() -> list[int]:
    """Ids waiting in the configured queue (taking them out of it)."""
    queue = get_state().queue
    if hasattr(queue, "drain"):
        return queue.drain()
    ids = []
    for name in ("webhooks", "default", "bulk"):
        ids += [int(job_id.removeprefix("outbox-")) for job_id in queue.queue(name).job_ids]
        queue.queue(name).empty()
    return ids


def _an_order_waiting_for_its_import(loop: Loop) -> tuple[str, int]:
    """A new order in the store, its webhook received: its id and the queued re-read's."""
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    receive_order_hint(db.session, loop.store, event_key="evt-1", topic="order.created",
                       external_id=external_id, payload={"id": external_id})
    db.session.commit()
    [refresh_id] = _queued_ids()
    return external_id, refresh_id


def test_an_orders_next_step_runs_in_the_same_job_without_a_queue_round_trip(loop: Loop) -> None:
    external_id, refresh_id = _an_order_waiting_for_its_import(loop)

    assert run_outbox_item(refresh_id) == "done"

    # The import queued the forward, the forward "mark as sent", and this job ran both: the
    # order is at the warehouse, every item is done, and nothing went through the queue.
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1
    states = dict(db.session.execute(select(OutboxItem.kind, OutboxItem.state)).all())
    assert states == {"order.refresh": OutboxState.DONE, "order.forward": OutboxState.DONE,
                      "order.mark_sent": OutboxState.DONE}
    assert _queued_ids() == []


def test_a_new_orders_forward_is_claimed_without_asking_whether_another_worker_runs_it(
        loop: Loop) -> None:
    """Forwards run one at a time per order, and a worker claiming one asks first (a lock and
    a query on PostgreSQL). No worker can be forwarding an order the claiming import has just
    created, so that claim asks nothing; a forward of an order released later still asks (see
    the held-and-released test below)."""
    external_id, refresh_id = _an_order_waiting_for_its_import(loop)

    with recorded_statements() as statements:
        assert run_outbox_item(refresh_id) == "done"

    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    asked = [s for s in statements if "pg_advisory_xact_lock" in s or "outbox.id !=" in s]
    assert asked == []


class _WorkerDied(BaseException):
    """What the runner cannot catch: the process ending under it."""


def test_a_next_step_is_leased_in_the_commit_that_ends_the_step_before_it(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import event

    from dropstream.orders import forwarding, importing

    external_id, refresh_id = _an_order_waiting_for_its_import(loop)
    commits: list[str] = []
    session = db.session()
    event.listen(session, "after_commit", lambda _s: commits.append("commit"))

    def dies_on_arrival(item: object) -> None:
        commits.append("forward starts")
        raise _WorkerDied

    def imports(item: object, _import=importing.refresh_order_job) -> None:
        _import(item)
        commits.append("import returns")

    monkeypatch.setattr(importing, "refresh_order_job", imports)
    monkeypatch.setattr(forwarding, "forward_order_job", dies_on_arrival)
    with pytest.raises(_WorkerDied):
        run_outbox_item(refresh_id)

    # The commit that ended the import also leased its forward for this worker: no
    # transaction of its own before the forward starts...
    assert commits[commits.index("import returns"):] == ["import returns", "commit", "forward starts"]
    db.session.rollback()
    forward = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.forward")).one()
    assert forward.state is OutboxState.PENDING and forward.attempts == 1
    assert forward.leased_until > utcnow()
    assert run_outbox_item(forward.id) == "skipped", "held for the worker that claimed it"

    # ...and a worker that dies holding it loses nothing: the lease runs out, the relay hands
    # the forward out again, and the order reaches the warehouse once.
    monkeypatch.undo()
    db.session.execute(update(OutboxItem).where(OutboxItem.id == forward.id)
                       .values(leased_until=utcnow() - timedelta(seconds=1),
                               dispatched_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    run_until_idle(channels=False)
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1


def test_a_job_that_ran_its_last_allowed_step_queues_the_next_one_unleased(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    from dropstream.jobs import runner

    monkeypatch.setattr(runner, "MAX_FOLLOW_UPS", 1)  # the import, then its forward, no more
    external_id, refresh_id = _an_order_waiting_for_its_import(loop)

    assert run_outbox_item(refresh_id) == "done"

    # "Mark as sent" is left to any free worker: queued, and not held by this one.
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    mark_sent = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.mark_sent")).one()
    assert mark_sent.state is OutboxState.PENDING and mark_sent.leased_until is None
    assert _queued_ids() == [mark_sent.id]


def test_a_next_step_reads_what_the_step_before_it_wrote_without_loading_it_again(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import event

    from dropstream.orders import forwarding

    external_id, refresh_id = _an_order_waiting_for_its_import(loop)
    forwarding_now = False
    read_while_forwarding: list[str] = []

    def on_execute(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if forwarding_now and statement.lstrip().upper().startswith("SELECT"):
            read_while_forwarding.append(statement)

    def forward(item: object, _forward=forwarding.forward_order_job) -> None:
        nonlocal forwarding_now
        forwarding_now = True
        try:
            _forward(item)
        finally:
            forwarding_now = False

    event.listen(db.engine, "before_cursor_execute", on_execute)
    monkeypatch.setattr(forwarding, "forward_order_job", forward)
    try:
        assert run_outbox_item(refresh_id) == "done"
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)

    # The import had just written the order, its lines and addresses, and loaded the store:
    # the forward sent them from memory. (It loads the warehouse, which the import did not.)
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1
    tables = ("orders", "order_lines", "order_addresses", "warehouse_lines", "stores")
    assert [s for s in read_while_forwarding if any(f"FROM {t} " in s or f"FROM {t}\n" in s
                                                    for t in tables)] == []


def test_a_job_that_makes_several_pieces_of_work_runs_the_first_and_queues_the_rest(
        loop: Loop) -> None:
    from dropstream.catalog.models import ShippingRule
    from dropstream.orders.holds import request_hold_rescan

    held = [loop.shop.create_order([{"sku": "A", "quantity": 1}], shipping_method="Air") for _ in range(2)]
    run_until_idle()
    assert {loop.order(e).status for e in held} == {OrderStatus.ON_HOLD}
    t = loop.tenant
    db.session.add(ShippingRule(provider_id=t.provider.id, merchant_id=t.merchant.id, store_id=t.store.id,
                                store_method="Air", match_key="air", warehouse_code="AIR"))
    request_hold_rescan(db.session, loop.store)
    db.session.commit()
    [rescan_id] = _queued_ids()

    assert run_outbox_item(rescan_id) == "done"

    # Two orders released, two forwards: the rescan's worker sent the first itself (no trip
    # through the queue); the other was handed to the queue, for any free worker.
    forwards = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.forward")
                                  .order_by(OutboxItem.id)).all()
    assert [f.state for f in forwards] == [OutboxState.DONE, OutboxState.PENDING]
    assert _queued_ids() == [forwards[1].id]
    assert len(loop.wms.orders) == 1
    assert loop.order(held[0]).status is OrderStatus.AT_WAREHOUSE

    assert run_outbox_item(forwards[1].id) == "done"
    assert len(loop.wms.orders) == 2


def test_a_jobs_next_step_continues_it_even_when_its_store_has_no_room(loop: Loop) -> None:
    t = loop.tenant
    for n in range(STORE_IN_FLIGHT_CAP):  # the store's share of workers is taken
        add_work(db.session, kind="store.rescan_holds", subject_id=t.store.id, store_id=t.store.id,
                 merchant_id=t.merchant.id, provider_id=t.provider.id, dedupe_key=f"busy-{n}")
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    receive_order_hint(db.session, loop.store, event_key="evt-1", topic="order.created",
                       external_id=external_id, payload={"id": external_id})
    db.session.commit()
    refresh_id = db.session.scalar(select(OutboxItem.id).where(OutboxItem.kind == "order.refresh"))
    assert refresh_id not in _queued_ids(), "over the cap, new work waits for the relay"

    run_outbox_item(refresh_id)  # as the relay hands it out once there is room

    # Its forward is the same order's next step: it takes the finished job's place rather than
    # waiting another turn.
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE


def test_a_channel_runs_alone_a_second_run_waits_for_the_first_without_losing_an_attempt(
        loop: Loop) -> None:
    """Two runs of one channel (a retry and the next scheduled run, due together) would read
    the same cursor and write the same rows. The second is not leased while the first holds
    its lease, then runs once the first has ended; a lapsed lease does not hold it up."""
    from dropstream.stores.models import Channel

    channel = loop.store.channel(Channel.SHIPMENTS)
    ids = []
    for key in ("first", "second"):
        add_work(db.session, kind="channel.run", subject_id=channel.id, store_id=channel.store_id,
                 merchant_id=channel.merchant_id, provider_id=channel.provider_id,
                 dedupe_key=f"channel.run:{channel.id}:{key}")
        db.session.commit()
        ids.append(db.session.scalar(select(func.max(OutboxItem.id))))
    first, second = ids
    forget_queue()
    assert lease(db.session, first) is not None  # another worker is running the first
    assert run_outbox_item(second) == "deferred"
    item = db.session.get(OutboxItem, second, populate_existing=True)
    assert item.state is OutboxState.PENDING and item.attempts == 0
    assert item.run_after > utcnow() + timedelta(seconds=1.5)
    assert item.leased_until is None  # never started: a new ask for a run folds into it
    assert db.session.get(type(channel), channel.id, populate_existing=True).last_run_at is None

    db.session.execute(update(OutboxItem).where(OutboxItem.id.in_(ids)).values(
        leased_until=utcnow() - timedelta(seconds=1), run_after=utcnow()))  # the first lapsed
    db.session.commit()
    assert run_outbox_item(second) == "done"
    assert db.session.get(OutboxItem, second, populate_existing=True).attempts == 1
    assert db.session.get(type(channel), channel.id, populate_existing=True).last_run_at is not None


def _backlog_of_rereads(loop: Loop, count: int) -> tuple[list[str], list[int]]:
    """``count`` orders whose webhooks were stored while every worker was busy: re-reads that
    waited (the queue's jobs for them are still to come)."""
    external_ids = [loop.shop.create_order([{"sku": "A", "quantity": n + 1}]) for n in range(count)]
    for n, external_id in enumerate(external_ids):
        receive_order_hint(db.session, loop.store, event_key=f"evt-{n}", topic="order.created",
                           external_id=external_id, payload={"id": external_id})
    db.session.commit()
    forget_queue()
    db.session.execute(update(OutboxItem).values(run_after=utcnow() - timedelta(seconds=5)))
    db.session.commit()
    ids = list(db.session.scalars(select(OutboxItem.id).order_by(OutboxItem.id)))
    return external_ids, ids


def test_re_reads_queued_up_for_a_store_are_done_by_one_job(loop: Loop) -> None:
    external_ids, [first, *rest] = _backlog_of_rereads(loop, 4)

    assert run_outbox_item(first) == "done"

    refreshes = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.refresh")
                                   .execution_options(populate_existing=True)).all()
    assert {item.state for item in refreshes} == {OutboxState.DONE}
    assert [run_outbox_item(item_id) for item_id in rest] == ["skipped"] * 3  # their late jobs
    # Each order's forward is its own work: the import's worker sent the first itself, the
    # others wait for any free worker.
    assert [loop.order(e).status for e in external_ids] == (
        [OrderStatus.AT_WAREHOUSE] + [OrderStatus.QUEUED] * 3)
    run_until_idle(channels=False)
    assert [loop.order(e).status for e in external_ids] == [OrderStatus.AT_WAREHOUSE] * 4
    assert len(loop.wms.orders) == 4


def test_re_reads_taken_along_by_a_job_that_fails_are_handed_back_unspent(loop: Loop) -> None:
    external_ids, [first, *rest] = _backlog_of_rereads(loop, 3)
    loop.shop.faults.fail("transient", times=1, on="fetch_order")

    assert run_outbox_item(first) == "retrying"

    items = {item.id: item for item in db.session.scalars(
        select(OutboxItem).execution_options(populate_existing=True))}
    assert items[first].attempts == 1 and items[first].run_after > utcnow()  # backs off
    for item_id in rest:  # due at once, each to run on its own, no attempt spent
        assert items[item_id].state is OutboxState.PENDING and items[item_id].attempts == 0
        assert items[item_id].run_after <= utcnow() and items[item_id].leased_until <= utcnow()
    assert not db.session.scalars(select(Order)).all()  # nothing half-imported
    run_until_idle(channels=False)
    assert [loop.order(e).status for e in external_ids[1:]] == [OrderStatus.AT_WAREHOUSE] * 2


#: How many test.alone handlers run at this moment, and the most that ever did.
_alone = {"running": 0, "peak": 0}
_alone_lock = threading.Lock()


def alone_job(item: object) -> None:
    """Handler of the test kind ``test.alone``: a short piece of work that must run alone."""
    with _alone_lock:
        _alone["running"] += 1
        _alone["peak"] = max(_alone["peak"], _alone["running"])
    time.sleep(0.2)
    with _alone_lock:
        _alone["running"] -= 1


def test_work_that_runs_alone_never_overlaps_and_never_stalls_however_many_rows_wait(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six rows of one subject, all due at once, hammered by three workers: one runs at a
    time, and every row is done (two workers that each saw the other's lease and both waited,
    again and again, would never finish)."""
    from flask import current_app

    from dropstream.jobs.registry import JOBS, JobSpec

    from dropstream.jobs import runner

    monkeypatch.setitem(JOBS, "test.alone", JobSpec(f"{__name__}:alone_job", one_at_a_time=True))
    monkeypatch.setattr(runner, "BUSY_DELAY", timedelta(milliseconds=20))
    _alone.update(running=0, peak=0)
    for n in range(6):
        add_work(db.session, kind="test.alone", subject_id=loop.tenant.store.id,
                 store_id=loop.tenant.store.id, merchant_id=loop.tenant.merchant.id,
                 provider_id=loop.tenant.provider.id, dedupe_key=f"test.alone:{n}")
    db.session.commit()
    ids = list(db.session.scalars(select(OutboxItem.id).where(OutboxItem.kind == "test.alone")))
    forget_queue()
    db.session.rollback()  # this thread holds no transaction (on SQLite: no write lock) meanwhile
    app = current_app._get_current_object()
    deadline = time.monotonic() + 60

    def worker(offset: int) -> None:
        with app.app_context():
            while time.monotonic() < deadline:
                pending = db.session.scalars(select(OutboxItem.id).where(
                    OutboxItem.id.in_(ids), OutboxItem.state == OutboxState.PENDING)).all()
                db.session.rollback()
                if not pending:
                    return
                for outbox_id in pending[offset % len(pending):] + pending[:offset % len(pending)]:
                    run_outbox_item(outbox_id)
                time.sleep(0.05)  # a deferred row is due again after BUSY_DELAY

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    db.session.expire_all()
    states = db.session.scalars(select(OutboxItem.state).where(OutboxItem.id.in_(ids))).all()
    assert states == [OutboxState.DONE] * 6, "rows that must run alone stalled"
    assert _alone["peak"] == 1


def test_an_order_held_and_released_while_its_forward_runs_is_not_forwarded_twice_at_once(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """A person holds and releases an order while its forward waits for the warehouse's
    answer. The release asks for a forward of its own (the running one cannot take it); run
    at the same time, both would look the reference up before either created it. The second
    waits until the first has ended, then finds the order at the warehouse."""
    from flask import current_app

    if db.engine.dialect.name == "sqlite":
        pytest.skip("on the embedded default a running job's transaction keeps every other "
                    "writer out (BEGIN IMMEDIATE): nobody can hold the order meanwhile")

    from dropstream.orders import actions
    from dropstream.testing.reference import ReferenceWarehouse
    from tests.reliability.concurrency import run_at_once

    external_id, refresh_id = _an_order_waiting_for_its_import(loop)
    in_call, answer = threading.Event(), threading.Event()
    calls = {"now": 0, "most_at_once": 0, "all": 0}
    real_forward = ReferenceWarehouse.forward_order

    def slow_forward(self: ReferenceWarehouse, order: object) -> object:
        calls["now"] += 1
        calls["all"] += 1
        calls["most_at_once"] = max(calls["most_at_once"], calls["now"])
        try:
            if calls["all"] == 1:
                in_call.set()
                answer.wait(20)  # the warehouse takes its time over the first
            return real_forward(self, order)
        finally:
            calls["now"] -= 1

    monkeypatch.setattr(ReferenceWarehouse, "forward_order", slow_forward)
    db.session.rollback()  # this thread holds no transaction (on SQLite: no write lock) meanwhile
    app = current_app._get_current_object()
    forward = [("first", lambda: run_outbox_item(refresh_id))]
    first = threading.Thread(target=run_at_once, args=(app, forward))
    first.start()
    try:
        assert in_call.wait(20), "the import never forwarded the order"
        order = loop.order(external_id)
        actions.hold(db.session, order, actor="user:7")
        db.session.commit()
        actions.release(db.session, loop.order(external_id), actor="user:7")
        db.session.commit()
        [second] = db.session.scalars(select(OutboxItem.id).where(
            OutboxItem.kind == "order.forward", OutboxItem.id != _claimed_forward(refresh_id)))
        _queued_ids()
        assert run_outbox_item(second) == "deferred"
    finally:
        answer.set()
        first.join(20)

    db.session.execute(update(OutboxItem).where(OutboxItem.id == second).values(run_after=utcnow()))
    db.session.commit()
    run_until_idle(channels=False)
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert calls["most_at_once"] == 1
    assert len(loop.wms.orders) == 1
    assert db.session.get(OutboxItem, second, populate_existing=True).state is OutboxState.DONE


def _claimed_forward(refresh_id: int) -> int:
    """The forward the import of ``refresh_id`` added (and its worker claimed)."""
    return db.session.scalars(select(OutboxItem.id).where(
        OutboxItem.kind == "order.forward", OutboxItem.id > refresh_id).order_by(OutboxItem.id)).first()
