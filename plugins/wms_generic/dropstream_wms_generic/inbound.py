"""Inbound endpoints for WMSs that push: shipments and stock snapshots, per warehouse connection.

``POST /connectors/wms_generic/warehouses/<id>/shipments`` and ``…/stock``. A push is accepted
only when, in this order: the body is not oversized; the warehouse exists, is a generic WMS and
has push credentials; ``X-DropStream-Key`` is that warehouse's inbound key; the signature over
timestamp and body is right and fresh; the body is JSON and a valid document; its account (and
order reference) belong to a store linked to *this* warehouse; and its event id is new. Every
refusal answers the protocol's error document and changes nothing. An accepted push is stored
in the webhook inbox (so a replayed event id is a duplicate) and handed to the core services in
the same transaction, which commits before the 202.

What a warehouse's pushes are checked against (its inbound key, signing secret and default
account) is remembered (:mod:`dropstream.security.senders`, which forgets it in every process
as soon as the warehouse's row changes): a busy warehouse pushes a shipment or a snapshot
several times a second, and each cost a transaction and a decryption to check.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from dropstream.connectors.types import StockSnapshot
from dropstream.db import insert_unless_conflict, utcnow
from dropstream.errors import InvalidTransition
from dropstream.extensions import db
from dropstream.fulfillment.services import record_pushed_shipment
from dropstream.inventory.services import record_stock
from dropstream.jobs.models import InboxEvent
from dropstream.orders.models import Order, OrderAddress
from dropstream.security.secrets import SecretError
from dropstream.security.senders import RememberedSenders, remembered_senders
from dropstream.stores.channels import run_now
from dropstream.stores.credentials import read_credentials
from dropstream.stores.models import Channel, Store, Warehouse
from dropstream.tenants.scope import TenantScope, activate, unscoped
from dropstream_wms_generic import protocol, signing
from dropstream_wms_generic.connector import CONNECTOR_ID

#: Largest push accepted (a stock event holds at most 1,000 levels, far below this).
MAX_BODY_BYTES = 1024 * 1024

# Built once: every push runs one of these, and building a statement (and its cache key) at
# each call cost more than a fifth of a millisecond of CPU apiece.
#: The store and consignment (with its order) a pushed shipment's order reference names.
_STORE_AND_CONSIGNMENT = (
    select(Store, OrderAddress)
    .join(Order, Order.store_id == Store.id)
    .join(OrderAddress, OrderAddress.order_id == Order.id)
    .where(OrderAddress.warehouse_ref == bindparam("reference"))
    .options(contains_eager(OrderAddress.order)))
_CUSTOMER_CODE = Store.warehouse_account["customer_code"].as_string()
#: A warehouse's stores whose customer code is the account, with their channels.
_ACCOUNT_STORES = (
    select(Store)
    .where(Store.warehouse_id == bindparam("warehouse_id"),
           _CUSTOMER_CODE == bindparam("account"))
    .order_by(Store.id).options(joinedload(Store.channels)))
#: The same for the warehouse's default account: stores without a code of their own too.
_DEFAULT_ACCOUNT_STORES = (
    select(Store)
    .where(Store.warehouse_id == bindparam("warehouse_id"),
           or_(_CUSTOMER_CODE == bindparam("account"), _CUSTOMER_CODE.is_(None),
               _CUSTOMER_CODE == ""))
    .order_by(Store.id).options(joinedload(Store.channels)))


@dataclass(frozen=True)
class PushSender:
    """What a warehouse's pushes are checked against and read (secrets never in a repr)."""

    id: int
    #: The account of the warehouse's stores that have no customer code of their own.
    default_account: str | None
    inbound_key: str = field(repr=False)
    signing_secret: str = field(repr=False)


