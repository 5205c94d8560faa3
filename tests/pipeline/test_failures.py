"""Transient failures retry with backoff and stay visible; failures that need a person stop and
say so; nothing is lost or sent twice."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropstream.alerts.models import Alert
from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.orders import actions
from dropstream.orders.statuses import OrderStatus
from dropstream.stores.models import StoreState
from dropstream.testing.jobs import make_due, run_until_idle
from tests.pipeline.conftest import Loop


def retried(times: int) -> None:
    """Run the waiting work ``times`` more times, each at once (as if its backoff had passed)."""
    for _ in range(times):
        make_due()
        run_until_idle()


def test_a_warehouse_outage_retries_with_backoff_then_succeeds(loop: Loop) -> None:
    loop.wms.faults.fail("transient", times=2, on="forward_order")
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.RETRYING
    retry = [e for e in order.events if e.kind == "retrying"][-1]
    assert "503" in retry.message and "Next attempt at" in retry.message
    item = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.forward")).one()
    assert item.state is OutboxState.PENDING and item.attempts == 1 and item.last_error

    make_due()
    run_until_idle()
    make_due()
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1


def test_retries_run_out_into_a_visible_error_that_reprocess_fixes(loop: Loop) -> None:
    loop.wms.faults.fail("server_error", times=8, on="forward_order")
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    retried(8)
    order = loop.order(external_id)
    assert order.status is OrderStatus.ERROR
    assert "500" in order.error_message
    assert db.session.scalars(select(Alert.code)).all() == ["forward_failed"]

    actions.reprocess(db.session, order, actor="user:1")
    db.session.commit()
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE


def test_a_warehouse_outage_longer_than_the_retries_leaves_orders_waiting_not_in_error(
        loop: Loop) -> None:
    """Eight attempts take about ten minutes; a WMS down for longer (maintenance, a failover)
    must not turn every order that came meanwhile into an error that a person reprocesses one
    by one. They wait, say why, raise one alert, look again every few minutes and go once the
    WMS answers. A day on, an order still waiting does become an error."""
    from datetime import timedelta

    from dropstream.jobs.runner import OUTAGE_PATIENCE, OUTAGE_RECHECK

    loop.wms.faults.fail("transient", times=100, on="forward_order")  # 503s until cleared
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    retried(10)
    order = loop.order(external_id)
    assert order.status is OrderStatus.RETRYING
    assert "goes on trying" in order.events[-1].message
    item = db.session.scalars(select(OutboxItem).where(OutboxItem.kind == "order.forward")).one()
    assert item.attempts == 11 and item.state is OutboxState.PENDING
    assert item.run_after - utcnow() <= OUTAGE_RECHECK  # looks again soon, not in an hour
    [alert] = db.session.scalars(select(Alert).where(Alert.resolved_at.is_(None))).all()
    assert alert.code == "warehouse_unreachable" and alert.occurrences == 4  # attempts 8 to 11

    loop.wms.faults.queue.clear()  # the WMS is back
    make_due()
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).resolved_at is not None

    loop.wms.faults.fail("transient", times=100, on="forward_order")
    late = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    loop.poll()
    waiting = db.session.scalars(select(OutboxItem).where(
        OutboxItem.kind == "order.forward", OutboxItem.state == OutboxState.PENDING)).one()
    waiting.attempts, waiting.created_at = 9, utcnow() - OUTAGE_PATIENCE - timedelta(minutes=1)
    db.session.commit()
    make_due()
    run_until_idle()
    assert loop.order(late).status is OrderStatus.ERROR  # a day is patience enough


def test_when_the_warehouse_answers_again_all_the_work_waiting_for_it_goes_at_once(
        loop: Loop) -> None:
    """Past its ordinary retries, waiting work looks again only every few minutes. The first
    piece that gets through releases the rest of what waits for that warehouse, other
    merchants' stores included, so that nothing waits minutes more for its next look."""
    from datetime import timedelta

    from tests.factories import MerchantFactory, StoreFactory

    tenant = loop.tenant
    loop.wms.faults.fail("transient", times=100, on="forward_order")
    first = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    second = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    loop.poll()
    retried(8)  # both beyond their ordinary retries: waiting out the outage
    merchant = MerchantFactory(provider_id=tenant.provider.id)
    store = StoreFactory(provider_id=tenant.provider.id, merchant_id=merchant.id,
                         warehouse_id=tenant.warehouse.id, with_channels=False)
    elsewhere = OutboxItem(provider_id=tenant.provider.id, merchant_id=merchant.id,
                           store_id=store.id, kind="order.forward", subject_id=10**6,
                           dedupe_key="another-merchant-waiting", attempts=9,
                           run_after=utcnow() + timedelta(minutes=4))
    db.session.add(elsewhere)
    items = db.session.scalars(select(OutboxItem).where(
        OutboxItem.kind == "order.forward", OutboxItem.store_id == tenant.store.id)
        .order_by(OutboxItem.id)).all()
    assert [item.attempts for item in items] == [9, 9]
    items[0].run_after = utcnow()  # only the first looks again now
    db.session.commit()

    loop.wms.faults.queue.clear()  # the WMS is back
    run_until_idle()  # no make_due(): the others were due after minutes
    assert {loop.order(first).status, loop.order(second).status} == {OrderStatus.AT_WAREHOUSE}
    db.session.expire_all()
    assert db.session.get(OutboxItem, elsewhere.id).state is OutboxState.DONE


