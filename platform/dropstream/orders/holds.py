"""Evaluating an order (map it, then queue it or hold it with a reason) and releasing held
orders when the listing or shipping rule they were missing is added."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dropstream.alerts.services import raise_alert, resolve_alerts
from dropstream.connectors.types import LineKind
from dropstream.events import announce
from dropstream.jobs.models import LeasedWork
from dropstream.jobs.outbox import add_work
from dropstream.orders.mapping import Problem, StoreCatalog, map_order, read_catalog
from dropstream.orders.models import Order
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.orders.timeline import record
from dropstream.orders.transitions import transition
from dropstream.stores.models import Store

#: Statuses from which (re-)evaluation may move an order.
EVALUABLE = (OrderStatus.IMPORTED, OrderStatus.ON_HOLD, OrderStatus.ERROR)


@dataclass(frozen=True)
class Verdict:
    """What evaluating an order changed that others must be told of once its row is written:
    plugins, the store's hold alert, the warehouse's queue (:func:`tell`). Empty when nothing
    changed (the same hold again) or the order was skipped."""

    held_for: Problem | None = None
    detail: str = ""
    queued: bool = False
    released: bool = False
    automatic: bool = False


def evaluate(session: Session, order: Order, store: Store, *, automatic: bool = False,
             actor: str | None = None, catalog: StoreCatalog | None = None) -> OrderStatus:
    """Map ``order``; queue it for the warehouse, hold it, or skip it. Returns the new status."""
    tell(session, order, store,
         judge(session, order, store, automatic=automatic, actor=actor, catalog=catalog))
    return order.status


def judge(session: Session, order: Order, store: Store, *, automatic: bool = False,
          actor: str | None = None, catalog: StoreCatalog | None = None) -> Verdict:
    """Map ``order`` (with ``catalog`` when given, see :func:`~dropstream.orders.mapping.map_order`)
    and move it (status, timeline); what others must hear of it is returned.

    Works on an order not yet written too (an import's new order): it needs no ids, so the
    order, its mapping and its timeline go to the database in one flush, before :func:`tell`."""
    was_held = order.status is OrderStatus.ON_HOLD
    result = map_order(session, order, store, catalog)
    if not result.shippable:
        if transition(session, order, EVALUABLE, OrderStatus.SKIPPED, hold_reason=None, hold_detail=None):
            code, why = _nothing_to_ship(order)
            record(session, order, "skipped", f"Nothing to ship: {why}. Not sent to the warehouse.",
                   actor=actor, code=code, field="lines")
        return Verdict()
    if not result.ok:
        first = result.problems[0]
        detail = "; ".join(p.detail for p in result.problems)
        if order.status is OrderStatus.ON_HOLD and order.hold_reason is first.reason and order.hold_detail == detail:
            return Verdict()  # still the same hold; nothing new to say
        if transition(session, order, EVALUABLE, OrderStatus.ON_HOLD, hold_reason=first.reason, hold_detail=detail):
            record(session, order, "held", f"On hold ({first.reason.value}): {detail}",
                   reason=first.reason.value, field=first.field, fix=first.reason.explanation, actor=actor)
            return Verdict(held_for=first, detail=detail)
        return Verdict()
    if transition(session, order, EVALUABLE, OrderStatus.QUEUED, hold_reason=None, hold_detail=None,
                  error_code=None, error_message=None, forward_attempts=0):
        if was_held:
            how = "automatically, the missing mapping was added" if automatic else f"by {actor or 'a person'}"
            record(session, order, "released", f"Released {how}; queued for the warehouse.", actor=actor)
        else:
            record(session, order, "queued", "Validated and mapped; queued for the warehouse.", actor=actor)
        return Verdict(queued=True, released=was_held, automatic=automatic)
    return Verdict()


def tell(session: Session, order: Order, store: Store, verdict: Verdict, *,
         new_order: bool = False) -> None:
    """Announce what :func:`judge` decided, raise the store's hold alert, queue the forward
    (``new_order``: of an order this transaction imported)."""
    if verdict.held_for is not None:
        reason = verdict.held_for.reason
        announce(session, "order_held", order_id=order.id, merchant_id=order.merchant_id,
                 reason=reason.value, detail=verdict.detail)
        raise_alert(session, provider_id=order.provider_id, merchant_id=order.merchant_id,
                    store_id=store.id, order_id=order.id, code=f"hold_{reason.value}",
                    group_key=hold_alert_key(store.id, reason), severity="warning",
                    message=f"Orders of {store.name} are on hold: {reason.explanation}")
    if verdict.released:
        announce(session, "order_released", order_id=order.id, merchant_id=order.merchant_id,
                 automatic=verdict.automatic)
    if verdict.queued:
        add_work(session, kind="order.forward", subject_id=order.id, store_id=store.id,
                 merchant_id=order.merchant_id, provider_id=order.provider_id,
                 new_subject=new_order)


def _nothing_to_ship(order: Order) -> tuple[str, str]:
    """Why an order has nothing for the warehouse: a code and the words for it."""
    kinds = {line.kind for line in order.lines}
    if kinds == {LineKind.DIGITAL}:
        return "digital_only", "every line is a download"
    if kinds == {LineKind.GIFT_CERTIFICATE}:
        return "gift_certificate_only", "every line is a gift certificate"
    if not kinds:
        return "no_lines", "the order has no lines"
    return "nothing_to_ship", "every line is a download or a gift certificate"


def hold_alert_key(store_id: int, reason: HoldReason) -> str:
    return f"store:{store_id}:hold:{reason.value}"


def request_hold_rescan(session: Session, store: Store) -> None:
    """A listing or shipping rule of ``store`` changed: re-validate its held orders (as outbox
    work in this transaction, so the caller stays fast and nothing is lost)."""
    add_work(session, kind="store.rescan_holds", subject_id=store.id, store_id=store.id,
             merchant_id=store.merchant_id, provider_id=store.provider_id)


#: Held orders a rescan loads and maps against one read of the store's listings and rules.
RESCAN_CHUNK = 500


def rescan_holds(session: Session, store: Store) -> int:
    """Re-evaluate every order of ``store`` held for a mapping reason; returns how many moved on."""
    released = 0
    held = session.scalars(
        select(Order.id).where(
            Order.store_id == store.id, Order.status == OrderStatus.ON_HOLD,
            Order.hold_reason.in_([r for r in HoldReason if r.released_by_mapping]),
        ).order_by(Order.id)
    ).all()
    for start in range(0, len(held), RESCAN_CHUNK):
        # Each chunk's orders come with what mapping reads of them, and the store's listings
        # and rules are read once for the chunk, not once per order.
        orders = session.scalars(
            select(Order).where(Order.id.in_(held[start:start + RESCAN_CHUNK])).order_by(Order.id)
            .options(selectinload(Order.lines), selectinload(Order.addresses),
                     selectinload(Order.warehouse_lines))
        ).all()
        catalog = read_catalog(session, store, orders)
        for order in orders:
            if evaluate(session, order, store, automatic=True,
                        catalog=catalog) is not OrderStatus.ON_HOLD:
                released += 1
        session.flush()
    for reason in HoldReason:
        still_held = session.scalar(
            select(Order.id).where(Order.store_id == store.id, Order.status == OrderStatus.ON_HOLD,
                                   Order.hold_reason == reason).limit(1)
        )
        if still_held is None:
            resolve_alerts(session, merchant_id=store.merchant_id, group_key=hold_alert_key(store.id, reason))
    return released


def rescan_holds_job(item: LeasedWork) -> None:
    """Outbox handler ``store.rescan_holds``: ``subject_id`` is the store id."""
    from dropstream.extensions import db

    store = db.session.get(Store, item.subject_id)
    if store is not None:
        rescan_holds(db.session, store)
