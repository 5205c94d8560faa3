"""Importing orders from a store: once per (store, external id), never lost.

``import_order`` is idempotent: a second import of the same order (a duplicate webhook, the
overlap of a polling sweep) changes nothing unless the store's copy changed in a way that
matters (an edit while the order is still held, a cancellation). An order that cannot be read
into DropStream's model is still kept, in ``error``, with the store's payload, so it is visible
and can be reprocessed.

Nothing is cut to fit: a value that goes to the warehouse (a SKU, a ship-to field, a quantity)
and does not fit its column fails the import with the field's path and the limit
(:class:`UnstorableOrder`), instead of shipping a truncated street or SKU. NUL characters and
lone UTF-16 surrogates, which neither PostgreSQL nor SQLite store, are dropped or replaced.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropstream.connectors.base import (
    ConnectorError,
    RemoteNotFound,
    StorefrontConnector,
    UnreadableOrderError,
)
from dropstream.connectors.types import Address, OrderData, UnreadableOrder
from dropstream.events import announce
from dropstream.jobs.models import LeasedWork
from dropstream.orders.holds import Verdict, evaluate, judge, tell
from dropstream.orders.mapping import read_catalog
from dropstream.orders.models import Order, OrderAddress, OrderLine
from dropstream.orders.statuses import NOT_YET_AT_WAREHOUSE, OrderStatus
from dropstream.orders.timeline import record
from dropstream.orders.transitions import transition
from dropstream.stores.connections import store_connector
from dropstream.stores.models import Store

log = logging.getLogger(__name__)

#: Largest line quantity DropStream keeps (PostgreSQL integer range).
MAX_STORED_QUANTITY = 2**31 - 1
#: Prices are kept with 18 digits, 4 of them after the point.
MAX_STORED_PRICE = Decimal(10) ** 14
#: Statuses in which an edit made in the store replaces DropStream's copy.
EDITABLE = (OrderStatus.ON_HOLD, OrderStatus.ERROR, OrderStatus.IMPORTED)
#: Ship-to fields and the most characters each keeps (the warehouse gets these as they are).
ADDRESS_LIMITS = {"name": 255, "company": 255, "street1": 255, "street2": 255, "city": 120,
                  "state": 120, "postal_code": 40, "country_code": 2, "phone": 60, "email": 320}
_SURROGATE = re.compile("[\ud800-\udfff]")


class UnstorableOrder(ValueError):
    """The order holds a value DropStream cannot keep as it is. The message starts with the
    field's path (``lines[2].sku``), as the order's error shows it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def import_order(session: Session, store: Store, data: OrderData) -> Order | None:
    """Import (or update) one order read from ``store``. Returns the order, or None when there
    is nothing to keep (cancelled before it was ever imported).

    It runs in a savepoint of its own: an order that cannot be read into DropStream's model
    leaves nothing half-written, and is kept in ``error`` instead (:func:`keep_unreadable_order`);
    the caller's other orders stand."""
    return _import(session, store, data, _find(session, store, data.external_id))


def import_orders(session: Session, store: Store, orders: Sequence[OrderData]) -> None:
    """Import several orders read from ``store`` together (a backlog's re-reads), as
    :func:`import_order` would one by one.

    The new ones are mapped against one read of the store's listings and rules and written in
    one flush, in one savepoint. If any of them needs an import of its own (a value it cannot
    keep, an order another worker imported meanwhile), that savepoint is rolled back and each
    is imported alone: what happens to each order never depends on the others."""
    if not orders:
        return
    kept = _find_all(session, store, [data.external_id for data in orders])
    new = list({data.external_id: data for data in orders
                if data.external_id not in kept and not data.cancelled}.values())
    together = len(new) > 1 and _import_new_together(session, store, new)
    written = {data.external_id for data in new} if together else set()
    for data in orders:
        if data.external_id not in written:
            _import(session, store, data, kept.get(data.external_id))


