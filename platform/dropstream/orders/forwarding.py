"""Forwarding queued orders to the warehouse, and telling the store they were sent.

Each consignment (ship-to address) becomes one warehouse order under a stable reference; each
acknowledgement is committed before the next consignment is sent (the last one with the
order's new status), so a retry resumes where the last attempt stopped, and the connector
looks the reference up before creating (an order reaches the warehouse once even when an
earlier reply was lost).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from dropstream.alerts.services import raise_alert
from dropstream.connectors.base import (
    AuthError,
    Capability,
    ConnectorError,
    RejectedError,
    means_unreachable,
)
from dropstream.connectors.types import Address, WarehouseOrder
from dropstream.connectors.types import WarehouseLine as WarehouseLineData
from dropstream.db import UTCDateTime, load, utcnow
from dropstream.events import announce
from dropstream.extensions import db
from dropstream.jobs.models import LeasedWork
from dropstream.jobs.outbox import add_work
from dropstream.jobs.registry import JOBS
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


def forward_order(session: Session, order: Order) -> None:
    if order.status not in FORWARDABLE:
        return  # cancelled, held or already sent since this work was queued
    store = session.get(Store, order.store_id)
    assert store is not None
    if store.warehouse is None:
        if transition(session, order, FORWARDABLE, OrderStatus.ERROR, error_code="no_warehouse",
                      error_message="The store is not linked to a warehouse."):
            record(session, order, "error", "Not sent: the store is not linked to a warehouse. "
                   "Link one in the store's settings, then Reprocess.")
        return
    connector = warehouse_connector(store.warehouse, store)
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
        _acknowledged(session, address, ack.warehouse_order_id)
        record(session, order, "forwarded" if ack.created else "found_at_warehouse",
               (f"Sent to {store.warehouse.name} as {ack.reference}; warehouse order {ack.warehouse_order_id}."
                if ack.created else
                f"{store.warehouse.name} already had {ack.reference} (warehouse order "
                f"{ack.warehouse_order_id}); not sent again."),
               reference=ack.reference, warehouse_order_id=ack.warehouse_order_id)
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


def forward_order_job(item: LeasedWork) -> None:
    """Outbox handler ``order.forward``: ``subject_id`` is the order id."""
    order = load(db.session, Order, item.subject_id, _TO_FORWARD)
    if order is not None:
        forward_order(db.session, order)


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


def _acknowledged(session: Session, address: OrderAddress, warehouse_order_id: str) -> None:
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
