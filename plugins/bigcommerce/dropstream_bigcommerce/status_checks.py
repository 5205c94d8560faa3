"""After a shipment: is the order's status where it should be? Checked later, not at once.

BigCommerce moves an order to Shipped (2) when every physical line has shipped, else to
Partially Shipped (3), by itself when a shipment is created (bigcommerce.md §2.7; the sandbox
does so). DropStream must still *see* that it did, and set the status only if it did not. Reading
the order right after each POST would cost a call per shipment; instead the shipment leaves a
*check*, and the next polling sweep — which lists every order modified since its cursor anyway,
shipped ones included, in one call per 250 — settles it from the listed order. A check the
sweep has not met within :data:`OVERDUE` (BigCommerce did not bump the order's modification
date, or the orders channel is off) is settled with a read of its own, at the next sweep or
shipment of the store.

Checks live where the quota state lives (Redis, or this process). Losing them (a flushed Redis)
loses only the confirmation of a move BigCommerce makes itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

from redis.exceptions import RedisError

from dropstream.connectors.base import ConnectorError
from dropstream_bigcommerce.mapping import embedded_consignments

log = logging.getLogger(__name__)
SHIPPED, PARTIALLY_SHIPPED = 2, 3
#: A check the sweep has not met by then is settled with a read of its own.
OVERDUE = 600.0
#: Overdue checks settled per sweep or shipment (the rest wait for the next one).
OVERDUE_BATCH = 20
KEY = "dropstream:bigcommerce:status-checks:{store_hash}"
TTL = 7 * 24 * 3600


class CheckStore(Protocol):
    def add(self, store_hash: str, order_id: int) -> None: ...
    def pending(self, store_hash: str) -> dict[int, float]: ...
    def done(self, store_hash: str, order_ids: Iterable[int]) -> None: ...


class LocalCheckStore:
    def __init__(self) -> None:
        self._checks: dict[str, dict[int, float]] = {}
        self._lock = threading.Lock()

    def add(self, store_hash: str, order_id: int) -> None:
        with self._lock:
            self._checks.setdefault(store_hash, {}).setdefault(order_id, time.time())

    def pending(self, store_hash: str) -> dict[int, float]:
        with self._lock:
            return dict(self._checks.get(store_hash, {}))

    def done(self, store_hash: str, order_ids: Iterable[int]) -> None:
        with self._lock:
            for order_id in order_ids:
                self._checks.get(store_hash, {}).pop(order_id, None)


class RedisCheckStore:
    """Redis being down loses checks (logged), never the shipment that made them."""

    def __init__(self, connection: Any) -> None:
        self._redis = connection

    def add(self, store_hash: str, order_id: int) -> None:
        key = KEY.format(store_hash=store_hash)
        try:
            pipe = self._redis.pipeline()
            pipe.hsetnx(key, str(order_id), json.dumps(time.time()))
            pipe.expire(key, TTL)
            pipe.execute()
        except RedisError:
            log.warning(
                "BigCommerce store %s: status check of order %s not kept", store_hash, order_id
            )

    def pending(self, store_hash: str) -> dict[int, float]:
        found = {}
        try:
            stored = self._redis.hgetall(KEY.format(store_hash=store_hash))
        except RedisError:
            return {}
        for order_id, added in stored.items():
            try:
                found[int(order_id)] = float(json.loads(added))
            except (ValueError, TypeError):
                continue
        return found

    def done(self, store_hash: str, order_ids: Iterable[int]) -> None:
        fields = [str(order_id) for order_id in order_ids]
        if fields:
            try:
                self._redis.hdel(KEY.format(store_hash=store_hash), *fields)
            except RedisError:
                pass  # settled again next time: harmless


def expected_status(order: dict[str, Any]) -> int | None:
    """Shipped when every physical line has shipped (a bundle: its parent, or all of its
    components), else Partially Shipped; None when nothing of it has shipped.

    With nothing shipped there is no move to confirm: the check outlived its shipment (deleted
    in the store), or it names another order. Checks are kept by store hash and order id, so a
    store connected again, to a fresh database on the same Redis, meets the old checks for the
    ids its new orders get: in the sandboxes that is an order just placed, which "Partially
    Shipped" would hide from the import for good.
    """
    consignments = embedded_consignments(order)
    if consignments is None:
        try:
            shipped_units = float(order.get("items_shipped") or 0)
            done = shipped_units >= float(order.get("items_total") or 0)
        except (TypeError, ValueError):
            return None
        if shipped_units <= 0:
            return None
        return SHIPPED if done else PARTIALLY_SHIPPED
    lines = [
        item
        for group in consignments.get("shipping") or []
        for item in group.get("line_items") or []
    ]
    if not any(float(line.get("quantity_shipped") or 0) > 0 for line in lines):
        return None
    components: dict[Any, list[dict[str, Any]]] = {}
    for line in lines:
        components.setdefault(line.get("parent_order_product_id"), []).append(line)

    def shipped(line: dict[str, Any]) -> bool:
        return float(line.get("quantity_shipped") or 0) >= float(line.get("quantity") or 0)

    for line in lines:
        if line.get("is_bundled_product") or line.get("type", "physical") != "physical":
            continue
        parts = components.get(line.get("id"), [])
        if not shipped(line) and not (parts and all(shipped(part) for part in parts)):
            return PARTIALLY_SHIPPED
    return SHIPPED


def settle(client: Any, settings: dict[str, Any], order: dict[str, Any]) -> bool:
    """Set the status ``order`` (as read, with its consignments) should have after its
    shipments, unless BigCommerce already did, or a person moved it elsewhere since (a refund or
    a cancellation is never undone). Returns True when a status was sent."""
    expected = expected_status(order)
    status = order.get("status_id")
    movable = {
        settings.get("monitored_status_id"),
        settings.get("sent_status_id"),
        PARTIALLY_SHIPPED,
    }
    if expected is None or status == expected or status not in movable:
        return False
    client.put(f"/v2/orders/{order['id']}", {"status_id": expected})
    return True


def settle_listed(
    client: Any, settings: dict[str, Any], checks: CheckStore, orders: Iterable[dict[str, Any]]
) -> None:
    """Settle the checks of orders a sweep listed (no extra read)."""
    pending = checks.pending(client.store_hash)
    if not pending:
        return
    settled = []
    for order in orders:
        if isinstance(order, dict) and order.get("id") in pending:
            settle(client, settings, order)
            settled.append(order["id"])
    checks.done(client.store_hash, settled)


def settle_overdue(
    client: Any, settings: dict[str, Any], checks: CheckStore, includes: dict[str, str]
) -> None:
    """Read and settle the checks no sweep has met in time; never fails the caller's work."""
    now = time.time()
    overdue = sorted(
        order_id
        for order_id, added in checks.pending(client.store_hash).items()
        if now - added > OVERDUE
    )[:OVERDUE_BATCH]
    settled = []
    for order_id in overdue:
        try:
            order = client.get(f"/v2/orders/{order_id}", includes)
            if isinstance(order, dict):
                settle(client, settings, order)
        except ConnectorError as error:
            if error.code != "remote_not_found":
                break  # try again next time
        settled.append(order_id)
    checks.done(client.store_hash, settled)