def _import(session: Session, store: Store, data: OrderData,
            existing: Order | None) -> Order | None:
    if existing is None and data.cancelled:
        return None
    if existing is not None and not _cancels(existing, data) and _nothing_new(existing, data):
        return existing  # a duplicate or an older copy: not worth a savepoint
    try:
        with session.begin_nested():
            if existing is not None:
                return _update_existing(session, store, existing, data)
            return _import_new(session, store, data)
    except IntegrityError:
        if existing is not None:
            raise
        # Another worker imported it between our look and our insert: theirs stands.
        return _find(session, store, data.external_id)
    except _UNREADABLE as error:
        log.warning("order %s of store %s could not be imported: %s",
                    data.external_id, store.id, error)
        return keep_unreadable_order(session, store, data.external_id, data.number, data.raw, error)


#: What an order's own import turns into an order kept in ``error``.
_UNREADABLE = (ConnectorError, ValueError, TypeError, KeyError, ArithmeticError)


def _import_new(session: Session, store: Store, data: OrderData) -> Order:
    check_storable(data)
    order = _create(session, store, data)
    verdict = judge(session, order, store)
    # One flush writes the order, its addresses, lines, mapping and timeline; a conflict on
    # the order's row means another worker imported it first.
    session.flush()
    _tell_imported(session, store, order, verdict)
    return order


def _import_new_together(session: Session, store: Store, orders: list[OrderData]) -> bool:
    """Import new ``orders`` in one flush; False (nothing written) if one needs its own import."""
    try:
        with session.begin_nested():
            for data in orders:
                check_storable(data)
            created = [_create(session, store, data) for data in orders]
            catalog = read_catalog(session, store, created)
            judged = [(order, judge(session, order, store, catalog=catalog)) for order in created]
            session.flush()
            for order, verdict in judged:
                _tell_imported(session, store, order, verdict)
    except (IntegrityError, *_UNREADABLE) as error:
        # Only the kind: an IntegrityError's message holds the order's values (an email), and
        # the order's own import says what is wrong with it.
        log.info("store %s: %d orders imported one by one after %s",
                 store.id, len(orders), type(error).__name__)
        return False
    return True


def _tell_imported(session: Session, store: Store, order: Order, verdict: Verdict) -> None:
    announce(session, "order_imported", order_id=order.id, store_id=store.id,
             merchant_id=store.merchant_id, external_id=order.external_id)
    tell(session, order, store, verdict, new_order=True)


def keep_unreadable_order(session: Session, store: Store, external_id: str, number: str,
                          raw: dict[str, Any], error: Exception | str) -> Order | None:
    """An order the importer could not read: keep it in ``error`` with the store's payload.

    An order DropStream already has is moved to ``error`` too when it has not been sent yet
    (its copy is out of date, and must not be sent as it is)."""
    from dropstream.db import utcnow

    message = _clip(str(error) if isinstance(error, (str, UnstorableOrder))
                    else f"{type(error).__name__}: {error}", 2000)
    existing = _find(session, store, external_id)
    if existing is not None:
        if existing.error_code == "import_failed" and existing.error_message == message:
            return existing  # read again, still the same problem: nothing new to say
        if transition(session, existing, EDITABLE, OrderStatus.ERROR, error_code="import_failed",
                      error_message=message, hold_reason=None, hold_detail=None):
            existing.source_payload = _clean(raw)
            record(session, existing, "import_failed", f"The store's changed copy could not be "
                   f"read: {message}. DropStream keeps the order here; Reprocess reads it again.")
        return existing
    now = utcnow()
    order = Order(provider_id=store.provider_id, merchant_id=store.merchant_id, store_id=store.id,
                  external_id=_clip(external_id, 100), number=_clip(number or external_id, 100),
                  status=OrderStatus.ERROR, error_code="import_failed", error_message=message,
                  placed_at=now, store_updated_at=now, source_payload=_clean(raw))
    session.add(order)
    session.flush()
    record(session, order, "import_failed", f"Could not read the order: {order.error_message}. "
           "It is kept here; Reprocess reads it from the store again.")
    return order


def refresh_order(session: Session, store: Store, external_id: str,
                  connector: StorefrontConnector | None = None) -> Order | None:
    """Re-read one order from the store (a webhook is only a hint) and import what it says."""
    connector = connector or store_connector(store)
    try:
        data = connector.fetch_order(external_id)
    except RemoteNotFound as error:
        order = _find(session, store, external_id)
        message = _clip(f"id: the order is no longer in the store ({error.message})", 2000)
        if order is not None and transition(session, order, NOT_YET_AT_WAREHOUSE, OrderStatus.ERROR,
                                            error_code="remote_not_found", error_message=message):
            record(session, order, "deleted_in_store", "The order no longer exists in the store.",
                   remote=error.message)
        return order
    except UnreadableOrderError as error:
        return _keep_unreadable(session, store, error.order)
    if data is None:
        return _find(session, store, external_id)
    return import_order(session, store, data)