def test_a_poll_waiting_out_an_outage_takes_the_place_of_the_runs_scheduled_meanwhile(
        loop: Loop) -> None:
    """During a warehouse outage a shipments poll retries with backoff. Each interval that
    passes meanwhile used to add a run of its own, which called the warehouse that is down at
    once and then retried too: the calls grew with the outage. Now the waiting run stands for
    them, and scheduling resumes once it is over."""
    from dropstream.jobs.scheduler import tick
    from dropstream.stores.models import Channel, StoreChannel

    loop.wms.faults.fail("transient", times=100, on="fetch_shipments")
    channel_id = loop.store.channel(Channel.SHIPMENTS).id

    def runs() -> list[OutboxItem]:
        return db.session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "channel.run", OutboxItem.subject_id == channel_id)
            .execution_options(populate_existing=True)).all()

    def calls() -> int:
        return 100 - sum(1 for fault in loop.wms.faults.queue if fault[1] == "fetch_shipments")

    loop.poll()
    [waiting] = runs()
    assert waiting.state is OutboxState.PENDING and waiting.attempts == 1 and calls() == 1
    for _ in range(5):  # five intervals pass while the run waits for its next attempt
        db.session.get(StoreChannel, channel_id).next_run_at = utcnow()
        db.session.commit()
        tick()
        run_until_idle()
    assert [run.id for run in runs()] == [waiting.id]
    assert calls() == 1
    assert db.session.get(StoreChannel, channel_id).next_run_at > utcnow()  # looked at again later

    loop.wms.faults.queue.clear()  # the warehouse is back
    retried(1)
    assert [(run.id, run.state) for run in runs()] == [(waiting.id, OutboxState.DONE)]
    db.session.get(StoreChannel, channel_id).next_run_at = utcnow()
    db.session.commit()
    tick()
    assert len(runs()) == 2  # scheduled again


def test_a_lost_reply_never_creates_a_second_warehouse_order(loop: Loop) -> None:
    # The WMS stores the order, then the connection drops: DropStream must look before creating.
    loop.wms.deduplicate = False
    loop.wms.lose_reply_next = 1
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.RETRYING
    make_due()
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1
    assert [e.kind for e in loop.order(external_id).events if e.kind.endswith("warehouse")] == ["found_at_warehouse"]


