"""Order statuses and hold reasons, each with the one-line explanation operators see."""

from __future__ import annotations

import enum


class OrderStatus(str, enum.Enum):
    IMPORTED = "imported"
    ON_HOLD = "on_hold"
    QUEUED = "queued"
    RETRYING = "retrying"
    ERROR = "error"
    AT_WAREHOUSE = "at_warehouse"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def explanation(self) -> str:
        return STATUS_EXPLANATIONS[self]


STATUS_EXPLANATIONS = {
    OrderStatus.IMPORTED: "In DropStream, not yet validated.",
    OrderStatus.ON_HOLD: "Needs a person or a mapping; the hold reason says which. Released by "
    "itself when the missing listing or shipping rule is added.",
    OrderStatus.QUEUED: "Valid and waiting to be sent to the warehouse.",
    OrderStatus.RETRYING: "The warehouse could not be reached (timeout, 5xx, rate limit); "
    "DropStream retries with growing delays.",
    OrderStatus.ERROR: "Retries are exhausted or the warehouse rejected the order; the message is "
    "the warehouse's. Fix the cause, then Reprocess.",
    OrderStatus.AT_WAREHOUSE: "The warehouse accepted the order; waiting for shipments.",
    OrderStatus.PARTIALLY_SHIPPED: "Some lines shipped and were posted to the store.",
    OrderStatus.SHIPPED: "Every line shipped; tracking was posted to the store.",
    OrderStatus.CANCELLED: "Cancelled in the store; the cancel was forwarded if the warehouse had it.",
    OrderStatus.SKIPPED: "Nothing to ship (only digital or gift-certificate lines); not sent to "
    "the warehouse.",
}

#: Statuses an order can still leave by itself or by an action.
OPEN_STATUSES = frozenset(
    {OrderStatus.IMPORTED, OrderStatus.ON_HOLD, OrderStatus.QUEUED, OrderStatus.RETRYING,
     OrderStatus.ERROR, OrderStatus.AT_WAREHOUSE, OrderStatus.PARTIALLY_SHIPPED}
)
#: Imported but not yet at the warehouse: their quantities are still "in flight" for inventory.
NOT_YET_AT_WAREHOUSE = frozenset(
    {OrderStatus.IMPORTED, OrderStatus.ON_HOLD, OrderStatus.QUEUED, OrderStatus.RETRYING,
     OrderStatus.ERROR}
)


class HoldReason(str, enum.Enum):
    NO_SKU = "no_sku"
    UNKNOWN_SKU = "unknown_sku"
    UNMAPPED_SHIPPING_METHOD = "unmapped_shipping_method"
    INVALID_ADDRESS = "invalid_address"
    INVALID_QUANTITY = "invalid_quantity"
    MANUAL = "manual"

    @property
    def explanation(self) -> str:
        return HOLD_EXPLANATIONS[self]

    @property
    def released_by_mapping(self) -> bool:
        """Adding a listing or a shipping rule can release holds for this reason."""
        return self in (HoldReason.NO_SKU, HoldReason.UNKNOWN_SKU, HoldReason.UNMAPPED_SHIPPING_METHOD)


HOLD_EXPLANATIONS = {
    HoldReason.NO_SKU: "A line has no SKU. Give the product a SKU in the store, or add a listing "
    "for the line's product; the order is released when it can be mapped.",
    HoldReason.UNKNOWN_SKU: "The warehouse does not know a SKU. Add a listing mapping the store SKU "
    "to the warehouse SKU; the order is released by itself.",
    HoldReason.UNMAPPED_SHIPPING_METHOD: "The customer's shipping method has no shipping rule. Add "
    "a rule (or a default rule) mapping it to a warehouse ship code; the order is released by itself.",
    HoldReason.INVALID_ADDRESS: "The shipping address is missing required fields. Correct it in "
    "the store, then Reprocess.",
    HoldReason.INVALID_QUANTITY: "A line's quantity is zero, negative or more than a warehouse "
    "line can carry. Correct the order in the store, then Reprocess.",
    HoldReason.MANUAL: "Held by a person. Release it when it may go to the warehouse.",
}