class Refused(Exception):
    """A push refused with ``status`` and the protocol's error document."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def build_blueprint() -> Blueprint:
    blueprint = Blueprint(
        "wms_generic_inbound",
        __name__,
        url_prefix=f"/connectors/{CONNECTOR_ID}/warehouses/<int:warehouse_id>",
    )
    blueprint.add_url_rule("/shipments", "shipments", push_shipment, methods=["POST"])
    blueprint.add_url_rule("/stock", "stock", push_stock, methods=["POST"])
    blueprint.register_error_handler(Refused, _refused)
    return blueprint


def _refused(error: Refused) -> tuple[Response, int]:
    db.session.rollback()
    return jsonify(protocol.error_document(error.code, error.message, error.field)), error.status


def push_shipment(warehouse_id: int) -> tuple[Response, int]:
    warehouse, event = _authenticated_event(warehouse_id, "shipment-event")
    document = event["shipment"]
    store, address = _store_for_shipment(db.session, warehouse, document)
    _first_delivery(db.session, [store], warehouse, event, "shipment")
    activate(db.session, TenantScope.for_merchant(store.provider_id, store.merchant_id, "wms push"))
    try:
        shipment = record_pushed_shipment(
            db.session, store, protocol.shipment_from(document), address
        )
        shipment_id, state = shipment.id, shipment.state.value
        db.session.commit()
    finally:
        activate(db.session, None)
    return jsonify(
        {
            "status": "accepted",
            "event_id": event["event_id"],
            "shipment_id": shipment_id,
            "shipment_state": state,
        }
    ), 202


def push_stock(warehouse_id: int) -> tuple[Response, int]:
    warehouse, event = _authenticated_event(warehouse_id, "stock-event")
    document = event["snapshot"]
    stores = _stores_for_account(db.session, warehouse, document["account"], "snapshot.account")
    _first_delivery(db.session, stores, warehouse, event, "stock")
    levels = protocol.stock_levels_from(document)
    queued = []
    for store in stores:
        activate(
            db.session, TenantScope.for_merchant(store.provider_id, store.merchant_id, "wms push")
        )
        try:
            record_stock(
                db.session, store, StockSnapshot(levels, None, complete=document["complete"])
            )
            queued.append(_queue_push(db.session, store))
        finally:
            activate(db.session, None)
    db.session.commit()
    return jsonify(
        {
            "status": "accepted",
            "event_id": event["event_id"],
            "levels": len(levels),
            "stores": len(stores),
            "pushes_queued": sum(queued),
        }
    ), 202


# ------------------------------------------------------------------------------------------------
# Checks, in the order the module docstring gives
# ------------------------------------------------------------------------------------------------


def _authenticated_event(warehouse_id: int, document: str) -> tuple[PushSender, dict[str, Any]]:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise Refused(
            413,
            "too_large",
            f"The body exceeds {MAX_BODY_BYTES} bytes; push stock in "
            "events of at most 1,000 levels.",
        )
    request.max_content_length = MAX_BODY_BYTES
    body = request.get_data(cache=True)  # over the limit without a length: werkzeug refuses (413)
    given = request.headers.get(signing.KEY_HEADER, "").encode()
    warehouse = _remembered().sender(
        warehouse_id,
        matches=lambda known: hmac.compare_digest(given, known.inbound_key.encode()),
        look_up=lambda: _warehouse(warehouse_id),
    )
    assert warehouse is not None  # an unknown one is refused by _warehouse
    if not warehouse.inbound_key or not warehouse.signing_secret:
        raise Refused(
            401,
            "unauthorized",
            f"Warehouse {warehouse_id} accepts no pushes: set its "
            "credentials.inbound_key and credentials.signing_secret first.",
        )
    if not hmac.compare_digest(given, warehouse.inbound_key.encode()):
        raise Refused(
            401,
            "unauthorized",
            f"{signing.KEY_HEADER} is not warehouse {warehouse_id}'s "
            "inbound key: push to the address of the warehouse the key belongs to.",
        )
    try:
        signing.verify(
            warehouse.signing_secret,
            request.headers.get(signing.TIMESTAMP_HEADER),
            request.headers.get(signing.SIGNATURE_HEADER),
            body,
        )
    except signing.SignatureError as error:
        raise Refused(401, "bad_signature", str(error)) from None
    try:
        event = json.loads(body)
    except ValueError:
        raise Refused(400, "invalid_json", "The body is not JSON.") from None
    try:
        protocol.validate(document, event)
    except protocol.ProtocolError as error:
        raise Refused(422, "invalid_document", error.reason, error.field or None) from None
    return warehouse, event


def _remembered() -> RememberedSenders[PushSender]:
    return remembered_senders(current_app, f"{CONNECTOR_ID}.pushes")


def _warehouse(warehouse_id: int) -> PushSender:
    # Who is calling is not known yet: the warehouse is found unscoped, and an unknown one is
    # refused exactly like a wrong key, so the endpoint reveals nothing about other warehouses.
    with unscoped(db.session):
        warehouse = db.session.get(Warehouse, warehouse_id) if 0 < warehouse_id < 2**31 else None
        if warehouse is None or warehouse.connector_id != CONNECTOR_ID:
            raise Refused(
                401,
                "unauthorized",
                f"{signing.KEY_HEADER} is not warehouse "
                f"{warehouse_id}'s inbound key: push to the address of the warehouse "
                "the key belongs to.",
            )
        try:
            credentials = read_credentials(warehouse)
        except SecretError:
            raise Refused(
                401,
                "unauthorized",
                f"Warehouse {warehouse_id}'s credentials cannot be read; enter them again.",
            ) from None
    return PushSender(
        id=warehouse.id,
        default_account=(warehouse.settings or {}).get("default_account"),
        inbound_key=str(credentials.get("inbound_key") or ""),
        signing_secret=str(credentials.get("signing_secret") or ""),
    )


def _account_of(store: Store, warehouse: PushSender) -> str:
    return str(
        (store.warehouse_account or {}).get("customer_code") or warehouse.default_account or ""
    )


def _stores_for_account(
    session: Session, warehouse: PushSender, account: str, field: str
) -> list[Store]:
    """The stores of this warehouse whose account is ``account`` (:func:`_account_of`, asked
    of the database): a provider may link hundreds of merchants to one warehouse, and every
    stock push asks. With their channels, which a stock push then queues: one query."""
    query = _DEFAULT_ACCOUNT_STORES if warehouse.default_account == account else _ACCOUNT_STORES
    with unscoped(session):
        mine = session.scalars(
            query, {"warehouse_id": warehouse.id, "account": account}).unique().all()
    if not mine:
        raise Refused(
            422,
            "unknown_account",
            f"No store linked to warehouse {warehouse.id} has "
            f"account {account!r}: link the merchant's store with that customer code.",
            field,
        )
    return list(mine)


def _store_for_shipment(
    session: Session, warehouse: PushSender, document: dict[str, Any]
) -> tuple[Store, OrderAddress | None]:
    """The store the shipment belongs to and the consignment it ships (with its order): the
    one whose order has the reference, else (an unknown order: kept as an unmatched shipment
    with an alert) the account's first store, and None."""
    with unscoped(session):
        row = session.execute(_STORE_AND_CONSIGNMENT, {"reference": document["reference"]}).first()
    if row is None:
        stores = _stores_for_account(session, warehouse, document["account"], "shipment.account")
        return stores[0], None
    store, address = row
    if store.warehouse_id != warehouse.id:
        raise Refused(
            422,
            "wrong_warehouse",
            f"Order reference {document['reference']!r} was not sent to warehouse {warehouse.id}.",
            "shipment.reference",
        )
    if _account_of(store, warehouse) != document["account"]:
        raise Refused(
            422,
            "account_mismatch",
            f"Order reference {document['reference']!r} belongs "
            f"to another account than {document['account']!r}.",
            "shipment.account",
        )
    return store, address


