"""Forwarding queued orders to the warehouse, and telling the store they were sent.

Each consignment (ship-to address) becomes one warehouse order under a stable reference; each
acknowledgement is committed before the next consignment is sent (the last one with the
order's new status), so a retry resumes where the last attempt stopped, and the connector
looks the reference up before creating (an order reaches the warehouse once even when an
earlier reply was lost). Where forwards queue up for a store and its warehouse takes orders in
batches, a job sends the store's waiting forwards in one call, and records them in one commit.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from dropstream.alerts.services import raise_alert
from dropstream.connectors.base import (
    AuthError,
    Capability,
    ConnectorError,
    RejectedError,
    TransientError,
    WarehouseConnector,
    means_unreachable,
)
from dropstream.connectors.types import Address, WarehouseOrder, WarehouseOrderAck
from dropstream.connectors.types import WarehouseLine as WarehouseLineData
from dropstream.db import UTCDateTime, load, utcnow
from dropstream.events import announce
from dropstream.extensions import db
from dropstream.jobs.heartbeat import lease_policy
from dropstream.jobs.models import LeasedWork
from dropstream.jobs.outbox import (
    add_work,
    backoff_delay,
    finish_taken,
    hand_back,
    part_of_backlog,
    take_along,
)
from dropstream.jobs.registry import JOBS
from dropstream.jobs.runner import OUTAGE_RECHECK
from dropstream.orders.models import Order, OrderAddress, WarehouseLine
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.orders.timeline import record
from dropstream.orders.transitions import transition
from dropstream.state import get_state
from dropstream.stores.connections import store_connector, warehouse_connector
from dropstream.stores.models import Store

FORWARDABLE = (OrderStatus.QUEUED, OrderStatus.RETRYING)
#: Once the warehouse has the order, that is the truth, whatever a person did meanwhile.
ACCEPTED_FROM = (OrderStatus.QUEUED, OrderStatus.RETRYING, OrderStatus.ON_HOLD, OrderStatus.ERROR)


def forward_order(session: Session, order: Order,
                  connector: WarehouseConnector | None = None) -> None:
    """Send the order's consignments not yet at the warehouse, one call each, each
    acknowledgement committed before the next call (through ``connector`` when the caller
    built the store's already)."""
    if order.status not in FORWARDABLE:
        return  # cancelled, held or already sent since this work was queued
    store = session.get(Store, order.store_id)
    assert store is not None
    if not _has_warehouse(session, store, [order]):
        return
    connector = connector or warehouse_connector(store.warehouse, store)
    consignments = _consignments(order)
    to_send = [(address, lines) for address, lines in consignments if not address.warehouse_order_id]
    for position, (address, lines) in enumerate(to_send):
        if position:
            session.commit()  # the acknowledgements so far are durable before the next call
        try:
            ack = connector.forward_order(_warehouse_order(order, address, lines, store))
        except RejectedError as error:
            _rejected(session, order, store, error, _order_field(order, address, lines, error.field))
            return
        _acknowledged(session, order, store, address, ack)
    _accepted(session, order, store, consignments)


def forward_orders(session: Session, store: Store, orders: list[Order],
                   connector: WarehouseConnector) -> None:
    """Send several orders of ``store`` together: their consignments not yet at the warehouse
    in as few calls as its connector takes (:meth:`~WarehouseConnector.forward_orders`), each
    order then held, refused or accepted as :func:`forward_order` would. The caller commits
    (a call that fails as a whole leaves nothing recorded: each order goes again, and the
    warehouse answers a reference it took with the order it made)."""
    orders = [order for order in orders if order.status in FORWARDABLE]
    if not orders or not _has_warehouse(session, store, orders):
        return
    sendable = [(order, _consignments(order)) for order in orders]
    outbound = [(order, address, lines) for order, consignments in sendable
                for address, lines in consignments if not address.warehouse_order_id]
    refused: dict[int, tuple[OrderAddress, list[WarehouseLine], RejectedError]] = {}
    limit = max(1, connector.forward_batch_limit())
    for start in range(0, len(outbound), limit):
        chunk = outbound[start:start + limit]
        try:
            results = connector.forward_orders(
                [_warehouse_order(order, address, lines, store) for order, address, lines in chunk])
        except RejectedError as error:  # refused as a whole: no account, an address not allowed
            results = [error] * len(chunk)
        if len(results) != len(chunk):
            raise TransientError(f"The warehouse connector answered {len(results)} results for "
                                 f"{len(chunk)} orders", code="malformed_response")
        for (order, address, lines), result in zip(chunk, results, strict=True):
            if isinstance(result, RejectedError):
                refused.setdefault(order.id, (address, lines, result))
            else:
                _acknowledged(session, order, store, address, result)
    for order, consignments in sendable:
        if order.id in refused:
            address, lines, error = refused[order.id]
            field = _order_field(order, address, lines, error.field)
            _rejected(session, order, store, error, field)
        else:
            _accepted(session, order, store, consignments)


def _has_warehouse(session: Session, store: Store, orders: list[Order]) -> bool:
    """Whether the store is linked to a warehouse; if not, its orders go into error saying so."""
    if store.warehouse is not None:
        return True
    for order in orders:
        if transition(session, order, FORWARDABLE, OrderStatus.ERROR, error_code="no_warehouse",
                      error_message="The store is not linked to a warehouse."):
            record(session, order, "error", "Not sent: the store is not linked to a warehouse. "
                   "Link one in the store's settings, then Reprocess.")
    return False


def _acknowledged(session: Session, order: Order, store: Store, address: OrderAddress,
                  ack: WarehouseOrderAck) -> None:
    """A consignment the warehouse has: its warehouse order written, and the timeline told."""
    _write_warehouse_order_id(session, address, ack.warehouse_order_id)
    warehouse = store.warehouse.name
    record(session, order, "forwarded" if ack.created else "found_at_warehouse",
           (f"Sent to {warehouse} as {ack.reference}; warehouse order {ack.warehouse_order_id}."
            if ack.created else
            f"{warehouse} already had {ack.reference} (warehouse order "
            f"{ack.warehouse_order_id}); not sent again."),
           reference=ack.reference, warehouse_order_id=ack.warehouse_order_id)


def _accepted(session: Session, order: Order, store: Store,
              consignments: list[tuple[OrderAddress, list]]) -> None:
    """Every consignment is at the warehouse: the order moves there (and the store is told),
    unless a person cancelled it meanwhile, in which case the warehouse is asked to cancel."""
    ids = [address.warehouse_order_id or "" for address, _ in consignments]
    if transition(session, order, ACCEPTED_FROM, OrderStatus.AT_WAREHOUSE, forward_attempts=0,
                  error_code=None, error_message=None, hold_reason=None, hold_detail=None):
        announce(session, "order_forwarded", order_id=order.id, merchant_id=order.merchant_id,
                 warehouse_order_ids=ids)
        if _marks_sent(store):
            add_work(session, kind="order.mark_sent", subject_id=order.id, store_id=store.id,
                     merchant_id=order.merchant_id, provider_id=order.provider_id)
        return
    session.refresh(order, ["status"])  # another transaction moved it meanwhile: see where to
    if order.status is OrderStatus.CANCELLED:
        record(session, order, "cancel_forwarding", "The order was cancelled while it was being "
               "sent; asking the warehouse to cancel it.")
        add_work(session, kind="order.cancel", subject_id=order.id, store_id=store.id,
                 merchant_id=order.merchant_id, provider_id=order.provider_id)


#: What a forward reads of its order, in two statements: the order with its addresses, then its
#: warehouse lines with the store lines they come from (for their names). Loaded as used, four.
_TO_FORWARD = (joinedload(Order.addresses),
               selectinload(Order.warehouse_lines).joinedload(WarehouseLine.order_line))
#: The most forwards of a store one job sends together, where its warehouse takes batches.
FORWARD_BATCH = 50


def forward_order_job(item: LeasedWork) -> None:
    """Outbox handler ``order.forward``: ``subject_id`` is the order id.

    When it is part of a backlog (it waited, or its worker runs it next after a job that
    did: an import's) and the store's warehouse takes orders in batches, the forwards of the
    store waiting unstarted behind it, with no queue job on the way, are taken along (up to
    :data:`FORWARD_BATCH` in all) and sent with it (:func:`forward_orders`): done together,
    or, if the job fails, handed back to run on their own."""
    session = db.session
    store = session.get(Store, item.store_id) if item.store_id is not None else None
    connector = None
    taken: list[LeasedWork] = []
    if store is not None and store.warehouse is not None and part_of_backlog(session, item):
        connector = warehouse_connector(store.warehouse, store)
        if connector.forward_batch_limit() > 1:
            # Forwards with a queue job on the way are left to it: taken along, the job would
            # find its row done and its bookkeeping (as much CPU as a forward) would be lost.
            taken = take_along(session, item, FORWARD_BATCH - 1, lease_policy().hold,
                               undispatched_only=True, runs_alone=True)
    try:
        if taken and store is not None and connector is not None:
            ids = [item.subject_id, *(row.subject_id for row in taken)]
            orders = session.scalars(select(Order).where(Order.id.in_(ids))
                                     .options(*_TO_FORWARD).order_by(Order.id)).unique().all()
            forward_orders(session, store, list(orders), connector)
        else:
            order = load(session, Order, item.subject_id, _TO_FORWARD)
            if order is not None:
                forward_order(session, order, connector)
        finish_taken(session, taken)
    except BaseException as error:
        if taken:
            session.rollback()
            hand_back(session, taken, wait=_wait_after(item, error))
        raise


def _wait_after(item: LeasedWork, error: BaseException) -> timedelta:
    """How long forwards taken along by ``item`` wait when its call failed for all of them:
    as long as ``item`` will (up to an outage's recheck). Handed back due at once, they would
    be taken along and sent again straight away, over and over, while the warehouse is down;
    a failure that was not the call's (a database error) gives them back at once."""
    if not isinstance(error, ConnectorError):
        return timedelta()
    return min(backoff_delay(item.attempts, getattr(error, "retry_after", None)), OUTAGE_RECHECK)


def forward_retrying(item: LeasedWork, error: Exception, next_attempt: datetime) -> None:
    order = db.session.get(Order, item.subject_id)
    if order is None:
        return
    if isinstance(error, AuthError):
        why = (f"The warehouse refused DropStream's credentials: {_words(error)}. The order is "
               "sent as soon as new ones are entered in the warehouse's settings; until then "
               "DropStream does not call the warehouse with the refused ones.")
    else:
        why = (f"The warehouse could not be reached (attempt {item.attempts}): {_words(error)}. "
               f"Next attempt at {next_attempt:%Y-%m-%d %H:%M:%S} UTC.")
        if means_unreachable(error) and item.attempts >= JOBS[item.kind].max_attempts:
            why += (" The warehouse is down rather than refusing the order: DropStream goes on "
                    "trying every few minutes, for up to a day.")
    if transition(db.session, order, FORWARDABLE, OrderStatus.RETRYING, forward_attempts=item.attempts):
        record(db.session, order, "retrying", why, remote=_words(error))


def forward_gave_up(item: LeasedWork, error: Exception) -> None:
    order = db.session.get(Order, item.subject_id)
    if order is None:
        return
    code = getattr(error, "code", "forward_failed")
    if transition(db.session, order, FORWARDABLE, OrderStatus.ERROR, error_code=code,
                  error_message=_words(error)):
        record(db.session, order, "error", f"Sending to the warehouse failed {item.attempts} times; "
               f"last error: {_words(error)}. Fix the cause, then Reprocess.", remote=_words(error))
        raise_alert(db.session, provider_id=order.provider_id, merchant_id=order.merchant_id,
                    store_id=order.store_id, order_id=order.id, code="forward_failed",
                    group_key=f"store:{order.store_id}:forward_failed",
                    message=f"Orders could not be sent to the warehouse: {_words(error)}")


def mark_sent_job(item: LeasedWork) -> None:
    """Outbox handler ``order.mark_sent``: move the store's order to its "sent" status."""
    order = db.session.get(Order, item.subject_id)
    if order is None or order.status is not OrderStatus.AT_WAREHOUSE:
        # Shipped (or cancelled) meanwhile: a late "sent" would move the store's order back.
        return
    store = db.session.get(Store, order.store_id)
    store_connector(store).mark_order_status(order.external_id, "sent")
    record(db.session, order, "store_status", "The store's order was moved to its sent status.")


def mark_sent_gave_up(item: LeasedWork, error: Exception) -> None:
    order = db.session.get(Order, item.subject_id)
    if order is not None:
        record(db.session, order, "store_status_failed",
               f"Could not move the store's order to its sent status: {_words(error)}.",
               remote=_words(error))


# ------------------------------------------------------------------------------------------------


#: Built once: a consignment's warehouse order, as the warehouse acknowledged it.
_ACKNOWLEDGED = update(OrderAddress.__table__).where(
    OrderAddress.__table__.c.id == bindparam("address_id"),
).values(warehouse_order_id=bindparam("warehouse_order_id"),
         forwarded_at=bindparam("forwarded_at", type_=UTCDateTime()))


def _write_warehouse_order_id(session: Session, address: OrderAddress,
                              warehouse_order_id: str) -> None:
    """Write the consignment's warehouse order id with one UPDATE, and mirror it on the object
    without making the ORM write it again (its flush of one changed row cost more CPU than the
    statement)."""
    now = utcnow()
    session.execute(_ACKNOWLEDGED, {"address_id": address.id, "warehouse_order_id": warehouse_order_id,
                                    "forwarded_at": now})
    set_committed_value(address, "warehouse_order_id", warehouse_order_id)
    set_committed_value(address, "forwarded_at", now)


def _consignments(order: Order) -> list[tuple[OrderAddress, list]]:
    by_address: dict[int, list] = {}
    for line in order.warehouse_lines:
        by_address.setdefault(line.address_id, []).append(line)
    return [(address, by_address[address.id]) for address in order.shipping_addresses if address.id in by_address]


def _warehouse_order(order: Order, address: OrderAddress, lines: list[WarehouseLine],
                     store: Store) -> WarehouseOrder:
    return WarehouseOrder(
        reference=address.warehouse_ref or "",
        order_number=order.number,
        placed_at=order.placed_at,
        ship_to=Address(name=address.name, company=address.company, street1=address.street1,
                        street2=address.street2, city=address.city, state=address.state,
                        postal_code=address.postal_code, country_code=address.country_code,
                        phone=address.phone, email=address.email or order.customer_email),
        ship_code=address.ship_code or "",
        lines=tuple(WarehouseLineData(reference=line.reference, sku=line.warehouse_sku,
                                      quantity=line.quantity, name=line.order_line.name)
                    for line in lines),
        customer_email=order.customer_email,
        note=order.note,
        account=dict(store.warehouse_account or {}),
    )


def _order_field(order: Order, address: OrderAddress, lines: list, field: str | None) -> str:
    """The order's own path for a field of the warehouse order a connector named: ``lines[k]``
    of the :class:`WarehouseOrder` (this consignment's lines) is the order's ``lines[i]``,
    ``ship_to`` its ``shipping_addresses[j]``; anything else is the warehouse's path."""
    if not field:
        return "order"
    match = _WAREHOUSE_LINE.match(field)
    if match and int(match[1]) < len(lines):
        line_id = lines[int(match[1])].order_line_id
        index = next((i for i, line in enumerate(order.lines) if line.id == line_id), None)
        if index is not None:
            return f"lines[{index}]{match[2]}"
    if field == "ship_to" or field.startswith("ship_to."):
        position = next(i for i, a in enumerate(order.shipping_addresses) if a.id == address.id)
        return f"shipping_addresses[{position}]{field[len('ship_to'):]}"
    return field


_WAREHOUSE_LINE = re.compile(r"lines\[(\d+)\](.*)")


def _rejected(session: Session, order: Order, store: Store, error: RejectedError,
              field: str) -> None:
    if error.code == HoldReason.UNKNOWN_SKU.value:
        field = field if error.field else "lines"
        detail = f"{field}: {error.message}; add a listing mapping the store SKU"
        if transition(session, order, FORWARDABLE, OrderStatus.ON_HOLD,
                      hold_reason=HoldReason.UNKNOWN_SKU, hold_detail=detail):
            record(session, order, "held", f"On hold (unknown_sku): the warehouse refused: {error.message}",
                   reason="unknown_sku", field=field, remote=error.message)
            announce(session, "order_held", order_id=order.id, merchant_id=order.merchant_id,
                     reason="unknown_sku", detail=detail)
        return
    if transition(session, order, FORWARDABLE, OrderStatus.ERROR, error_code=error.code,
                  error_message=f"{field}: {error.message}"):
        record(session, order, "rejected", f"The warehouse rejected the order: {error.message}",
               remote=error.message, field=field)
        raise_alert(session, provider_id=order.provider_id, merchant_id=order.merchant_id,
                    store_id=store.id, order_id=order.id, code="warehouse_rejected",
                    group_key=f"store:{store.id}:warehouse_rejected",
                    message=f"The warehouse rejected orders of {store.name}: {error.message}")


def _marks_sent(store: Store) -> bool:
    cls = get_state().connectors.get(store.connector_id)
    return Capability.MARK_ORDER_STATUS in cls.capabilities and store.settings.get("sent_status", "x") != ""


def _words(error: Exception) -> str:
    return error.message if isinstance(error, ConnectorError) else f"{type(error).__name__}: {error}"