def refresh_orders(session: Session, store: Store, external_ids: Sequence[str]) -> None:
    """Re-read several orders of one store, in as few calls as its connector can
    (``fetch_orders_by_id``), and import them together (:func:`import_orders`); what it leaves
    out is read one by one, as :func:`refresh_order`."""
    connector = store_connector(store)
    wanted = list(dict.fromkeys(external_ids))
    read = connector.fetch_orders_by_id(wanted)
    readable: list[OrderData] = []
    for external_id in wanted:
        found = read.get(external_id, _NOT_READ)
        if isinstance(found, UnreadableOrder) and found.external_id == external_id:
            _keep_unreadable(session, store, found)
        elif isinstance(found, OrderData) and found.external_id == external_id:
            readable.append(found)
        elif found is not None:
            if found is not _NOT_READ:  # a connector's answer about another order, or not one
                log.warning("store %s: %r read in bulk is not order %s; reading it alone",
                            store.id, type(found).__name__, external_id)
            refresh_order(session, store, external_id, connector)
    import_orders(session, store, readable)


#: ``fetch_orders_by_id`` left the order out: it is read on its own.
_NOT_READ = object()


def _keep_unreadable(session: Session, store: Store, order: UnreadableOrder) -> Order | None:
    return keep_unreadable_order(session, store, order.external_id, order.number, order.raw, order.error)


#: Other waiting re-reads of the same store an import job takes along (a flash sale's
#: webhooks queue up faster than orders are read one by one): one job, and where the store's
#: connector can, one call for all of them.
REFRESH_BATCH = 50


def refresh_order_job(item: LeasedWork) -> None:
    """Outbox handler ``order.refresh``: payload ``{"external_id": …}``, subject is the store.

    When it waited for a worker, re-reads of the same store waiting unstarted behind it are
    taken along (up to :data:`REFRESH_BATCH` in all) and end with it: done together, or, if
    the job fails, handed back to run on their own."""
    from dropstream.extensions import db
    from dropstream.jobs.heartbeat import lease_policy
    from dropstream.jobs.outbox import finish_taken, hand_back, take_along, waited_in_backlog

    taken = []
    if waited_in_backlog(item):
        taken = take_along(db.session, item, REFRESH_BATCH - 1, lease_policy().hold)
    try:
        store = db.session.get(Store, item.store_id)
        external_ids = [str(item.payload["external_id"]), *(str(t.payload.get("external_id")) for t in taken)]
        if store is not None and taken:
            refresh_orders(db.session, store, external_ids)
        elif store is not None:
            refresh_order(db.session, store, external_ids[0])
        finish_taken(db.session, taken)
    except BaseException:
        if taken:
            db.session.rollback()
            hand_back(db.session, taken)
        raise


# ------------------------------------------------------------------------------------------------


#: Built once: every import asks.
_ORDER = select(Order).where(Order.store_id == bindparam("store_id"),
                             Order.external_id == bindparam("external_id"))


def _find(session: Session, store: Store, external_id: str) -> Order | None:
    return session.scalar(_ORDER, {"store_id": store.id, "external_id": str(external_id)})


def _find_all(session: Session, store: Store, external_ids: Sequence[str]) -> dict[str, Order]:
    return {order.external_id: order for order in session.scalars(select(Order).where(
        Order.store_id == store.id, Order.external_id.in_([str(i) for i in external_ids])))}


