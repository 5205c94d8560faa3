"""Canonical types: what connectors take and return.

Plain frozen dataclasses, never ORM rows and never vendor JSON. A storefront connector turns its
store's JSON into :class:`OrderData`; a warehouse connector turns :class:`WarehouseOrder` into its
WMS's JSON. The core only ever sees these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


class LineKind(str, enum.Enum):
    PHYSICAL = "physical"
    DIGITAL = "digital"
    GIFT_CERTIFICATE = "gift_certificate"

    @property
    def ships(self) -> bool:
        return self is LineKind.PHYSICAL


@dataclass(frozen=True)
class Address:
    name: str = ""
    company: str = ""
    street1: str = ""
    street2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country_code: str = ""  # ISO 3166-1 alpha-2
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class Destination:
    """One place an order ships to, with the shipping method the customer chose for it."""

    external_id: str
    address: Address
    shipping_method: str


@dataclass(frozen=True)
class OrderLine:
    external_id: str
    sku: str | None
    name: str
    quantity: int
    unit_price: Decimal = Decimal("0")
    kind: LineKind = LineKind.PHYSICAL
    destination_id: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    #: Set on a line that is a component of a store-side bundle. Which of parent and components
    #: ship is the connector's to say, through each line's ``kind``.
    parent_external_id: str | None = None


@dataclass(frozen=True)
class OrderData:
    external_id: str
    number: str
    status_code: str
    placed_at: datetime
    updated_at: datetime
    lines: tuple[OrderLine, ...]
    destinations: tuple[Destination, ...] = ()
    billing_address: Address | None = None
    customer_email: str = ""
    currency: str = ""
    note: str = ""
    cancelled: bool = False
    #: The store's own payload, kept on the order for support and reprocessing.
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class UnreadableOrder:
    """An order the connector could not turn into :class:`OrderData` (malformed vendor data).
    The core keeps it, in ``error`` with the store's payload, instead of losing it."""

    external_id: str
    number: str
    error: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class OrderPage:
    orders: tuple[OrderData, ...]
    #: Where the next call resumes; stored only once the page has been imported.
    cursor: str | None
    more: bool = False
    #: Orders on this page that could not be read; they never fail the rest of the page.
    unreadable: tuple[UnreadableOrder, ...] = ()


@dataclass(frozen=True)
class WarehouseLine:
    reference: str
    sku: str
    quantity: int
    name: str = ""


@dataclass(frozen=True)
class WarehouseOrder:
    """An order as sent to a warehouse. ``reference`` is stable across retries."""

    reference: str
    order_number: str
    placed_at: datetime
    ship_to: Address
    ship_code: str
    lines: tuple[WarehouseLine, ...]
    customer_email: str = ""
    note: str = ""
    #: The store's link settings at the warehouse (e.g. the merchant's customer code in the WMS).
    account: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WarehouseOrderAck:
    reference: str
    warehouse_order_id: str
    #: False when the warehouse already had an order with this reference (nothing new was made).
    created: bool = True


class CancelOutcome(str, enum.Enum):
    CANCELLED = "cancelled"
    TOO_LATE = "too_late"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ShipmentLineData:
    quantity: int
    line_reference: str | None = None
    sku: str | None = None


@dataclass(frozen=True)
class ShipmentData:
    warehouse_shipment_id: str
    order_reference: str
    lines: tuple[ShipmentLineData, ...]
    carrier: str = ""
    service: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    shipped_at: datetime | None = None


@dataclass(frozen=True)
class ShipmentPage:
    shipments: tuple[ShipmentData, ...]
    cursor: str | None
    more: bool = False


@dataclass(frozen=True)
class StockLevelData:
    sku: str
    quantity: int
    as_of: datetime


@dataclass(frozen=True)
class StockSnapshot:
    levels: tuple[StockLevelData, ...]
    cursor: str | None
    #: True when ``levels`` is the warehouse's whole stock (a full snapshot), not changes.
    complete: bool = False
    more: bool = False


@dataclass(frozen=True)
class ShipMethod:
    code: str
    name: str = ""
    carrier: str = ""


@dataclass(frozen=True)
class FulfillmentLine:
    line_external_id: str
    quantity: int


@dataclass(frozen=True)
class FulfillmentData:
    """A warehouse shipment, mapped back to the store's lines, to post to the store."""

    order_external_id: str
    destination_external_id: str | None
    #: Stable per shipment (DropStream's shipment id); lets a connector find an earlier post.
    key: str
    lines: tuple[FulfillmentLine, ...]
    tracking_number: str = ""
    carrier: str = ""
    shipping_method: str = ""
    tracking_url: str = ""
    #: True when no earlier attempt to post this shipment was ever made (so none can exist in
    #: the store): the connector may skip looking for one and save a call.
    first_attempt: bool = False


@dataclass(frozen=True)
class FulfillmentResult:
    external_id: str
    #: False when the store already had this shipment (nothing new was posted).
    created: bool = True


@dataclass(frozen=True)
class InventoryUpdate:
    sku: str
    quantity: int


class InventoryOutcome(str, enum.Enum):
    PUSHED = "pushed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class InventoryResult:
    sku: str
    outcome: InventoryOutcome
    #: Stable reason code for skipped/failed items, e.g. ``tracking_off`` or ``unknown_sku``.
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class OrderStatusChoice:
    """One of the store's own order statuses: ``code`` as the connector's settings store it
    (BigCommerce: the status id), ``name`` as the store shows it (a custom label if renamed)."""

    code: str
    name: str


@dataclass(frozen=True)
class SetupCheck:
    """One set-up check: did it pass, what was found, and how to fix it in words."""

    key: str
    title: str
    passed: bool
    message: str = ""
    fix: str = ""
    details: tuple[str, ...] = ()
    #: A failing optional check (e.g. inventory tracking) does not block activation.
    required: bool = True
    #: The input a failing check is about, named as a validation error names it
    #: (``credentials.access_token``), so a form shows the message next to that field.
    field: str = ""


__all__ = [
    "LineKind",
    "Address",
    "Destination",
    "OrderLine",
    "OrderData",
    "UnreadableOrder",
    "OrderPage",
    "WarehouseLine",
    "WarehouseOrder",
    "WarehouseOrderAck",
    "CancelOutcome",
    "ShipmentLineData",
    "ShipmentData",
    "ShipmentPage",
    "StockLevelData",
    "StockSnapshot",
    "ShipMethod",
    "FulfillmentLine",
    "FulfillmentData",
    "FulfillmentResult",
    "InventoryUpdate",
    "InventoryOutcome",
    "InventoryResult",
    "OrderStatusChoice",
    "SetupCheck",
]
