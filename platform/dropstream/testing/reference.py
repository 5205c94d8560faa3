"""Reference connectors: an in-memory store and warehouse that implement the whole contract.

They drive the pipeline in the core's tests and are the reference the connector contract suite
is checked against. Each connector instance finds its *sandbox* (the remote system's state) by
the ``sandbox`` setting, in the current app's ``extensions``; tests reach the same sandbox to
create orders, ship them, change stock and inject faults. They speak no HTTP — the real
connectors (BigCommerce, the generic WMS) do, against their own sandboxes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from marshmallow import Schema, fields, validate

from dropstream.connectors.base import (
    AuthError,
    Capability,
    RejectedError,
    RemoteNotFound,
    StorefrontConnector,
    TransientError,
    UnreadableOrderError,
    WarehouseConnector,
)
from dropstream.connectors.types import (
    Address,
    CancelOutcome,
    Destination,
    FulfillmentData,
    FulfillmentResult,
    InventoryOutcome,
    InventoryResult,
    InventoryUpdate,
    LineKind,
    OrderData,
    OrderLine,
    OrderPage,
    OrderStatusChoice,
    SetupCheck,
    ShipmentData,
    ShipmentLineData,
    ShipmentPage,
    ShipMethod,
    StockLevelData,
    StockSnapshot,
    UnreadableOrder,
    WarehouseOrder,
    WarehouseOrderAck,
)

PAGE_SIZE = 50
#: Cursor overlap: orders changed this long before the cursor are read again (the importer
#: de-duplicates), so an order committed while a page was being read is never skipped.
OVERLAP = timedelta(seconds=5)


def now() -> datetime:
    return datetime.now(UTC)


class _Faults:
    """Faults to inject: ``fail("transient", times=2, on="forward_order")`` makes the next two
    calls of that operation (or of any, without ``on``) fail that way."""

    def __init__(self) -> None:
        self.queue: list[tuple[str, str | None]] = []
        self.calls = 0

    def fail(self, kind: str, times: int = 1, on: str | None = None) -> None:
        self.queue += [(kind, on)] * times

    def check(self, operation: str, token: str = "") -> None:
        self.calls += 1
        match = next((f for f in self.queue if f[1] in (None, operation)), None)
        if match is None:
            return
        self.queue.remove(match)
        fault = match[0]
        if fault == "transient":
            raise TransientError("reference sandbox: injected 503 Service Unavailable", remote_status=503)
        if fault == "server_error":  # the remote is up but fails this request
            raise TransientError("reference sandbox: injected 500 Internal Server Error",
                                 remote_status=500)
        if fault == "auth":
            raise AuthError("reference sandbox: token rejected (401)", remote_status=401)
        if fault == "leaky":
            # A remote that echoes the request's credential in its error, as some do.
            raise TransientError(f"reference sandbox: 502 from upstream for token={token}", remote_status=502)


# ------------------------------------------------------------------------------------------------
# The store side
# ------------------------------------------------------------------------------------------------


@dataclass
class StoreSandbox:
    token: str = "store-token"
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    shipments: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: sku -> {"tracked": bool, "quantity": int}
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: _Faults = field(default_factory=_Faults)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: Any = field(default_factory=lambda: itertools.count(100))

    def add_product(self, sku: str, tracked: bool = True, quantity: int = 0) -> None:
        self.products[sku] = {"tracked": tracked, "quantity": quantity}

    def create_order(
        self,
        lines: Sequence[dict[str, Any]],
        *,
        status: str = "awaiting_fulfillment",
        shipping_method: str = "Ground",
        destinations: Sequence[dict[str, Any]] | None = None,
        address: dict[str, Any] | None = None,
        email: str = "shopper@example.test",
    ) -> str:
        """Create an order; each line is ``{"sku", "quantity", "name"?, "kind"?, "destination"?}``."""
        with self.lock:
            order_id = str(next(self._ids))
            if destinations is None:
                destinations = [{"id": "1", "shipping_method": shipping_method,
                                 "address": address or default_address()}]
            stamp = now()
            self.orders[order_id] = {
                "id": order_id, "number": f"R{order_id}", "status": status, "placed_at": stamp,
                "updated_at": stamp, "email": email, "deleted": False,
                "destinations": {d["id"]: d for d in destinations},
                "lines": [
                    {"id": str(n), "sku": line.get("sku"), "name": line.get("name", "Item"),
                     "quantity": line.get("quantity", 1), "kind": line.get("kind", "physical"),
                     "destination": line.get("destination", destinations[0]["id"]),
                     "price": line.get("price", "10.00"), "parent": line.get("parent"),
                     "shipped": 0}
                    for n, line in enumerate(lines, start=1)
                ],
            }
            return order_id

    def set_status(self, order_id: str, status: str) -> None:
        with self.lock:
            order = self.orders[order_id]
            order["status"] = status
            order["updated_at"] = max(now(), order["updated_at"] + timedelta(microseconds=1))


#: The reference store's order statuses (code, name), as a store lists its own.
STORE_STATUSES = (
    ("pending", "Pending"), ("awaiting_payment", "Awaiting Payment"),
    ("awaiting_fulfillment", "Awaiting Fulfillment"), ("awaiting_shipment", "Awaiting Shipment"),
    ("manual_verification", "Manual Verification Required"), ("partially_shipped", "Partially Shipped"),
    ("shipped", "Shipped"), ("cancelled", "Cancelled"),
)


def default_address() -> dict[str, Any]:
    return {"name": "Ada Lovelace", "street1": "12 Analytical Row", "city": "London",
            "postal_code": "N1 9GU", "country_code": "GB", "phone": "+44 20 0000 0000"}


class ReferenceStoreSettings(Schema):
    sandbox = fields.String(required=True, validate=validate.Length(min=1, max=80))
    monitored_status = fields.String(load_default="awaiting_fulfillment")
    #: Store status set once the warehouse accepted an order; empty switches the update off.
    sent_status = fields.String(load_default="awaiting_shipment")


class ReferenceCredentials(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1), load_only=True)


class ReferenceStore(StorefrontConnector):
    """In-memory storefront: the reference for the storefront contract."""

    id = "reference-store"
    name = "Reference store (in memory)"
    capabilities = frozenset({Capability.IMPORT_ORDERS, Capability.MARK_ORDER_STATUS,
                              Capability.POST_FULFILLMENT, Capability.PUSH_INVENTORY})
    settings_schema = ReferenceStoreSettings
    credentials_schema = ReferenceCredentials
    monitored_status_setting = "monitored_status"

    @property
    def sandbox(self) -> StoreSandbox:
        return store_sandbox(self.context.settings["sandbox"])

    def _call(self, operation: str = "") -> StoreSandbox:
        sandbox = self.sandbox
        sandbox.faults.check(operation, str(self.context.credentials.get("token", "")))
        if self.context.credentials.get("token") != sandbox.token:
            raise AuthError("reference sandbox: token rejected (401)", remote_status=401)
        return sandbox

    @property
    def monitored(self) -> str:
        return self.context.settings.get("monitored_status") or "awaiting_fulfillment"

    def setup_checks(self) -> list[SetupCheck]:
        try:
            sandbox = self._call("setup_checks")
        except AuthError as error:
            return [SetupCheck("credentials", "Credentials are valid", False, error.message,
                               "Enter the store's current token.")]
        untracked = sorted(sku for sku, p in sandbox.products.items() if not p["tracked"])
        return [
            SetupCheck("credentials", "Credentials are valid", True, "The store accepted the token."),
            SetupCheck("inventory_tracking", "Inventory tracking is on", not untracked,
                       f"{len(untracked)} products do not track inventory." if untracked else "",
                       "Turn on inventory tracking for them so pushed stock takes effect.",
                       tuple(untracked), required=False),
        ]

    def order_statuses(self) -> list[OrderStatusChoice]:
        self._call("order_statuses")
        return [OrderStatusChoice(code, name) for code, name in STORE_STATUSES]

    def fetch_orders(self, cursor: str | None) -> OrderPage:
        # A sweep starts at its cursor less the overlap; its later pages go on after the last
        # order the page before returned (``<stamp>|<id>``), without it: re-applying the
        # overlap on each page would return the first page forever once more than a page of
        # orders changed within it (a flash sale).
        sandbox = self._call("fetch_orders")
        stamp, _, after_id = (cursor or "").partition("|")
        since = datetime.fromisoformat(stamp) if stamp else datetime.min.replace(tzinfo=UTC)
        sweep_from = since - OVERLAP if stamp else since
        with sandbox.lock:
            changed = sorted(
                (o for o in sandbox.orders.values() if self._importable(o) and (
                    (o["updated_at"], o["id"]) > (since, after_id) if after_id
                    else o["updated_at"] >= sweep_from)),
                key=lambda o: (o["updated_at"], o["id"]),
            )
            page = changed[:PAGE_SIZE]
            read = [self._read(o) for o in page]
        if not page:  # the sweep's end: the next one starts with the overlap again
            return OrderPage((), stamp or None, more=False)
        last = page[-1]
        more = len(changed) > PAGE_SIZE
        return OrderPage(tuple(o for o in read if isinstance(o, OrderData)),
                         f"{last['updated_at'].isoformat()}|{last['id']}" if more
                         else last["updated_at"].isoformat(), more=more,
                         unreadable=tuple(o for o in read if isinstance(o, UnreadableOrder)))

    def _read(self, order: dict[str, Any]) -> OrderData | UnreadableOrder:
        try:
            return self._to_order(order)
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            return UnreadableOrder(order["id"], order.get("number", ""), f"{type(error).__name__}: {error}",
                                   raw={"id": order["id"], "status": order.get("status")})

    def fetch_order(self, external_id: str) -> OrderData | None:
        sandbox = self._call("fetch_order")
        with sandbox.lock:
            order = sandbox.orders.get(external_id)
            if order is None or order["deleted"]:
                raise RemoteNotFound(f"reference sandbox: order {external_id} not found", remote_status=404)
            if order["status"] not in (self.monitored, "cancelled"):
                return None
            read = self._read(order)
        if isinstance(read, UnreadableOrder):
            raise UnreadableOrderError(read)
        return read

    def fetch_orders_by_id(
            self, external_ids: Sequence[str]) -> dict[str, OrderData | UnreadableOrder]:
        # A fault injected for reading an order fails this read too: it reads the same orders.
        sandbox = self._call("fetch_order")
        with sandbox.lock:
            found = [sandbox.orders.get(external_id) for external_id in external_ids]
            return {order["id"]: self._read(order) for order in found  # the rest: read alone
                    if order is not None and self._importable(order)}

    def _importable(self, order: dict[str, Any]) -> bool:
        """Listed and read in bulk: not deleted, at the monitored status or cancelled."""
        return not order["deleted"] and order["status"] in (self.monitored, "cancelled")

    def _to_order(self, order: dict[str, Any]) -> OrderData:
        return OrderData(
            external_id=order["id"], number=order["number"], status_code=order["status"],
            placed_at=order["placed_at"], updated_at=order["updated_at"],
            customer_email=order["email"], currency="USD",
            cancelled=order["status"] == "cancelled",
            destinations=tuple(
                Destination(d["id"], Address(**d["address"]), d["shipping_method"])
                for d in order["destinations"].values()
            ),
            lines=tuple(
                OrderLine(external_id=line["id"], sku=line["sku"], name=line["name"],
                          quantity=line["quantity"], unit_price=Decimal(line["price"]),
                          kind=LineKind(line["kind"]), destination_id=line["destination"],
                          parent_external_id=line["parent"])
                for line in order["lines"]
            ),
            raw={"id": order["id"], "status": order["status"]},
        )

    def mark_order_status(self, external_id: str, status: str) -> None:
        target = self.context.settings.get("sent_status", "awaiting_shipment") if status == "sent" else status
        if not target:
            return
        sandbox = self._call("mark_order_status")
        with sandbox.lock:
            if external_id not in sandbox.orders:
                raise RemoteNotFound(f"reference sandbox: order {external_id} not found", remote_status=404)
            if sandbox.orders[external_id]["status"] == self.monitored:
                sandbox.set_status(external_id, target)

    def post_fulfillment(self, fulfillment: FulfillmentData) -> FulfillmentResult:
        sandbox = self._call("post_fulfillment")
        with sandbox.lock:
            for shipment_id, shipment in sandbox.shipments.items():
                if shipment["key"] == fulfillment.key:
                    return FulfillmentResult(shipment_id, created=False)
            order = sandbox.orders.get(fulfillment.order_external_id)
            if order is None:
                raise RemoteNotFound("reference sandbox: order not found", remote_status=404)
            lines = {line["id"]: line for line in order["lines"]}
            for item in fulfillment.lines:
                line = lines.get(item.line_external_id)
                if line is None or line["shipped"] + item.quantity > line["quantity"]:
                    raise RejectedError(f"reference sandbox: cannot ship {item.quantity} of line "
                                        f"{item.line_external_id}", code="invalid_shipment")
            for item in fulfillment.lines:
                lines[item.line_external_id]["shipped"] += item.quantity
            shipment_id = str(len(sandbox.shipments) + 1)
            sandbox.shipments[shipment_id] = {
                "key": fulfillment.key, "order_id": order["id"], "tracking": fulfillment.tracking_number,
                "carrier": fulfillment.carrier, "lines": [(i.line_external_id, i.quantity) for i in fulfillment.lines],
            }
            shippable = [line for line in order["lines"] if line["kind"] == "physical"]
            done = all(line["shipped"] >= line["quantity"] for line in shippable)
            sandbox.set_status(order["id"], "shipped" if done else "partially_shipped")
            return FulfillmentResult(shipment_id)

    def push_inventory(self, updates: Sequence[InventoryUpdate]) -> list[InventoryResult]:
        sandbox = self._call("push_inventory")
        results = []
        with sandbox.lock:
            for update in updates:
                product = sandbox.products.get(update.sku)
                if product is None:
                    results.append(InventoryResult(update.sku, InventoryOutcome.SKIPPED, "unknown_sku",
                                                   "No product or variant has this SKU in the store."))
                elif not product["tracked"]:
                    results.append(InventoryResult(update.sku, InventoryOutcome.SKIPPED, "tracking_off",
                                                   "Inventory tracking is off for this product."))
                else:
                    product["quantity"] = update.quantity
                    results.append(InventoryResult(update.sku, InventoryOutcome.PUSHED))
        return results


# ------------------------------------------------------------------------------------------------
# The warehouse side
# ------------------------------------------------------------------------------------------------


@dataclass
class WarehouseSandbox:
    token: str = "wms-token"
    #: False: a repeated reference makes a second order (a WMS that does not de-duplicate).
    deduplicate: bool = True
    #: When set, only these SKUs are accepted; others are rejected as unknown.
    known_skus: set[str] | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    shipments: list[dict[str, Any]] = field(default_factory=list)
    stock: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    stock_changes: list[str] = field(default_factory=list)
    methods: list[ShipMethod] = field(default_factory=lambda: [ShipMethod("GRND", "Ground"), ShipMethod("EXP", "Express")])
    faults: _Faults = field(default_factory=_Faults)
    #: Faults raised *after* the order was stored (the ambiguous outcome: accepted, reply lost).
    lose_reply_next: int = 0
    #: Orders one ``forward_orders`` call takes (1: one order a call, no batches).
    batch_limit: int = 1
    #: How many orders each ``forward_orders`` call carried, for tests.
    batches: list[int] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def by_reference(self, reference: str) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["reference"] == reference and o["status"] != "void"]

    def set_stock(self, sku: str, quantity: int, as_of: datetime | None = None) -> None:
        with self.lock:
            self.stock[sku] = (quantity, as_of or now())
            self.stock_changes.append(sku)

    def ship(self, reference: str, lines: dict[str, int] | None = None, carrier: str = "UPS") -> dict[str, Any]:
        """Ship an order (all remaining units, or ``{line_reference: quantity}``)."""
        with self.lock:
            order = self.by_reference(reference)[0]
            shipped_lines = []
            for line in order["lines"]:
                remaining = line["quantity"] - line["shipped"]
                quantity = remaining if lines is None else min(remaining, lines.get(line["reference"], 0))
                if quantity <= 0:
                    continue
                line["shipped"] += quantity
                shipped_lines.append({"line_reference": line["reference"], "sku": line["sku"], "quantity": quantity})
                if line["sku"] in self.stock:
                    self.set_stock(line["sku"], max(0, self.stock[line["sku"]][0] - quantity))
            if all(line["shipped"] >= line["quantity"] for line in order["lines"]):
                order["status"] = "shipped"
            shipment = {"id": f"SHP-{len(self.shipments) + 1}", "reference": reference,
                        "tracking": f"1Z{len(self.shipments) + 1:016d}", "carrier": carrier,
                        "lines": shipped_lines, "shipped_at": now()}
            self.shipments.append(shipment)
            return shipment


class ReferenceWarehouseSettings(Schema):
    sandbox = fields.String(required=True, validate=validate.Length(min=1, max=80))


class ReferenceWarehouseAccount(Schema):
    customer_code = fields.String(load_default="")


class ReferenceWarehouse(WarehouseConnector):
    """In-memory WMS: the reference for the warehouse contract."""

    id = "reference-wms"
    name = "Reference warehouse (in memory)"
    capabilities = frozenset({Capability.FORWARD_ORDERS, Capability.CANCEL_ORDERS,
                              Capability.FETCH_SHIPMENTS, Capability.FETCH_INVENTORY,
                              Capability.SHIP_METHODS})
    settings_schema = ReferenceWarehouseSettings
    credentials_schema = ReferenceCredentials
    account_schema = ReferenceWarehouseAccount

    @property
    def sandbox(self) -> WarehouseSandbox:
        return warehouse_sandbox(self.context.settings["sandbox"])

    def _call(self, operation: str = "") -> WarehouseSandbox:
        sandbox = self.sandbox
        sandbox.faults.check(operation, str(self.context.credentials.get("token", "")))
        if self.context.credentials.get("token") != sandbox.token:
            raise AuthError("reference WMS: token rejected (401)", remote_status=401)
        return sandbox

    def setup_checks(self) -> list[SetupCheck]:
        try:
            self._call("setup_checks")
        except AuthError as error:
            return [SetupCheck("credentials", "Credentials are valid", False, error.message,
                               "Enter the WMS's current token.")]
        return [SetupCheck("credentials", "Credentials are valid", True, "The WMS accepted the token.")]

    def forward_order(self, order: WarehouseOrder) -> WarehouseOrderAck:
        sandbox = self._call("forward_order")
        ack = self._create(sandbox, order)
        if sandbox.lose_reply_next:
            sandbox.lose_reply_next -= 1
            raise TransientError("reference WMS: connection reset after the order was stored")
        return ack

    def forward_batch_limit(self) -> int:
        return self.sandbox.batch_limit

    def forward_orders(self, orders: Sequence[WarehouseOrder]
                       ) -> list[WarehouseOrderAck | RejectedError]:
        sandbox = self._call("forward_orders")
        sandbox.batches.append(len(orders))
        results: list[WarehouseOrderAck | RejectedError] = []
        for order in orders:
            try:
                results.append(self._create(sandbox, order))
            except RejectedError as error:
                results.append(error)
        if sandbox.lose_reply_next:
            sandbox.lose_reply_next -= 1
            raise TransientError("reference WMS: connection reset after the orders were stored")
        return results

    @staticmethod
    def _create(sandbox: WarehouseSandbox, order: WarehouseOrder) -> WarehouseOrderAck:
        with sandbox.lock:
            existing = sandbox.by_reference(order.reference)
            if existing and sandbox.deduplicate:
                return WarehouseOrderAck(order.reference, existing[0]["id"], created=False)
            if existing:  # look before create, for a WMS that would not stop a duplicate
                return WarehouseOrderAck(order.reference, existing[0]["id"], created=False)
            if sandbox.known_skus is not None:
                for index, line in enumerate(order.lines):
                    if line.sku not in sandbox.known_skus:
                        raise RejectedError(f"reference WMS: unknown SKU {line.sku!r}",
                                            code="unknown_sku", field=f"lines[{index}].sku")
            warehouse_id = f"WO-{len(sandbox.orders) + 1}"
            sandbox.orders.append({
                "id": warehouse_id, "reference": order.reference, "status": "open",
                "ship_code": order.ship_code, "ship_to": order.ship_to, "account": order.account,
                "lines": [{"reference": l.reference, "sku": l.sku, "quantity": l.quantity,
                           "name": l.name, "shipped": 0} for l in order.lines],
            })
            return WarehouseOrderAck(order.reference, warehouse_id)

    def cancel_order(self, reference: str, warehouse_order_id: str | None) -> CancelOutcome:
        sandbox = self._call("cancel_order")
        with sandbox.lock:
            orders = sandbox.by_reference(reference)
            if not orders:
                return CancelOutcome.NOT_FOUND
            if any(line["shipped"] for o in orders for line in o["lines"]):
                return CancelOutcome.TOO_LATE
            for o in orders:
                o["status"] = "cancelled"
            return CancelOutcome.CANCELLED

    def fetch_shipments(self, cursor: str | None) -> ShipmentPage:
        sandbox = self._call("fetch_shipments")
        start = int(cursor or 0)
        with sandbox.lock:
            page = sandbox.shipments[start:start + PAGE_SIZE]
            more = start + PAGE_SIZE < len(sandbox.shipments)
        return ShipmentPage(
            tuple(ShipmentData(s["id"], s["reference"],
                               tuple(ShipmentLineData(l["quantity"], l["line_reference"], l["sku"]) for l in s["lines"]),
                               carrier=s["carrier"], tracking_number=s["tracking"], shipped_at=s["shipped_at"])
                  for s in page),
            str(start + len(page)), more=more,
        )

    def fetch_inventory(self, cursor: str | None, full: bool = False) -> StockSnapshot:
        sandbox = self._call("fetch_inventory")
        with sandbox.lock:
            if full or cursor is None:
                skus = list(sandbox.stock)
                new_cursor = str(len(sandbox.stock_changes))
            else:
                skus = list(dict.fromkeys(sandbox.stock_changes[int(cursor):]))
                new_cursor = str(len(sandbox.stock_changes))
            levels = tuple(StockLevelData(sku, *sandbox.stock[sku]) for sku in skus)
        return StockSnapshot(levels, new_cursor, complete=full or cursor is None)

    def ship_methods(self) -> list[ShipMethod]:
        return list(self._call("ship_methods").methods)


# ------------------------------------------------------------------------------------------------
# Sandboxes live on the current app, so parallel apps (tests) never share one.
# ------------------------------------------------------------------------------------------------


def _sandboxes() -> dict[tuple[str, str], Any]:
    return current_app.extensions.setdefault("dropstream.reference_sandboxes", {})


def store_sandbox(name: str) -> StoreSandbox:
    return _sandboxes().setdefault(("store", name), StoreSandbox())


def warehouse_sandbox(name: str) -> WarehouseSandbox:
    return _sandboxes().setdefault(("warehouse", name), WarehouseSandbox())