def _update_existing(session: Session, store: Store, order: Order, data: OrderData) -> Order:
    """Take in a copy that cancels ``order`` or is newer than it (:func:`_import` returned
    before this for anything else)."""
    if _cancels(order, data):
        from dropstream.orders.cancellation import cancel_order

        cancel_order(session, order, actor="store", reason="cancelled in the store")
        return order
    if order.status in EDITABLE:
        check_storable(data)
        _replace_contents(session, store, order, data)
        record(session, order, "updated", "The order changed in the store; DropStream's copy was "
               "replaced and validated again.", store_status=data.status_code)
        evaluate(session, order, store)
    else:
        order.store_updated_at = data.updated_at
        order.store_status_code = _clip(data.status_code, 40)
        # A new status alone (often DropStream's own "sent" or "shipped") changes nothing the
        # warehouse has; only a change to what was sent is worth telling.
        if _shipping_contents(data) != _kept_shipping_contents(order):
            record(session, order, "changed_after_forward", "The order changed in the store after "
                   f"it was sent to the warehouse ({order.status.value}); the change was not "
                   "forwarded. Change it at the warehouse if it matters.", store_status=data.status_code)
    return order


def _cancels(order: Order, data: OrderData) -> bool:
    """``data`` says the store cancelled ``order``, which is neither cancelled nor shipped."""
    return data.cancelled and order.status not in (OrderStatus.CANCELLED, OrderStatus.SHIPPED)


def _nothing_new(order: Order, data: OrderData) -> bool:
    """``data`` is a duplicate or an older copy of what ``order`` keeps: nothing to do."""
    if order.error_code == "import_failed":  # never read into DropStream's model
        return False
    return data.updated_at < order.store_updated_at or (
        # Stores stamp changes to the second: the same stamp may still be a new status.
        data.updated_at == order.store_updated_at
        and _clip(data.status_code, 40) == order.store_status_code
        and _shipping_contents(data) == _kept_shipping_contents(order))


def _shipping_contents(data: OrderData) -> tuple:
    """What the warehouse gets of an order, as DropStream's copy keeps it: lines and ship-tos."""
    lines = sorted((_clip(line.external_id, 100), _sku(line.sku), line.quantity) for line in data.lines)
    places = sorted((_clip(d.external_id, 100), _clip(d.shipping_method, 255),
                     tuple(sorted(_address_fields(d.address).items()))) for d in data.destinations)
    return tuple(lines), tuple(places)


def _kept_shipping_contents(order: Order) -> tuple:
    lines = sorted((line.external_id, line.sku or "", line.quantity) for line in order.lines)
    places = sorted((a.external_id or "", a.shipping_method or "",
                     tuple(sorted((name, getattr(a, name) or "") for name in ADDRESS_LIMITS)))
                    for a in order.shipping_addresses)
    return tuple(lines), tuple(places)


def _create(session: Session, store: Store, data: OrderData) -> Order:
    """A new order with its contents and "imported" event, added to the session and not
    written yet."""
    # Collections given as empty lists are known to be empty: appending to them (here, and
    # later when the order is mapped) never loads them from the database.
    order = Order(provider_id=store.provider_id, merchant_id=store.merchant_id, store_id=store.id,
                  external_id=_clip(data.external_id, 100), status=OrderStatus.IMPORTED,
                  addresses=[], lines=[], warehouse_lines=[], events=[])
    session.add(order)
    _fill(order, data)
    _add_contents(order, data)
    record(session, order, "imported", f"Imported order {order.number} from {store.name}.",
           store_status=data.status_code)
    return order


def _replace_contents(session: Session, store: Store, order: Order, data: OrderData) -> None:
    order.warehouse_lines.clear()
    order.lines.clear()
    for address in list(order.addresses):
        if address.warehouse_order_id is None:
            order.addresses.remove(address)
    session.flush()
    _fill(order, data)
    _add_contents(order, data)
    session.flush()


def _fill(order: Order, data: OrderData) -> None:
    order.number = _clip(data.number or data.external_id, 100)
    order.store_status_code = _clip(data.status_code, 40)
    order.placed_at = data.placed_at
    order.store_updated_at = data.updated_at
    order.customer_email = _clip(data.customer_email, 320)
    order.currency = _clip(data.currency, 8)
    order.note = _clean(data.note)
    order.source_payload = _clean(data.raw)


