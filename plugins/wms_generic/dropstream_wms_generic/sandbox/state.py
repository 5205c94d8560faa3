"""What the sandbox WMS knows: accounts with their stock, orders, shipments, the stock change feed
and the events waiting to be pushed. Pure state behind one lock; the HTTP layer and the admin
operations both go through :class:`WmsState`."""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dropstream_wms_generic import protocol
from dropstream_wms_generic.sandbox.tracking import tracking_number

DEFAULT_SHIP_METHODS = (
    {"code": "GRND", "name": "Ground", "carrier": "UPS"},
    {"code": "EXP", "name": "Express", "carrier": "FedEx"},
    {"code": "UPS_GROUND", "name": "UPS Ground", "carrier": "UPS"},
    {"code": "UPS_2DAY", "name": "UPS 2nd Day Air", "carrier": "UPS"},
    {"code": "FEDEX_HOME", "name": "FedEx Home Delivery", "carrier": "FedEx"},
    {"code": "FEDEX_2DAY", "name": "FedEx 2Day", "carrier": "FedEx"},
    {"code": "USPS_PRIORITY", "name": "USPS Priority Mail", "carrier": "USPS"},
    {"code": "USPS_GROUND", "name": "USPS Ground Advantage", "carrier": "USPS"},
    {"code": "DHL_EXPRESS", "name": "DHL Express Worldwide", "carrier": "DHL"},
)


def now() -> datetime:
    return datetime.now(UTC)


class SandboxError(Exception):
    """A request the sandbox refuses, as the protocol's error document."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def document(self) -> dict[str, Any]:
        return protocol.error_document(self.code, self.message, self.field)


@dataclass
class Settings:
    #: False: a repeated reference makes a second order (a WMS that does not de-duplicate).
    dedupe: bool = True
    #: Seconds from order to (first) shipment; partial shipments follow after as long again.
    ship_delay: float = 10.0
    #: Share of orders (with two or more units) shipped in two parcels.
    partial_ratio: float = 0.25
    #: True: SKUs without stock in the account are refused (422 unknown_sku).
    strict_skus: bool = False
    #: False: orders wait until shipped by hand (``ship``), whatever the delay.
    auto_ship: bool = True


@dataclass
class PushTarget:
    """Where shipments and stock are pushed: DropStream's inbound address for one warehouse."""

    url: str
    key: str
    secret: str