def _first_delivery(
    session: Session, stores: list[Store], warehouse: PushSender, event: dict[str, Any], topic: str
) -> None:
    """Keep the event in the inbox of each store; a repeat of its id is refused as a duplicate.

    One ``INSERT … ON CONFLICT DO NOTHING`` per store, as for a store's webhooks: a conflict
    (an earlier delivery, or the same one delivered concurrently and committed first) is the
    duplicate, without a look beforehand or a savepoint around the insert."""
    key = f"{CONNECTOR_ID}:{warehouse.id}:{event['event_id']}"
    insert = insert_unless_conflict(session, InboxEvent, ("store_id", "event_key"))
    received = utcnow()
    with unscoped(session):
        for store in stores:
            values = dict(provider_id=store.provider_id, merchant_id=store.merchant_id,
                          store_id=store.id, event_key=key, topic=f"{CONNECTOR_ID}.{topic}",
                          payload=event, received_at=received, processed_at=received,
                          outcome="recorded")
            if session.execute(insert, values).scalar() is None:
                raise Refused(
                    409,
                    "duplicate_event",
                    f"Event {event['event_id']!r} was received "
                    "already; nothing was changed (treat this as delivered).",
                )


def _queue_push(session: Session, store: Store) -> bool:
    """Queue the store's inventory run, which pushes what changed. A store that is paused, or
    whose inventory channel is off, keeps the stock for its next run."""
    channel = store.channel(Channel.INVENTORY)
    if channel is None:
        return False
    try:
        run_now(session, channel)
    except InvalidTransition:
        return False
    return True
