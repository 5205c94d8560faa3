"""What a sandbox store holds: accounts, catalog, orders, hooks (plain dataclasses, in memory).

Every read and write happens under :attr:`SandboxState.lock`; route handlers and admin methods
take it, so concurrent requests see whole changes only.
"""

from __future__ import annotations

import itertools
import random
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .errors import UnknownObject

#: Quota per 30 s window by plan (docs: api-rate-limits.mdx); ``None``: no request limit.
PLAN_QUOTAS: dict[str, int | None] = {"standard": 150, "plus": 150, "pro": 450, "unlimited": None}
DEFAULT_WINDOW_MS = 30_000
#: Largest stock per item and location the Inventory API saves (inventory-adjustments.mdx).
MAX_INVENTORY = 2_147_483_647

#: (id, system label, description, control-panel sort order), orders.v2.oas2.yml.
ORDER_STATUSES: tuple[tuple[int, str, str, int], ...] = (
    (0, "Incomplete",
     ("An incomplete order happens when a shopper reached the payment page, but did "
      "not complete the transaction."), 0),
    (1, "Pending",
     "Customer started the checkout process, but did not complete it.", 1),
    (2, "Shipped",
     ("Order has been shipped, but receipt has not been confirmed; seller has used "
      "the Ship Items action."), 8),
    (3, "Partially Shipped",
     ("Only some items in the order have been shipped, due to some products being "
      "pre-order only or other reasons."), 6),
    (4, "Refunded",
     "Seller has used the Refund action.", 11),
    (5, "Cancelled",
     "Seller has cancelled an order, due to a stock inconsistency or other reasons.", 9),
    (6, "Declined",
     ("Seller has marked the order as declined for lack of manual payment, or other "
      "reasons."), 10),
    (7, "Awaiting Payment",
     "Customer has completed checkout process, but payment has yet to be confirmed.", 2),
    (8, "Awaiting Pickup",
     ("Order has been pulled, and is awaiting customer pickup from a seller-specified"
      " location."), 5),
    (9, "Awaiting Shipment",
     ("Order has been pulled and packaged, and is awaiting collection from a shipping"
      " provider."), 4),
    (10, "Completed",
     ("Client has paid for their digital product and their file(s) are available for "
      "download."), 7),
    (11, "Awaiting Fulfillment",
     "Customer has completed the checkout process and payment has been confirmed.", 3),
    (12, "Manual Verification Required",
     "Order is on hold while some aspect needs to be manually confirmed.", 13),
    (13, "Disputed",
     ("Customer has initiated a dispute resolution process for the PayPal transaction"
      " that paid for the order."), 12),
    (14, "Partially Refunded",
     "Seller has partially refunded the order.", 14),
)
#: First id of each kind in a store: distinct ranges, so that a product id used as a variant id
#: (or an order-product id used as a product id) finds nothing instead of the wrong object.
FIRST_IDS = {"product": 111, "variant": 2001, "sku": 501, "order": 100, "line": 3001,
             "address": 4001, "shipment": 1, "option_value": 61, "hook": 18048287}
STATUS_LABELS = {status_id: label for status_id, label, _, _ in ORDER_STATUSES}


@dataclass
class ApiAccount:
    """A store-level API account or an app's per-store token: one client id, one token."""

    store_hash: str
    client_id: str
    client_secret: str
    access_token: str
    scopes: frozenset[str]
    kind: str = "store"  # "store" | "app"


@dataclass
class App:
    client_id: str
    client_secret: str
    auth_callback_url: str
    load_callback_url: str
    uninstall_callback_url: str
    remove_user_callback_url: str | None
    scopes: tuple[str, ...]
    account_uuid: str


@dataclass
class InstallCode:
    code: str
    client_id: str
    store_hash: str
    expires_at: float
    used: bool = False


@dataclass
class Variant:
    id: int
    product_id: int
    sku: str
    #: None for a base variant (the only variant of a simple product).
    sku_id: int | None
    option_values: list[dict[str, Any]]
    price: Decimal | None = None
    inventory: dict[int, int] = field(default_factory=dict)
    #: True once an absolute level was set (creation with stock, or an absolute adjustment).
    seeded: bool = False


@dataclass
class Product:
    id: int
    name: str
    type: str  # "physical" | "digital"
    sku: str
    price: Decimal
    inventory_tracking: str  # "none" | "product" | "variant"
    created: float
    modified: float
    variants: list[Variant] = field(default_factory=list)
    inventory: dict[int, int] = field(default_factory=dict)
    seeded: bool = False

    @property
    def base_variant(self) -> Variant | None:
        return self.variants[0] if len(self.variants) == 1 and self.variants[0].sku_id is None else None


@dataclass
class OrderLine:
    id: int
    order_id: int
    product_id: int
    variant_id: int | None
    name: str
    sku: str
    type: str  # "physical" | "digital" | "giftcertificate"
    quantity: int
    base_price: Decimal
    order_address_id: int
    parent_order_product_id: int | None = None
    is_bundled_product: bool = False
    product_options: list[dict[str, Any]] = field(default_factory=list)
    recipient_email: str = ""
    quantity_shipped: int = 0