def test_revoked_store_credentials_pause_the_store_instead_of_hammering(loop: Loop) -> None:
    loop.shop.token = "rotated-by-merchant"
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    calls_before = loop.shop.faults.calls
    run_until_idle()
    store = loop.store
    assert store.state is StoreState.PAUSED
    assert "credentials were refused" in store.state_reason or "refused" in store.state_reason
    assert db.session.scalars(select(Alert.code)).all() == ["auth_failed"]
    calls_after_pause = loop.shop.faults.calls
    run_until_idle()
    assert loop.shop.faults.calls == calls_after_pause, "a paused store must not be called again"
    assert calls_after_pause - calls_before == 1

    from dropstream.stores.channels import resume_store
    from dropstream.stores.credentials import write_credentials

    write_credentials(store, {"token": "rotated-by-merchant"})
    resume_store(db.session, store)
    db.session.commit()
    run_until_idle()
    assert len(loop.wms.orders) == 1
    assert db.session.scalars(select(Alert).where(Alert.resolved_at.is_(None))).all() == []


def test_work_queued_before_its_store_was_paused_waits_instead_of_calling_with_refused_credentials(
        loop: Loop) -> None:
    """Three orders' re-reads are queued when the merchant revokes DropStream's token. The
    first is refused and pauses the store; the other two, already in the queue, must not call
    the store with the refused token as well. They wait, unspent, and run once it is resumed."""
    from dropstream.jobs.runner import run_outbox_item
    from dropstream.orders.inbox import receive_order_hint
    from dropstream.stores.channels import resume_store
    from dropstream.stores.credentials import write_credentials

    external_ids = [loop.shop.create_order([{"sku": "A", "quantity": 1}]) for _ in range(3)]
    for n, external_id in enumerate(external_ids):
        receive_order_hint(db.session, loop.store, event_key=f"evt-{n}", topic="order.created",
                           external_id=external_id, payload={"id": external_id})
    db.session.commit()
    first, *queued = db.session.scalars(select(OutboxItem.id).order_by(OutboxItem.id)).all()
    loop.shop.token = "rotated-by-merchant"

    assert run_outbox_item(first) == "paused"
    calls_after_pause = loop.shop.faults.calls
    assert [run_outbox_item(outbox_id) for outbox_id in queued] == ["paused", "paused"]
    assert loop.shop.faults.calls == calls_after_pause, "called the store with a refused token"
    db.session.expire_all()
    for outbox_id in queued:
        item = db.session.get(OutboxItem, outbox_id)
        assert (item.state, item.attempts) == (OutboxState.PENDING, 0)

    store = loop.store
    write_credentials(store, {"token": "rotated-by-merchant"})
    resume_store(db.session, store)
    db.session.commit()
    run_until_idle()
    statuses = {loop.order(external_id).status for external_id in external_ids}
    assert statuses == {OrderStatus.AT_WAREHOUSE}
    assert len(loop.wms.orders) == 3


def test_new_warehouse_credentials_send_the_orders_that_waited_for_them_at_once(loop: Loop) -> None:
    """The WMS refuses DropStream's credentials: the order waits (an hour, unless fixed), and
    says why, and the warehouse is flagged with an alert. Once the provider enters new
    credentials the order goes at once, the flag is cleared and the alert resolved, with nobody
    waiting out the hour."""
    from dropstream.stores.models import Warehouse
    from dropstream.stores.services import update_warehouse
    from dropstream.tenants.scope import TenantScope

    loop.wms.token = "rotated-at-the-wms"
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    warehouse = db.session.get(Warehouse, loop.tenant.warehouse.id)
    order = loop.order(external_id)
    assert order.status is OrderStatus.RETRYING  # and says why, as the alert does
    assert "refused DropStream's credentials" in order.events[-1].message
    assert warehouse.last_error and "refused" in db.session.scalars(select(Alert.message)).one()
    assert loop.wms.orders == []

    update_warehouse(db.session, TenantScope(loop.tenant.provider.id), warehouse,
                     {"credentials": {"token": "rotated-at-the-wms"}})
    db.session.commit()
    run_until_idle()  # no make_due(): nothing waits out its hour
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1
    db.session.expire_all()
    assert db.session.get(Warehouse, warehouse.id).last_error is None
    assert db.session.scalars(select(Alert).where(Alert.resolved_at.is_(None))).all() == []