def _add_contents(order: Order, data: OrderData) -> None:
    ids = dict(provider_id=order.provider_id, merchant_id=order.merchant_id)
    # Every address is given the same columns, billing and shipping alike (mapping sets the
    # last two of a shipping address): a flush inserts rows of one table in one statement only
    # while their columns match, and a billing address between shipping ones cost one each.
    unset = dict(ship_code=None, warehouse_ref=None)
    if data.billing_address is not None:
        order.addresses.append(OrderAddress(
            **ids, role="billing", external_id="", shipping_method="", **unset,
            **_address_fields(data.billing_address)))
    by_destination: dict[str, OrderAddress] = {}
    for destination in data.destinations:
        address = OrderAddress(**ids, role="shipping", external_id=_clip(destination.external_id, 100),
                               shipping_method=_clip(destination.shipping_method, 255), **unset,
                               **_address_fields(destination.address))
        order.addresses.append(address)
        by_destination[destination.external_id] = address
    only_address = next(iter(by_destination.values())) if len(by_destination) == 1 else None
    for line in data.lines:
        address = by_destination.get(line.destination_id or "") or only_address
        order.lines.append(OrderLine(
            # By relationship, not id: one flush writes addresses, then lines.
            **ids, address=address,
            external_id=_clip(line.external_id, 100),
            sku=_sku(line.sku) or None,
            name=_clean(line.name), quantity=line.quantity,
            unit_price=line.unit_price, kind=line.kind,
            options=[[_clean(k), _clean(v)] for k, v in line.options],
            parent_external_id=_clip(line.parent_external_id, 100) if line.parent_external_id else None,
        ))


def _sku(sku: str | None) -> str:
    return _clean(sku or "").strip()


def _address_values(address: Address) -> dict[str, str]:
    values = {name: _clean(getattr(address, name) or "") for name in ADDRESS_LIMITS}
    values["country_code"] = values["country_code"].strip().upper()
    return values


def _address_fields(address: Address) -> dict[str, str]:
    """Columns of an address: ship-to values fit (:func:`check_storable`); a billing address
    is cut to fit (it is not shipped to, and the store's payload keeps it whole)."""
    return {name: value[:ADDRESS_LIMITS[name]] for name, value in _address_values(address).items()}


def check_storable(data: OrderData) -> None:
    """:raises UnstorableOrder: a value the warehouse would get does not fit DropStream's copy."""
    for index, line in enumerate(data.lines):
        where = f"lines[{index}]"
        sku = _sku(line.sku)
        if len(sku) > 255:
            raise UnstorableOrder(f"{where}.sku", f"{len(sku):,} characters; SKUs of at most 255 "
                                  "are kept. Shorten it in the store, then Reprocess.")
        if abs(line.quantity) > MAX_STORED_QUANTITY:
            raise UnstorableOrder(f"{where}.quantity", f"{line.quantity:,} is more than the "
                                  f"{MAX_STORED_QUANTITY:,} DropStream keeps. Correct it in the "
                                  "store, then Reprocess.")
        if not line.unit_price.is_finite() or abs(line.unit_price) >= MAX_STORED_PRICE:
            raise UnstorableOrder(f"{where}.unit_price", f"{line.unit_price} is not a price "
                                  "DropStream can keep. Correct it in the store, then Reprocess.")
    for index, destination in enumerate(data.destinations):
        where = f"shipping_addresses[{index}]"
        for name, value in _address_values(destination.address).items():
            limit = ADDRESS_LIMITS[name]
            if len(value) <= limit:
                continue
            if name == "country_code":  # never cut to two letters: AUT is not AU
                raise UnstorableOrder(f"{where}.{name}", f"{value[:20]!r} is not a two-letter "
                                      "ISO 3166 country code. Correct it in the store, then "
                                      "Reprocess.")
            raise UnstorableOrder(f"{where}.{name}", f"{len(value):,} characters, more than "
                                  f"the {limit} kept (and sent to the warehouse). Correct it "
                                  "in the store, then Reprocess.")
        if len(_clean(destination.shipping_method)) > 255:
            raise UnstorableOrder(f"{where}.shipping_method", "more than 255 characters. Shorten "
                                  "it in the store, then Reprocess.")


def _clean(value: Any) -> Any:
    """Drop NUL characters (PostgreSQL text and JSONB refuse them) and replace lone UTF-16
    surrogates (no database stores them) everywhere in a value."""
    if isinstance(value, str):
        value = value.replace("\x00", "")
        if _SURROGATE.search(value):  # a pair becomes its character, a lone half U+FFFD
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _clip(value: str | None, length: int) -> str:
    return _clean(value or "")[:length]