@dataclass
class WmsState:
    settings: Settings = field(default_factory=Settings)
    #: Accepted credentials: a bearer token, basic user/password, an API key (in its header).
    credentials: dict[str, str] = field(
        default_factory=lambda: {
            "token": "wms-token",
            "username": "dropstream",
            "password": "wms-password",
            "api_key": "wms-api-key",
            "api_key_header": "X-API-Key",
        }
    )
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    shipments: list[dict[str, Any]] = field(default_factory=list)
    #: The stock change feed: ``(account, sku)`` in order; a cursor is a position in it.
    changes: list[tuple[str, str]] = field(default_factory=list)
    ship_methods: list[dict[str, str]] = field(
        default_factory=lambda: [dict(m) for m in DEFAULT_SHIP_METHODS]
    )
    push: PushTarget | None = None
    #: Events waiting to be pushed (``{"path", "body", "attempts"}``), and a log of attempts.
    outbox: list[dict[str, Any]] = field(default_factory=list)
    pushed: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 7
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._order_ids = itertools.count(1)
        self._shipment_ids = itertools.count(1)
        self._event_ids = itertools.count(1)

    # -- accounts and stock ----------------------------------------------------------------------

    def add_account(self, code: str, name: str = "") -> dict[str, Any]:
        with self.lock:
            return self.accounts.setdefault(code, {"code": code, "name": name or code, "stock": {}})

    def account(self, code: str | None, field_name: str = "account") -> dict[str, Any]:
        if not code or code not in self.accounts:
            raise SandboxError(
                422, "unknown_account", f"No account {code!r} at this WMS.", field_name
            )
        return self.accounts[code]

    def set_stock(
        self, account: str, levels: dict[str, int], as_of: datetime | None = None
    ) -> None:
        with self.lock:
            stock = self.add_account(account)["stock"]
            for sku, quantity in levels.items():
                stock[sku] = (max(0, int(quantity)), as_of or now())
                self.changes.append((account, sku))
            self._queue_stock_push(account, list(levels))

    # -- orders ----------------------------------------------------------------------------------

    def create_order(self, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``(201, ack)`` for a new order, ``(200, ack)`` for a reference it already has."""
        with self.lock:
            account = self.account(document["account"])
            if self.settings.dedupe:
                for order in self.find(document["account"], document["reference"]):
                    return 200, self.ack(order)
            codes = {m["code"]: m for m in self.ship_methods}
            if document["ship_method"] not in codes:
                raise SandboxError(
                    422,
                    "unknown_ship_method",
                    f"No ship method {document['ship_method']!r}; see GET /v1/ship-methods.",
                    "ship_method",
                )
            for index, line in enumerate(document["lines"]):
                if self.settings.strict_skus and line["sku"] not in account["stock"]:
                    raise SandboxError(
                        422,
                        "unknown_sku",
                        f"SKU {line['sku']!r} is not an item of account {account['code']}.",
                        f"lines[{index}].sku",
                    )
            created = now()
            order = {
                "id": f"WO-{next(self._order_ids):06d}",
                "reference": document["reference"],
                "account": account["code"],
                "status": "open",
                "created_at": created,
                "ship_method": document["ship_method"],
                "carrier": codes[document["ship_method"]]["carrier"],
                "service": document["ship_method"],
                "ship_to": document["ship_to"],
                "lines": [
                    {
                        "reference": line["reference"],
                        "sku": line["sku"],
                        "quantity": line["quantity"],
                        "shipped": 0,
                    }
                    for line in document["lines"]
                ],
                "plan": self._plan(document["lines"], created),
            }
            self.orders.append(order)
            return 201, self.ack(order)

    def _plan(
        self, lines: list[dict[str, Any]], created: datetime
    ) -> list[tuple[datetime, dict[str, int]]]:
        """When each parcel leaves, with ``{line_reference: units}`` (None: all that is left)."""
        delay = timedelta(seconds=self.settings.ship_delay)
        units = sum(line["quantity"] for line in lines)
        if units >= 2 and self.rng.random() < self.settings.partial_ratio:
            first: dict[str, int] = {}
            budget = units // 2
            for line in lines:
                take = min(line["quantity"], budget)
                if take:
                    first[line["reference"]] = take
                    budget -= take
            return [(created + delay, first), (created + 2 * delay, {})]
        return [(created + delay, {})]

    def ack(self, order: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": order["id"],
            "reference": order["reference"],
            "account": order["account"],
            "status": order["status"],
            "created_at": protocol.format_time(order["created_at"]),
        }

    def find(self, account: str, reference: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                o for o in self.orders if o["account"] == account and o["reference"] == reference
            ]

    def order(self, order_id: str) -> dict[str, Any]:
        found = next((o for o in self.orders if o["id"] == order_id), None)
        if found is None:
            raise SandboxError(404, "not_found", f"No order {order_id!r}.")
        return found

    def cancel(self, order_id: str) -> dict[str, Any]:
        with self.lock:
            order = self.order(order_id)
            if any(line["shipped"] for line in order["lines"]):
                raise SandboxError(
                    409,
                    "already_shipped",
                    f"Order {order_id} has shipped (in part or whole); it cannot be cancelled.",
                )
            order["status"] = "cancelled"
            order["plan"] = []
            return self.ack(order)

    # -- picking and shipping --------------------------------------------------------------------

    def advance(self, at: datetime | None = None) -> list[dict[str, Any]]:
        """Ship every parcel that is due (the picker's round). Returns the new shipments."""
        at = at or now()
        made = []
        with self.lock:
            if not self.settings.auto_ship:
                return []
            for order in self.orders:
                while order["plan"] and order["plan"][0][0] <= at:
                    _, lines = order["plan"].pop(0)
                    shipment = self._ship(order, lines or None)
                    if shipment:
                        made.append(shipment)
                if order["plan"] and order["status"] == "open":
                    order["status"] = "picking"
        return made

    def ship(
        self, reference: str, account: str | None = None, lines: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Ship an order now: every unit left, or ``{line_reference: units}``."""
        with self.lock:
            orders = [
                o
                for o in self.orders
                if o["reference"] == reference
                and (account is None or o["account"] == account)
                and o["status"] != "cancelled"
            ]
            if not orders:
                raise SandboxError(404, "not_found", f"No live order with reference {reference!r}.")
            shipment = self._ship(orders[0], lines)
            if shipment is None:
                raise SandboxError(
                    409, "nothing_to_ship", f"Order {orders[0]['id']} has nothing left to ship."
                )
            if lines is None:
                orders[0]["plan"] = []
            return shipment

    def _ship(self, order: dict[str, Any], lines: dict[str, int] | None) -> dict[str, Any] | None:
        if order["status"] == "cancelled":
            return None
        parcel = []
        stock = self.accounts[order["account"]]["stock"]
        for line in order["lines"]:
            left = line["quantity"] - line["shipped"]
            units = left if lines is None else min(left, int(lines.get(line["reference"], 0)))
            if units <= 0:
                continue
            line["shipped"] += units
            parcel.append(
                {"line_reference": line["reference"], "sku": line["sku"], "quantity": units}
            )
            if line["sku"] in stock:  # stock leaves with the parcel
                stock[line["sku"]] = (max(0, stock[line["sku"]][0] - units), now())
                self.changes.append((order["account"], line["sku"]))
        if not parcel:
            return None
        done = all(line["shipped"] >= line["quantity"] for line in order["lines"])
        order["status"] = "shipped" if done else "partially_shipped"
        number, url = tracking_number(order["carrier"], self.rng)
        shipment = {
            "id": f"SH-{next(self._shipment_ids):06d}",
            "order_id": order["id"],
            "reference": order["reference"],
            "account": order["account"],
            "carrier": order["carrier"],
            "service": order["service"],
            "tracking_number": number,
            "tracking_url": url,
            "shipped_at": protocol.format_time(now()),
            "lines": parcel,
        }
        self.shipments.append(shipment)
        self._queue_push("shipments", {"shipment": shipment})
        self._queue_stock_push(order["account"], [item["sku"] for item in parcel])
        return shipment

    # -- feeds -----------------------------------------------------------------------------------

    def shipments_page(self, account: str, cursor: str | None, limit: int) -> dict[str, Any]:
        with self.lock:
            self.account(account)
            start = _position(cursor, "cursor")
            mine = [
                (i, s)
                for i, s in enumerate(self.shipments)
                if i >= start and s["account"] == account
            ]
            page = mine[:limit]
            end = page[-1][0] + 1 if page and len(mine) > limit else len(self.shipments)
            return {
                "items": [s for _, s in page],
                "next_cursor": str(max(end, start)),
                "has_more": len(mine) > limit,
            }

    def stock_snapshot(self, account: str, cursor: str | None, limit: int) -> dict[str, Any]:
        with self.lock:
            stock = self.account(account)["stock"]
            start = _position(cursor, "cursor")
            skus = sorted(stock)[start : start + limit]
            more = start + limit < len(stock)
            return {
                "account": account,
                "complete": True,
                "items": [self._level(stock, sku) for sku in skus],
                "next_cursor": str(start + limit) if more else None,
                "has_more": more,
                "changes_cursor": str(len(self.changes)),
            }

    def stock_changes(self, account: str, cursor: str | None, limit: int) -> dict[str, Any]:
        with self.lock:
            stock = self.account(account)["stock"]
            start = _position(cursor, "cursor")
            skus: list[str] = []
            position = start
            for position in range(start, len(self.changes)):
                owner, sku = self.changes[position]
                if owner == account and sku not in skus:
                    if len(skus) == limit:
                        break
                    skus.append(sku)
            else:
                position = len(self.changes)
            return {
                "account": account,
                "complete": False,
                "items": [self._level(stock, sku) for sku in skus],
                "next_cursor": str(max(position, start)),
                "has_more": position < len(self.changes),
            }

    @staticmethod
    def _level(stock: dict[str, tuple[int, datetime]], sku: str) -> dict[str, Any]:
        quantity, as_of = stock[sku]
        return {"sku": sku, "quantity": quantity, "as_of": protocol.format_time(as_of)}

    # -- pushes ----------------------------------------------------------------------------------

    def _queue_push(self, path: str, body: dict[str, Any]) -> None:
        if self.push is not None:
            event_id = f"evt-{self.seed}-{next(self._event_ids):08d}"
            self.outbox.append(
                {"path": path, "body": {"event_id": event_id, **body}, "attempts": 0}
            )

    def _queue_stock_push(self, account: str, skus: list[str]) -> None:
        if self.push is None or not skus:
            return
        stock = self.accounts[account]["stock"]
        for start in range(0, len(skus), 1000):
            items = [self._level(stock, sku) for sku in dict.fromkeys(skus[start : start + 1000])]
            self._queue_push(
                "stock", {"snapshot": {"account": account, "complete": False, "items": items}}
            )

    def queue_full_stock_push(self, account: str) -> None:
        with self.lock:
            self._queue_stock_push(account, sorted(self.account(account)["stock"]))


def _position(cursor: str | None, field_name: str) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit():
        raise SandboxError(400, "invalid_cursor", "Pass a cursor this WMS handed out.", field_name)
    return int(cursor)
