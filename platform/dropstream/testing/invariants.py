"""The invariant checker: after a run, compare what the BigCommerce and WMS sandboxes recorded
with DropStream's database, and name every order lost, duplicated or stuck.

A run (a test, a benchmark, a chaos script) drives traffic, waits until the work is drained,
then::

    report = check(app, bigcommerce_state(bigcommerce_sandbox), wms_state(wms_sandbox))
    assert report.ok, report.summary()

The sandbox states are their JSON admin documents (``GET /_sandbox/state`` of the BigCommerce
sandbox, ``GET /_sandbox/snapshot`` of the WMS sandbox), so a sandbox in another process is
checked the same way: pass its base URL instead of the object. Nothing here imports a plugin;
the checker knows the sandboxes only by the documents they publish, and the few BigCommerce
facts it needs (status ids) are spelt out below.

What each field of :class:`InvariantReport` lists (each entry an :class:`Offender`):

``orders_lost``
    A store order that reached the store's monitored status (and was neither cancelled nor
    deleted in the store) but has no DropStream order, or one DropStream says was sent while
    the WMS has no order under its reference. An order DropStream holds, failed visibly,
    skipped or cancelled is accounted for (with its reason), not lost.
``orders_duplicated_at_warehouse``
    A reference the WMS holds more than one order for.
``shipments_posted_twice`` / ``shipments_never_posted``
    Each WMS shipment of a DropStream order must appear exactly once on the store order (found
    by tracking number, or by DropStream's shipment key in the comments) — unless it holds only
    part of a bundle, whose units the store is told of with the parcel completing the bundle.
``stock_mismatches``
    For each item DropStream manages (an inventory item not skipped), the store's level must be
    what the WMS's last value gives through the store's listings, buffer and in-flight orders.
``orders_not_final``
    A DropStream order still in a transitional status (imported, queued, retrying), held or
    failed without saying why, or still waiting for shipments the WMS says it sent in full.
``webhooks_acknowledged_without_inbox``
    A delivery DropStream answered 2xx without saying it ignored it (``"received": false``) and
    for which no inbox row exists.
``quota_breaches``
    Requests the store refused for exceeding its API quota (the sandbox's own 429s, not
    injected ones): DropStream drove the store past its quota.
``wrong_tenant``
    A DropStream row (order, shipment, inbox row) whose tenant is not its store's, or whose
    store is not the one it came from; a store call made with another store's token; a WMS
    order or request for a store's reference under another account.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.inventory.models import InventoryItem, ItemState
from dropstream.inventory.services import available_quantities
from dropstream.jobs.models import InboxEvent
from dropstream.orders.mapping import reference_store_id
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.stores.models import Store
from dropstream.tenants.scope import unscoped

#: BigCommerce's status ids the checker needs: the default monitored status (Awaiting
#: Fulfillment) and Cancelled.
AWAITING_FULFILLMENT = 11
CANCELLED = 5
#: DropStream statuses that account for an order that did not reach the warehouse.
EXPLAINED = frozenset({OrderStatus.ON_HOLD, OrderStatus.ERROR, OrderStatus.SKIPPED,
                       OrderStatus.CANCELLED})
SENT = frozenset({OrderStatus.AT_WAREHOUSE, OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED})
TRANSITIONAL = frozenset({OrderStatus.IMPORTED, OrderStatus.QUEUED, OrderStatus.RETRYING})
HTTP_TIMEOUT = 60


@dataclass(frozen=True)
class Offender:
    """One concrete breach: what (``subject``) and what is wrong with it (``problem``)."""

    subject: str
    problem: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


@dataclass
class InvariantReport:
    orders_lost: list[Offender] = field(default_factory=list)
    orders_duplicated_at_warehouse: list[Offender] = field(default_factory=list)
    shipments_posted_twice: list[Offender] = field(default_factory=list)
    shipments_never_posted: list[Offender] = field(default_factory=list)
    stock_mismatches: list[Offender] = field(default_factory=list)
    orders_not_final: list[Offender] = field(default_factory=list)
    webhooks_acknowledged_without_inbox: list[Offender] = field(default_factory=list)
    quota_breaches: list[Offender] = field(default_factory=list)
    wrong_tenant: list[Offender] = field(default_factory=list)
    #: What was looked at (orders, shipments, deliveries, calls …), for the run's figures.
    checked: dict[str, int] = field(default_factory=dict)

    @classmethod
    def invariants(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "checked"]

    @property
    def ok(self) -> bool:
        return not any(getattr(self, name) for name in self.invariants())

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in self.invariants()}

    def summary(self, limit: int = 10) -> str:
        """One line per invariant with its count, and up to ``limit`` offenders under each."""
        lines = [f"invariants: {'OK' if self.ok else 'BROKEN'} "
                 f"(checked {', '.join(f'{v} {k}' for k, v in self.checked.items()) or 'nothing'})"]
        for name in self.invariants():
            found = getattr(self, name)
            lines.append(f"  {name.replace('_', ' ')}: {len(found)}")
            lines += [f"    - {offender}" for offender in found[:limit]]
            if len(found) > limit:
                lines.append(f"    … and {len(found) - limit} more")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(), "checked": dict(self.checked),
                **{name: [str(o) for o in getattr(self, name)] for name in self.invariants()}}


# ------------------------------------------------------------------------------------------------
# Reading the sandboxes
# ------------------------------------------------------------------------------------------------


def bigcommerce_state(source: Any) -> dict[str, Any]:
    """The BigCommerce sandbox's state document: from the object (``snapshot()``) or, for a
    sandbox in another process, from its base URL (``GET /_sandbox/state``)."""
    if isinstance(source, str):
        return _get_json(f"{source.rstrip('/')}/_sandbox/state")
    return source.snapshot()


def wms_state(source: Any) -> dict[str, Any]:
    """The WMS sandbox's state document, from the object or its base URL
    (``GET /_sandbox/snapshot``)."""
    if isinstance(source, str):
        return _get_json(f"{source.rstrip('/')}/_sandbox/snapshot")["result"]
    return source.snapshot()


def _get_json(url: str) -> Any:
    with requests.get(url, timeout=HTTP_TIMEOUT) as response:
        response.raise_for_status()
        return response.json()


# ------------------------------------------------------------------------------------------------
# The check
# ------------------------------------------------------------------------------------------------


def check(app: Flask, bigcommerce: dict[str, Any], wms: dict[str, Any], *,
          deliveries: Iterable[dict[str, Any]] = ()) -> InvariantReport:
    """Compare the sandboxes' records with DropStream's database (read in its own app context
    and session, closed before returning, so no transaction is left open).

    :param bigcommerce: :func:`bigcommerce_state`'s document.
    :param wms: :func:`wms_state`'s document.
    :param deliveries: webhook deliveries a harness made itself (not through the sandbox), in
        the sandbox's delivery shape: ``{"store_hash", "scope", "payload", "attempts":
        [{"status", "answer"}]}``.
    """
    report = InvariantReport()
    with app.app_context():
        try:
            with unscoped(db.session):
                _Check(report, bigcommerce, wms, list(deliveries)).run()
        finally:
            db.session.rollback()
            db.session.remove()
    return report


class _Check:
    def __init__(self, report: InvariantReport, bigcommerce: dict[str, Any],
                 wms: dict[str, Any], deliveries: list[dict[str, Any]]) -> None:
        self.report = report
        self.bc = bigcommerce
        self.wms = wms
        self.deliveries = list(bigcommerce.get("webhook_deliveries", [])) + deliveries
        session = db.session
        self.stores = {s.id: s for s in session.scalars(
            select(Store).options(selectinload(Store.warehouse)))}
        self.by_hash = {s.external_id: s for s in self.stores.values()
                        if s.external_id in bigcommerce["stores"]}
        self.orders = list(session.scalars(select(Order).options(selectinload(Order.addresses))))
        self.order_by_key = {(o.store_id, o.external_id): o for o in self.orders}
        self.order_by_id = {o.id: o for o in self.orders}
        self.address_by_ref = {a.warehouse_ref: (o, a) for o in self.orders for a in o.addresses
                               if a.warehouse_ref}
        self.shipments = list(session.scalars(select(Shipment)))
        self.inbox = list(session.scalars(select(InboxEvent)))
        self.wms_by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for order in wms["orders"]:
            self.wms_by_ref[order["reference"]].append(order)

    def run(self) -> None:
        self.lost_orders()
        self.duplicates()
        self.shipments_posted()
        self.stock()
        self.not_final()
        self.webhooks()
        self.quota()
        self.tenants()

    # -- helpers -----------------------------------------------------------------------------

    def account_of(self, store: Store) -> str | None:
        """The store's account at the generic WMS (its own, or the warehouse's default)."""
        code = (store.warehouse_account or {}).get("customer_code")
        if not code and store.warehouse is not None:
            code = (store.warehouse.settings or {}).get("default_account")
        return str(code) if code else None

    def label(self, order: Order) -> str:
        store = self.stores.get(order.store_id)
        where = f"store {store.external_id}" if store is not None else f"store #{order.store_id}"
        return f"{where} order {order.external_id} (DropStream order {order.id})"

    # -- the invariants ------------------------------------------------------------------------

    def lost_orders(self) -> None:
        eligible = 0
        for store_hash, remote in self.bc["stores"].items():
            store = self.by_hash.get(store_hash)
            if store is None:
                continue
            monitored = (store.settings or {}).get("monitored_status_id", AWAITING_FULFILLMENT)
            for bc_order in remote["orders"]:
                statuses = [status for _, status in bc_order["status_history"]]
                if monitored not in statuses or bc_order["is_deleted"] \
                        or bc_order["status_id"] == CANCELLED:
                    continue
                eligible += 1
                subject = f"store {store_hash} order {bc_order['id']}"
                order = self.order_by_key.get((store.id, str(bc_order["id"])))
                if order is None:
                    self.report.orders_lost.append(Offender(
                        subject, "reached the monitored status; DropStream never imported it"))
                    continue
                if order.status not in SENT:
                    continue  # explained (held, failed, skipped, cancelled) or not final
                missing = [a.warehouse_ref for a in order.addresses
                           if a.role == "shipping" and a.warehouse_ref
                           and not self.wms_by_ref.get(a.warehouse_ref)]
                if missing:
                    self.report.orders_lost.append(Offender(
                        subject, f"DropStream says {order.status.value} as "
                        f"{', '.join(missing)}; the WMS has no such order"))
        self.report.checked["store orders eligible"] = eligible

    def duplicates(self) -> None:
        for reference, found in sorted(self.wms_by_ref.items()):
            if len(found) > 1:
                self.report.orders_duplicated_at_warehouse.append(Offender(
                    f"WMS reference {reference}",
                    f"{len(found)} orders: " + ", ".join(
                        f"{o['id']} ({o['account']}, {o['status']})" for o in found)))
        self.report.checked["WMS orders"] = len(self.wms["orders"])

    def shipments_posted(self) -> None:
        bc_orders = {(h, o["id"]): o for h, s in self.bc["stores"].items() for o in s["orders"]}
        recorded = {(s.warehouse_id, s.warehouse_shipment_id): s for s in self.shipments}
        checked = 0
        for wms_shipment in self.wms["shipments"]:
            reference = wms_shipment["reference"]
            subject = f"WMS shipment {wms_shipment['id']} of {reference}"
            found = self.address_by_ref.get(reference)
            if found is None:
                store = self.stores.get(reference_store_id(reference) or -1)
                if store is not None and store.external_id in self.by_hash:
                    self.report.shipments_never_posted.append(Offender(
                        subject, "DropStream has no order with this reference"))
                continue
            order, _address = found
            store = self.stores[order.store_id]
            bc_order = bc_orders.get((store.external_id, _int(order.external_id)))
            if bc_order is None:
                continue  # not a store on this sandbox, or the order is gone from the store
            checked += 1
            row = recorded.get((store.warehouse_id, wms_shipment["id"]))
            key = re.compile(rf"\bds-shipment-{row.id}\b") if row is not None else None
            tracking = (wms_shipment.get("tracking_number") or "").strip()
            posted = [s for s in bc_order["shipments"]
                      if (tracking and (s.get("tracking_number") or "").strip() == tracking)
                      or (key is not None and key.search(s.get("comments") or ""))]
            if not posted and row is not None and row.state is ShipmentState.POSTED \
                    and row.store_shipment_id is None:
                continue  # part of a bundle: its units reach the store with the parcel that
                # completes the bundle (an order whose bundle never completes is not final)
            if not posted:
                state = (f"DropStream's shipment {row.id} is {row.state.value}"
                         + (f" ({row.last_error})" if row.last_error else "")
                         if row is not None else "DropStream never recorded it")
                self.report.shipments_never_posted.append(Offender(
                    f"{subject} (store {store.external_id} order {order.external_id})",
                    f"not on the store order; {state}"))
            elif len(posted) > 1:
                self.report.shipments_posted_twice.append(Offender(
                    f"{subject} (store {store.external_id} order {order.external_id})",
                    f"posted {len(posted)} times: store shipments "
                    f"{', '.join(str(s['id']) for s in posted)}"))
        self.report.checked["WMS shipments"] = checked

    def stock(self) -> None:
        accounts = self.wms.get("accounts", {})
        items_by_store: dict[int, list[InventoryItem]] = defaultdict(list)
        for item in db.session.scalars(select(InventoryItem).where(
                InventoryItem.state != ItemState.SKIPPED)):
            items_by_store[item.store_id].append(item)
        checked = 0
        for store_id, items in sorted(items_by_store.items()):
            store = self.stores[store_id]
            remote = self.bc["stores"].get(store.external_id)
            account = self.account_of(store)
            if remote is None or account not in accounts:
                continue
            expected = available_quantities(db.session, store, stock=accounts[account]["stock"])
            for item in items:
                level = remote["inventory"].get(item.store_sku)
                want = expected.get(item.store_sku)
                if level is None or want is None:
                    continue
                checked += 1
                if level != want:
                    self.report.stock_mismatches.append(Offender(
                        f"store {store.external_id} SKU {item.store_sku}",
                        f"the store has {level}; the WMS's last value gives {want} "
                        f"(DropStream: {item.state.value}, last pushed {item.pushed_quantity})"))
        self.report.checked["stock items"] = checked

    def not_final(self) -> None:
        for order in self.orders:
            problem = None
            if order.status in TRANSITIONAL:
                problem = f"still {order.status.value}"
            elif order.status is OrderStatus.ON_HOLD and not order.hold_reason:
                problem = "on hold without a reason"
            elif order.status is OrderStatus.ERROR \
                    and not (order.error_message or order.error_code):
                problem = "in error without a message"
            elif order.status in (OrderStatus.AT_WAREHOUSE, OrderStatus.PARTIALLY_SHIPPED):
                remote = [w for a in order.addresses if a.warehouse_ref
                          for w in self.wms_by_ref.get(a.warehouse_ref, [])
                          if w["status"] != "cancelled"]
                if remote and all(w["status"] == "shipped" for w in remote):
                    problem = (f"the WMS shipped it all; DropStream still says "
                               f"{order.status.value}")
            if problem:
                self.report.orders_not_final.append(Offender(self.label(order), problem))
        self.report.checked["DropStream orders"] = len(self.orders)

    def webhooks(self) -> None:
        # An event is its scope, time and hash (its hash covers only ``data``, which two events
        # about one order may share); the inbox row keeps the payload it was stored from.
        rows = {(event.store_id, *_event_identity(event.payload or {})) for event in self.inbox}
        acknowledged = 0
        for delivery in self.deliveries:
            answers = [a for a in delivery.get("attempts", [])
                       if a.get("status") is not None and 200 <= a["status"] < 300]
            if not answers:
                continue
            acknowledged += 1
            if all(_ignored(a.get("answer")) for a in answers):
                continue
            store = self.by_hash.get(delivery["store_hash"])
            event_key = delivery["payload"].get("hash")
            if store is None or (store.id, *_event_identity(delivery["payload"])) not in rows:
                order_id = (delivery["payload"].get("data") or {}).get("id")
                self.report.webhooks_acknowledged_without_inbox.append(Offender(
                    f"{delivery['scope']} delivery {delivery.get('id', '?')} for store "
                    f"{delivery['store_hash']} order {order_id}",
                    f"answered {answers[0]['status']}; no inbox row for hash {event_key}"))
        self.report.checked["webhook deliveries acknowledged"] = acknowledged

    def quota(self) -> None:
        refused: dict[str, list[dict[str, Any]]] = defaultdict(list)
        calls = self.bc.get("calls", [])
        for call in calls:
            if call["status"] == 429 and not call.get("fault") and call.get("store_hash"):
                refused[call["store_hash"]].append(call)
        for store_hash, found in sorted(refused.items()):
            remote = self.bc["stores"].get(store_hash, {})
            self.report.quota_breaches.append(Offender(
                f"store {store_hash}",
                f"{len(found)} requests refused over its quota of {remote.get('quota')} per "
                f"{remote.get('window_ms')} ms (first: {found[0]['method']} {found[0]['path']})"))
        self.report.checked["store API calls"] = len(calls)

    def tenants(self) -> None:
        offenders = self.report.wrong_tenant
        for call in self.bc.get("calls", []):
            if call.get("store_hash") and call.get("token_store") \
                    and call["token_store"] != call["store_hash"]:
                offenders.append(Offender(
                    f"store call {call['method']} {call['path']}",
                    f"made with store {call['token_store']}'s token"))
        for order in self.orders:
            store = self.stores.get(order.store_id)
            if store is None:
                continue
            if (order.merchant_id, order.provider_id) != (store.merchant_id, store.provider_id):
                offenders.append(Offender(self.label(order), _owner(order, store)))
            remote = self.bc["stores"].get(store.external_id)
            if remote is not None and _int(order.external_id) not in (
                    {o["id"] for o in remote["orders"]} | set(remote.get("purged_orders", []))):
                offenders.append(Offender(self.label(order),
                                          "the store it is filed under has no such order"))
        for shipment in self.shipments:
            store = self.stores.get(shipment.store_id)
            subject = f"DropStream shipment {shipment.id} ({shipment.order_reference})"
            if store is None:
                continue
            if (shipment.merchant_id, shipment.provider_id) \
                    != (store.merchant_id, store.provider_id):
                offenders.append(Offender(subject, _owner(shipment, store)))
            named = reference_store_id(shipment.order_reference)
            if named is not None and named != store.id:
                offenders.append(Offender(subject, f"filed under store {store.id}; its reference "
                                                   f"names store {named}"))
            order = self.order_by_id.get(shipment.order_id) if shipment.order_id else None
            if order is not None and order.store_id != store.id:
                offenders.append(Offender(subject, f"filed under store {store.id}; its order "
                                                   f"belongs to store {order.store_id}"))
        for event in self.inbox:
            store = self.stores.get(event.store_id)
            subject = f"inbox row {event.id} ({event.topic})"
            if store is None:
                continue
            if (event.merchant_id, event.provider_id) != (store.merchant_id, store.provider_id):
                offenders.append(Offender(subject, _owner(event, store)))
            producer = (event.payload or {}).get("producer")
            if isinstance(producer, str) and producer != f"stores/{store.external_id}":
                offenders.append(Offender(subject, f"filed under store {store.external_id}; "
                                                   f"sent by {producer}"))
        seen: set[tuple[str, str, str]] = set()
        for what, account, reference in (
                [("WMS order " + o["id"], o["account"], o["reference"]) for o in self.wms["orders"]]
                + [(f"WMS request {r['method']} {r['path']}", account, reference)
                   for r in self.wms.get("requests", [])
                   # (a batch of orders names each order's account and reference)
                   for account, reference in r.get("orders") or [(r.get("account"),
                                                                  r.get("reference"))]
                   if reference]):
            store = self.stores.get(reference_store_id(reference or "") or -1)
            if store is None or (what, account, reference) in seen:
                continue
            expected = self.account_of(store)
            if expected is None or account == expected:
                continue
            seen.add((what, account, reference))
            offenders.append(Offender(what, f"for {reference} (store {store.id}, account "
                                            f"{expected}) under account {account}"))
        self.report.checked["inbox rows"] = len(self.inbox)


def _owner(row: Any, store: Store) -> str:
    return (f"belongs to merchant {row.merchant_id} (provider {row.provider_id}); its store "
            f"{store.id} to merchant {store.merchant_id} (provider {store.provider_id})")


def _ignored(answer: Any) -> bool:
    """DropStream said it deliberately ignored the delivery (``{"received": false}``)."""
    try:
        body = json.loads(answer) if isinstance(answer, str) else answer
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("received") is False


def _int(value: str) -> int | None:
    return int(value) if str(value).isdigit() else None


__all__ = ["InvariantReport", "Offender", "bigcommerce_state", "check", "wms_state"]


def _event_identity(payload: dict[str, Any]) -> tuple[Any, Any, Any]:
    return payload.get("scope"), payload.get("created_at"), payload.get("hash")
