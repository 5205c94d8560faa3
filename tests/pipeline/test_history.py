"""Work history is kept for the days the provider chose, then deleted by the scheduler: the
outbox and the webhook inbox do not grow without end, and nothing still needed goes with it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import InboxEvent, OutboxItem, OutboxState
from dropstream.jobs.outbox import add_work
from dropstream.jobs.retention import HistoryPruner, prune_history
from dropstream.jobs.scheduler import tick
from dropstream.orders.inbox import receive_order_hint
from dropstream.orders.models import OrderEvent
from dropstream.tenants.scope import unscoped
from dropstream.testing.jobs import run_until_idle
from tests.pipeline.conftest import Loop, wire


def _hint(loop: Loop, external_id: str, key: str) -> bool:
    return receive_order_hint(db.session, loop.store, event_key=key, topic="store/order/created",
                              external_id=external_id, payload={"data": {"id": external_id}})


def _age(model: type, ids: list[int], days: float) -> None:
    """Move rows ``days`` into the past, as if they had been written then."""
    then = utcnow() - timedelta(days=days)
    values = ({"run_after": then, "created_at": then, "finished_at": then}
              if model is OutboxItem else {"received_at": then})
    with unscoped(db.session):
        db.session.execute(update(model).where(model.id.in_(ids)).values(**values))
        db.session.commit()


def _ids(model: type, *where: object) -> set[int]:
    with unscoped(db.session):
        found = set(db.session.scalars(select(model.id).where(*where)))
        db.session.commit()
    return found


def test_the_scheduler_deletes_history_older_than_the_days_kept_and_nothing_still_needed(
        loop: Loop) -> None:
    """Done work and received webhooks past the days kept go, for every tenant. Work not
    finished, work that needs a person (dead), recent history, and the orders with their
    timelines stay."""
    other = wire("globex")
    old_orders = [loop.shop.create_order([{"sku": "A", "quantity": 1}]) for _ in range(2)]
    for external_id in old_orders:
        assert _hint(loop, external_id, f"created-{external_id}")
    other_order = other.shop.create_order([{"sku": "A", "quantity": 1}])
    assert _hint(other, other_order, f"created-{other_order}")
    db.session.commit()
    run_until_idle(channels=False)  # no scheduler tick before the one this test is about
    old_done = _ids(OutboxItem, OutboxItem.state == OutboxState.DONE)
    old_inbox = _ids(InboxEvent)
    assert len(old_inbox) == 3 and len(old_done) >= 6  # a re-read, a forward, a sent status each
    # Work asked for a month ago that still waits (its next attempt tomorrow), and work given up
    # on a month ago.
    for subject_id in (901, 902):
        add_work(db.session, kind="order.forward", subject_id=subject_id, store_id=loop.store.id,
                 merchant_id=loop.store.merchant_id, provider_id=loop.store.provider_id,
                 delay=timedelta(days=1))
    db.session.commit()
    [dead] = _ids(OutboxItem, OutboxItem.subject_id == 901)
    [waiting] = _ids(OutboxItem, OutboxItem.subject_id == 902)
    with unscoped(db.session):
        db.session.execute(update(OutboxItem).where(OutboxItem.id == dead)
                           .values(state=OutboxState.DEAD, last_error="gave up"))
        db.session.execute(update(OutboxItem).where(OutboxItem.id == waiting)
                           .values(created_at=utcnow() - timedelta(days=31)))
        db.session.commit()
    _age(OutboxItem, [*old_done, dead], days=31)
    _age(InboxEvent, list(old_inbox), days=31)
    recent_order = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    assert _hint(loop, recent_order, f"created-{recent_order}")
    db.session.commit()
    run_until_idle(channels=False)
    recent_done = _ids(OutboxItem, OutboxItem.state == OutboxState.DONE) - old_done
    recent_inbox = _ids(InboxEvent) - old_inbox
    pending = _ids(OutboxItem, OutboxItem.state == OutboxState.PENDING)

    tick()

    left = _ids(OutboxItem)
    assert not left & old_done
    assert waiting in pending and recent_done | pending | {dead} <= left
    assert recent_done and _ids(InboxEvent) == recent_inbox and recent_inbox
    for external_id in [*old_orders, recent_order]:  # the orders and their timelines stay
        order = loop.order(external_id)
        assert order.status.value == "at_warehouse"
        assert db.session.scalar(select(func.count()).select_from(OrderEvent)
                                 .where(OrderEvent.order_id == order.id)) >= 2


def test_a_webhook_redelivered_within_the_days_kept_is_still_turned_away(
        app: object, loop: Loop) -> None:
    """A store re-sends an unacknowledged webhook for up to 48 hours; its record is kept past
    that (at least three days), so the copy is known for one."""
    external_id = loop.shop.create_order([{"sku": "A", "quantity": 1}])
    assert _hint(loop, external_id, "created-once")
    db.session.commit()
    _age(InboxEvent, list(_ids(InboxEvent)), days=2.5)

    deleted, more = prune_history(db.session, timedelta(days=3))

    assert (deleted, more) == (0, False)
    assert not _hint(loop, external_id, "created-once")


def test_a_large_history_is_deleted_a_few_batches_per_tick_until_caught_up(loop: Loop) -> None:
    """A first clean-up of months of history must not hold up the relay: each tick deletes a
    few batches, the next ticks go on at once, and once caught up it looks again in an hour."""
    external_ids = [loop.shop.create_order([{"sku": "A", "quantity": 1}]) for _ in range(3)]
    for external_id in external_ids:
        assert _hint(loop, external_id, f"created-{external_id}")
    run_until_idle()
    is_done = OutboxItem.state == OutboxState.DONE
    done, inbox = _ids(OutboxItem, is_done), _ids(InboxEvent)
    assert len(done) >= 9
    _age(OutboxItem, list(done), days=40)
    _age(InboxEvent, list(inbox), days=40)
    clock = [1000.0]
    pruner = HistoryPruner(keep_days=30, batches=2, batch=4, clock=lambda: clock[0])

    with unscoped(db.session):
        first = pruner(db.session)
        assert first == 8 and len(_ids(OutboxItem, is_done)) == len(done) - 8
        rest = 0
        while _ids(OutboxItem, is_done) or _ids(InboxEvent):  # at once: not caught up yet
            deleted = pruner(db.session)
            assert 0 < deleted <= 8
            rest += deleted
        assert first + rest == len(done) + len(inbox)
        assert pruner(db.session) == 0  # caught up (its last batch was not full)
        newly_old = loop.shop.create_order([{"sku": "A", "quantity": 1}])
        assert _hint(loop, newly_old, "created-later")
        db.session.commit()
        _age(InboxEvent, list(_ids(InboxEvent)), days=40)
        clock[0] += 3599
        assert pruner(db.session) == 0  # not before the hour is out
        clock[0] += 2
        assert pruner(db.session) == 1