def test_after_the_wms_refuses_the_credentials_no_other_order_is_sent_with_them(loop: Loop) -> None:
    """One refusal is enough. The orders after it, and those whose hour of waiting has passed,
    wait for new credentials without calling the WMS with the refused ones again (one WMS serves
    every store of the provider, and some lock an account after repeated failed logins); each
    shows why. New credentials send them all, each once."""
    from dropstream.stores.services import update_warehouse
    from dropstream.stores.setup import run_setup_checks
    from dropstream.tenants.scope import TenantScope

    loop.wms.token = "rotated-at-the-wms"
    first = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    assert loop.order(first).status is OrderStatus.RETRYING
    calls_refused = loop.wms.faults.calls

    later = [loop.shop.create_order([{"sku": "A", "quantity": 1}]) for _ in range(3)]
    loop.poll()
    make_due()  # the hour the refused work waits has passed
    run_until_idle()
    assert loop.wms.faults.calls == calls_refused, "called the WMS with refused credentials"
    for external_id in later:
        order = loop.order(external_id)
        assert order.status is OrderStatus.RETRYING
        assert "token rejected (401)" in order.events[-1].message
    [check] = [c for c in run_setup_checks(db.session, loop.store)
               if c.key.startswith("warehouse.")]
    assert not check.passed and "not asked again" in check.message
    assert loop.wms.faults.calls == calls_refused
    alert = db.session.scalars(select(Alert).where(Alert.code == "auth_failed")).one()
    assert "token rejected (401));" in alert.message  # the WMS's answer, not a repeat of it

    update_warehouse(db.session, TenantScope(loop.tenant.provider.id), loop.tenant.warehouse,
                     {"credentials": {"token": "rotated-at-the-wms"}})
    db.session.commit()
    run_until_idle()
    statuses = {loop.order(external_id).status for external_id in [first, *later]}
    assert statuses == {OrderStatus.AT_WAREHOUSE}
    assert len(loop.wms.orders) == 4


def test_revoked_credentials_pause_the_store_at_once_while_another_transaction_adds_work_for_it(
        loop: Loop) -> None:
    """Adding a row that refers to the store (work, an inbox event, an order) makes PostgreSQL
    share-lock the store's row until that transaction ends, which can be after a long wait for
    the store's API quota. Pausing the store on a refused token must not wait for it: meanwhile
    every other job of the store would call with the refused token too."""
    import threading

    from flask import current_app

    from dropstream.jobs.outbox import add_work
    from dropstream.jobs.runner import run_outbox_item
    from dropstream.orders.inbox import receive_order_hint
    from tests.reliability.concurrency import finishes_while_held

    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: one writer at a time")
    loop.shop.token = "rotated-by-merchant"
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    receive_order_hint(db.session, loop.store, event_key="evt-1", topic="order.created",
                       external_id=external_id, payload={"id": external_id})
    db.session.commit()
    [refresh_id] = db.session.scalars(
        select(OutboxItem.id).where(OutboxItem.kind == "order.refresh"))
    ids = dict(store_id=loop.tenant.store.id, merchant_id=loop.tenant.merchant.id,
               provider_id=loop.tenant.provider.id)
    db.session.rollback()  # this thread holds no transaction meanwhile
    app = current_app._get_current_object()
    holding, done = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def adds_work_and_waits() -> None:
        add_work(db.session, kind="store.rescan_holds", subject_id=ids["store_id"], **ids)
        db.session.flush()
        holding.set()
        done.wait(20)  # as a job waiting for the store's quota to reset would
        db.session.rollback()

    def pauses() -> None:
        outcomes.append(run_outbox_item(refresh_id))

    paused_while_the_other_waited = finishes_while_held(app, adds_work_and_waits, holding, done,
                                                        pauses)
    assert paused_while_the_other_waited, "pausing the store waited for the other transaction"
    assert outcomes == ["paused"]
    db.session.expire_all()
    assert loop.store.state is StoreState.PAUSED
    assert db.session.scalars(select(Alert.code)).all() == ["auth_failed"]


