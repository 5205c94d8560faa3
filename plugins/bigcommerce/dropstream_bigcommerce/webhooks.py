"""Receiving BigCommerce's order webhooks: verify, store the hint, commit, then answer 200.

BigCommerce wants a 2xx fast and retries anything else for about 48 hours, so the route does
no API call: it checks the payload's shape, finds the store by the payload's ``producer``
(``stores/{hash}``), compares the store's secret header in constant time (and verifies the
Standard Webhooks signature when BigCommerce sends one), and hands the hint
to :func:`dropstream.orders.inbox.receive_order_hint` (the inbox row is unique per payload
``hash``, so a repeated delivery changes nothing). The commit happens *before* the 200: an
acknowledged webhook always has its inbox row and its re-read queued. A malformed or forged
delivery gets a 4xx and changes nothing; a database outage a 503, so BigCommerce retries.

A status change to anything but the monitored status or Cancelled is acknowledged and
dropped: those are DropStream's own moves (Awaiting Shipment, Shipped) echoing back, and
reading the order again would only spend the store's API quota.

What a delivery is checked against (the store's ids, monitored status and secrets) is
remembered (:mod:`dropstream.security.senders`, which forgets it in every process as soon as
the store's row changes): about half of a store's deliveries are echoes, and each cost a
database transaction and a decryption just to find this out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from dropstream.extensions import db
from dropstream.orders.inbox import receive_order_hint
from dropstream.security.senders import RememberedSenders, remembered_senders
from dropstream.stores.credentials import read_credentials
from dropstream_bigcommerce.connector import WEBHOOK_SECRET_HEADER
from dropstream_bigcommerce.oauth import CONTEXT, find_store
from dropstream_bigcommerce.schemas import AWAITING_FULFILLMENT, CANCELLED

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
#: Standard Webhooks' replay window for ``webhook-timestamp`` (seconds either way).
SIGNATURE_TOLERANCE = 300
ORDER_SCOPES = frozenset(
    {"store/order/created", "store/order/statusUpdated", "store/order/updated", "store/order/archived"}
)


def event_key(payload: dict[str, Any]) -> str:
    """What identifies one event across BigCommerce's redeliveries of it. Its ``hash`` covers
    only ``data`` (``{"type": "order", "id": 100}`` for the order's creation and for its
    archiving alike), so scope and time go with it: the same event redelivered keeps all three,
    a different event about the same order does not."""
    identity = f"{payload['scope']}\n{payload.get('created_at')}\n{payload['hash']}"
    return hashlib.sha1(identity.encode()).hexdigest()


@dataclass(frozen=True)
class Sender:
    """What a delivery is checked against and recorded for: the store's ids, its monitored
    status and its secrets (never shown in a repr)."""

    id: int
    merchant_id: int
    provider_id: int
    monitored_status_id: Any
    webhook_secret: str = field(repr=False)
    #: The client secret that signs Standard Webhooks deliveries, if DropStream has it.
    signing_secret: str | None = field(repr=False)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _payload() -> dict[str, Any]:
    if (request.content_length or 0) > MAX_BODY:
        raise Refused(413, f"The body is larger than {MAX_BODY} bytes.")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise Refused(413, f"The body is larger than {MAX_BODY} bytes.")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "The body is not JSON.") from None
    if not isinstance(payload, dict):
        raise Refused(400, "The body is not a JSON object.")
    scope, event_hash, data = payload.get("scope"), payload.get("hash"), payload.get("data")
    if not isinstance(scope, str) or not scope.startswith("store/"):
        raise Refused(400, "scope is missing or is not a store event (store/…).")
    if not isinstance(event_hash, str) or not 0 < len(event_hash) <= 200:
        raise Refused(400, "hash is missing.")
    if not isinstance(data, dict):
        raise Refused(400, "data is missing.")
    if not isinstance(payload.get("producer"), str) or not CONTEXT.match(payload["producer"]):
        raise Refused(400, "producer is not stores/<store hash>.")
    return payload


def receive() -> ResponseReturnValue:
    try:
        payload = _payload()
        sender = _sender(CONTEXT.match(payload["producer"]).group(1))  # type: ignore[union-attr]
        _check_signature(sender)
        outcome = _record(sender, payload)
        if not outcome["received"] and db.session().in_transaction():
            # Ended with COMMIT (it wrote nothing), not the teardown's ROLLBACK: psycopg forgets
            # every statement it prepared on a connection at a ROLLBACK, and about half of a
            # store's deliveries end here (DropStream's own status moves echoing back).
            db.session.commit()
    except Refused as refusal:
        db.session.rollback()
        return jsonify(error=refusal.message), refusal.status
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("BigCommerce webhook not stored: database unavailable")
        return jsonify(error="DropStream cannot store the webhook now; retry later."), 503
    return jsonify(outcome), 200


def _sender(store_hash: str) -> Sender:
    """The store the delivery claims to come from, if its secret header matches."""
    sent = request.headers.get(WEBHOOK_SECRET_HEADER, "").encode()
    sender = _remembered().sender(
        store_hash,
        matches=lambda known: hmac.compare_digest(sent, known.webhook_secret.encode()),
        look_up=lambda: _look_up(store_hash),
    )
    expected = sender.webhook_secret if sender is not None else ""
    # Compare even when there is no store, so the answer takes as long either way.
    matches = hmac.compare_digest(sent, (expected or "\x00" * 43).encode())
    if sender is None or not expected or not matches:
        raise Refused(401, "The webhook is not signed with a store's secret.")
    return sender


def _look_up(store_hash: str) -> Sender | None:
    store = find_store(db.session, store_hash)
    if store is None:
        return None
    credentials = read_credentials(store)
    signing_secret = credentials.get("client_secret") or (
        current_app.config.get("BIGCOMMERCE_APP_CLIENT_SECRET")
        if credentials.get("installed_via") == "app"
        else None
    )
    return Sender(
        id=store.id,
        merchant_id=store.merchant_id,
        provider_id=store.provider_id,
        monitored_status_id=(store.settings or {}).get("monitored_status_id", AWAITING_FULFILLMENT),
        webhook_secret=str(credentials.get("webhook_secret") or ""),
        signing_secret=str(signing_secret) if signing_secret else None,
    )


def _remembered() -> RememberedSenders[Sender]:
    return remembered_senders(current_app, "bigcommerce.webhooks")


def _check_signature(sender: Sender) -> None:
    """BigCommerce also signs deliveries the Standard Webhooks way with the account's client
    secret (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``). The secret header
    is what every delivery carries; a signature, when present, must verify too."""
    signatures = request.headers.get("webhook-signature")
    if not signatures:
        return
    message_id = request.headers.get("webhook-id", "")
    timestamp = request.headers.get("webhook-timestamp", "")
    secret = sender.signing_secret
    if not secret:
        return  # nothing to verify with; the secret header already matched
    try:
        if abs(time.time() - int(timestamp)) > SIGNATURE_TOLERANCE:
            raise Refused(401, "webhook-timestamp is too far from now.")
    except ValueError:
        raise Refused(401, "webhook-timestamp is not a time.") from None
    signed = f"{message_id}.{timestamp}.".encode() + request.get_data(cache=True)
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    offered = [
        part.partition(",")[2].encode() for part in signatures.split() if part.startswith("v1,")
    ]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise Refused(401, "webhook-signature does not verify.")


def _record(sender: Sender, payload: dict[str, Any]) -> dict[str, Any]:
    scope, data = payload["scope"], payload["data"]
    order_id = data.get("id")
    if scope not in ORDER_SCOPES or data.get("type", "order") != "order":
        return {"received": False, "reason": f"{scope} is not an order event DropStream uses"}
    if (
        isinstance(order_id, bool)
        or not isinstance(order_id, (int, str))
        or not str(order_id).isdigit()
    ):
        raise Refused(400, "data.id is not an order id.")
    status = data.get("status") if isinstance(data.get("status"), dict) else {}
    if scope == "store/order/statusUpdated" and status.get("new_status_id") not in (
        sender.monitored_status_id,
        CANCELLED,
    ):
        return {"received": False, "reason": "a status DropStream does not import at"}
    fresh = receive_order_hint(
        db.session,
        sender,
        event_key=event_key(payload),
        topic=scope,
        external_id=str(order_id),
        payload=payload,
    )
    db.session.commit()  # before the 200: an acknowledged hint is never lost
    return {"received": True, "duplicate": not fresh}