@dataclass
class ShippingAddress:
    id: int
    order_id: int
    fields: dict[str, str]
    shipping_method: str
    base_cost: Decimal


@dataclass
class Shipment:
    id: int
    order_id: int
    order_address_id: int
    created: float
    tracking_number: str
    tracking_link: str
    merchant_shipping_cost: Decimal
    shipping_method: str
    shipping_provider: str
    tracking_carrier: str
    comments: str
    #: ``(order_product_id, product_id, quantity)``
    items: list[tuple[int, int, int]]


@dataclass
class Order:
    id: int
    status_id: int
    created: float
    modified: float
    billing_address: dict[str, str]
    customer_message: str
    cart_id: str
    lines: list[OrderLine] = field(default_factory=list)
    addresses: list[ShippingAddress] = field(default_factory=list)
    shipments: list[Shipment] = field(default_factory=list)
    shipped: float | None = None
    staff_notes: str = ""
    external_order_id: str = ""
    is_deleted: bool = False
    #: ``(unix time, status id)`` of every status the order has had, oldest first.
    status_history: list[tuple[float, int]] = field(default_factory=list)

    def line(self, line_id: int) -> OrderLine | None:
        return next((line for line in self.lines if line.id == line_id), None)

    def address(self, address_id: int) -> ShippingAddress | None:
        return next((address for address in self.addresses if address.id == address_id), None)


@dataclass
class Hook:
    id: int
    client_id: str
    store_hash: str
    scope: str
    destination: str
    is_active: bool
    headers: dict[str, str] | None
    created_at: int
    updated_at: int


@dataclass
class Store:
    hash: str
    store_id: int
    name: str
    plan: str
    created: float
    account_uuid: str
    quota: int | None
    window_ms: int = DEFAULT_WINDOW_MS
    custom_labels: dict[int, str] = field(default_factory=lambda: dict(STATUS_LABELS))
    accounts: dict[str, ApiAccount] = field(default_factory=dict)
    products: dict[int, Product] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    hooks: dict[int, Hook] = field(default_factory=dict)
    #: Absolute or relative writes that hit items with inventory tracking "none".
    untracked_inventory_writes: int = 0
    #: Ids of orders deleted for good (``purge_order``): they answer 404.
    purged_orders: list[int] = field(default_factory=list)
    _ids: dict[str, Iterator[int]] = field(default_factory=dict)
    #: Indexes of the catalog: variant id / SKU → (product id, variant id).
    _variants: dict[int, tuple[int, int]] = field(default_factory=dict)
    _skus: dict[str, tuple[int, int]] = field(default_factory=dict)

    def next_id(self, kind: str) -> int:
        if kind not in self._ids:
            self._ids[kind] = itertools.count(FIRST_IDS[kind])
        return next(self._ids[kind])

    def order(self, order_id: int) -> Order | None:
        return self.orders.get(order_id)

    def add_product(self, product: Product) -> None:
        self.products[product.id] = product
        for variant in product.variants:
            self._variants[variant.id] = (product.id, variant.id)
            if variant.sku:
                self._skus[variant.sku] = (product.id, variant.id)

    def variant(self, variant_id: int) -> tuple[Product, Variant] | None:
        return self._resolve(self._variants.get(variant_id))

    def variant_by_sku(self, sku: str) -> tuple[Product, Variant] | None:
        """The variant (a simple product's base variant included) whose SKU is ``sku``."""
        return self._resolve(self._skus.get(sku)) if sku else None

    def _resolve(self, ids: tuple[int, int] | None) -> tuple[Product, Variant] | None:
        if ids is None:
            return None
        product = self.products[ids[0]]
        return product, next(v for v in product.variants if v.id == ids[1])


class SandboxState:
    """All stores and apps of one sandbox, and the one lock that guards them."""

    def __init__(self, seed: int = 0) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.stores: dict[str, Store] = {}
        self.apps: dict[str, App] = {}
        self.codes: dict[str, InstallCode] = {}
        self.tokens: dict[str, ApiAccount] = {}
        self._store_ids = itertools.count(1001197568)

    def store(self, store_hash: str) -> Store:
        store = self.stores.get(store_hash)
        if store is None:
            raise UnknownObject(f"no sandbox store with hash {store_hash!r}; create it first "
                                f"(create_store / POST /_sandbox/stores)")
        return store

    def new_store_hash(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            candidate = "".join(self.rng.choice(alphabet) for _ in range(10))
            if candidate not in self.stores:
                return candidate

    def next_store_id(self) -> int:
        return next(self._store_ids)

    def add_account(self, account: ApiAccount) -> None:
        """Give ``account`` its store's slot for its client id (a new token replaces the old
        one, which stops working, as a re-issued app token does)."""
        store = self.store(account.store_hash)
        self.remove_account(account.store_hash, account.client_id)
        store.accounts[account.client_id] = account
        self.tokens[account.access_token] = account

    def remove_account(self, store_hash: str, client_id: str) -> ApiAccount | None:
        old = self.store(store_hash).accounts.pop(client_id, None)
        if old is not None:
            self.tokens.pop(old.access_token, None)
        return old


def now() -> float:
    return time.time()