def test_a_refusal_of_credentials_replaced_meanwhile_does_not_pause_the_store_again(
        loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """The merchant reconnects (new credentials, resume) while a job still calls with the old
    ones: that call's refusal must not pause the store again; the work runs with the new ones."""
    from dropstream.jobs import runner
    from dropstream.stores.channels import resume_store
    from dropstream.stores.credentials import write_credentials
    from dropstream.stores.models import Store

    loop.shop.token = "rotated-by-merchant"  # the token DropStream holds is refused from now on
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    reconnects: list[int] = []

    def reconnected_meanwhile(session: Session, outbox_id: int, error: Exception,
                              _auth_failed=runner._auth_failed) -> str:
        # After the refused call was made, before DropStream handled the refusal.
        if not reconnects:
            store = session.get(Store, loop.tenant.store.id)
            write_credentials(store, {"token": "rotated-by-merchant"})
            resume_store(session, store)
            session.commit()
            reconnects.append(outbox_id)
        return _auth_failed(session, outbox_id, error)

    monkeypatch.setattr(runner, "_auth_failed", reconnected_meanwhile)
    run_until_idle()

    assert reconnects, "the old token was refused"
    assert loop.store.state is StoreState.ACTIVE
    assert db.session.scalars(select(Alert.code)).all() == []
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE
    assert len(loop.wms.orders) == 1


def test_an_order_that_cannot_be_read_is_kept_in_error_and_reprocessable(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    loop.shop.orders[external_id]["lines"][0]["price"] = "not-a-number"
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.ERROR and order.error_code == "import_failed"
    assert order.source_payload  # the store's copy is kept

    loop.shop.orders[external_id]["lines"][0]["price"] = "10.00"
    loop.shop.set_status(external_id, "awaiting_fulfillment")
    actions.reprocess(db.session, order, actor="user:1")
    db.session.commit()
    run_until_idle()
    assert loop.order(external_id).status is OrderStatus.AT_WAREHOUSE


def test_cancelled_before_forwarding_never_reaches_the_warehouse(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}], shipping_method="Unmapped")
    run_until_idle()
    loop.shop.set_status(external_id, "cancelled")
    loop.poll()
    assert loop.order(external_id).status is OrderStatus.CANCELLED
    assert loop.wms.orders == []


def test_a_store_cancel_after_forwarding_cancels_at_the_warehouse(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    loop.shop.set_status(external_id, "cancelled")
    loop.poll()
    assert loop.order(external_id).status is OrderStatus.CANCELLED
    assert loop.wms.orders[0]["status"] == "cancelled"


def test_a_cancel_after_shipping_is_shown_as_too_late(loop: Loop) -> None:
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    loop.wms.ship(loop.wms.orders[0]["reference"])
    order = loop.order(external_id)
    actions.cancel(db.session, order, actor="user:1")
    db.session.commit()
    loop.poll()
    order = loop.order(external_id)
    assert order.status is OrderStatus.SHIPPED
    assert any(e.kind == "cancel_too_late" for e in order.events)


def test_manual_hold_and_release(loop: Loop) -> None:
    import pytest

    from dropstream.errors import InvalidTransition
    from dropstream.orders.statuses import HoldReason

    loop.wms.faults.fail("transient", on="forward_order")
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.RETRYING

    actions.hold(db.session, order, actor="user:7", note="customer asked to wait")
    db.session.commit()
    make_due()
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.ON_HOLD and order.hold_reason is HoldReason.MANUAL
    assert loop.wms.orders == []

    actions.release(db.session, order, actor="user:7")
    db.session.commit()
    run_until_idle()
    order = loop.order(external_id)
    assert order.status is OrderStatus.AT_WAREHOUSE
    with pytest.raises(InvalidTransition):
        actions.release(db.session, order, actor="user:7")
    with pytest.raises(InvalidTransition):
        actions.hold(db.session, order, actor="user:7")


def test_a_late_sent_status_never_moves_a_shipped_order_back(loop: Loop) -> None:
    loop.shop.faults.fail("transient", on="mark_order_status")
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()  # forwarded; the "sent" status update failed and waits to be retried
    loop.wms.ship(loop.wms.orders[0]["reference"])
    loop.poll()
    assert loop.shop.orders[external_id]["status"] == "shipped"
    make_due()
    run_until_idle()
    assert loop.shop.orders[external_id]["status"] == "shipped"
    assert loop.order(external_id).status is OrderStatus.SHIPPED
