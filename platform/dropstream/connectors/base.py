"""The connector contract: the base classes a storefront or warehouse connector implements.

A connector *class* is registered once per app through the ``register_connectors`` hook. For each
piece of work the core builds an *instance* bound to one store or warehouse row through a
:class:`ConnectorContext` (its validated settings and decrypted credentials) and calls it
directly; pluggy is not involved in per-tenant dispatch.

Connectors raise the errors below and nothing else for remote failures, so the pipeline can tell
"try again later" (:class:`TransientError`) from "a person must act" (:class:`AuthError`,
:class:`RejectedError`) without knowing the remote system.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from marshmallow import Schema

from dropstream.connectors.types import (
    CancelOutcome,
    FulfillmentData,
    FulfillmentResult,
    InventoryResult,
    InventoryUpdate,
    OrderData,
    OrderPage,
    OrderStatusChoice,
    SetupCheck,
    ShipmentPage,
    ShipMethod,
    StockSnapshot,
    UnreadableOrder,
    WarehouseOrder,
    WarehouseOrderAck,
)


class ConnectorRole(str, enum.Enum):
    STOREFRONT = "storefront"
    WAREHOUSE = "warehouse"


class Capability(str, enum.Enum):
    IMPORT_ORDERS = "import_orders"
    MARK_ORDER_STATUS = "mark_order_status"
    POST_FULFILLMENT = "post_fulfillment"
    PUSH_INVENTORY = "push_inventory"
    FORWARD_ORDERS = "forward_orders"
    CANCEL_ORDERS = "cancel_orders"
    FETCH_SHIPMENTS = "fetch_shipments"
    FETCH_INVENTORY = "fetch_inventory"
    SHIP_METHODS = "ship_methods"


class ConnectorError(Exception):
    """Base of every error a connector raises about the remote system.

    ``message`` must be safe to show an operator and store on an order's timeline: it never
    contains a credential (connectors pass remote messages through :func:`redact` first).
    """

    code = "remote_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 remote_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.field = field
        self.remote_status = remote_status


class TransientError(ConnectorError):
    """Timeouts, connection failures, 5xx, 429: retried with backoff (``retry_after`` seconds
    is honoured when the remote said how long to wait)."""

    code = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


#: Answers that say the remote is down or overloaded, not that this request is wrong.
_UNAVAILABLE = frozenset({502, 503, 504})


def means_unreachable(error: Exception) -> bool:
    """Whether ``error`` says the remote could not be reached at all: no connection, no answer
    in time, or a 502/503/504. An outage, which says nothing about the request itself (a 500 or
    a malformed reply might: those are not counted)."""
    if not isinstance(error, TransientError):
        return False
    if error.remote_status is None:
        return error.code in ("connection_failed", "timeout")
    return error.remote_status in _UNAVAILABLE


class AuthError(ConnectorError):
    """Credentials are invalid, revoked, or lack a permission: the store or warehouse is paused
    and flagged, never hammered."""

    code = "auth_failed"


class RejectedError(ConnectorError):
    """The remote system refused the request on its merits (validation, unknown SKU, …).

    ``code`` should be one of the hold/error codes the core knows (``unknown_sku``,
    ``invalid_address``, …) when the refusal maps to one, so the order is held with a fix.
    """

    code = "rejected"


class UnreadableOrderError(ConnectorError):
    """``fetch_order`` read an order but could not turn it into :class:`OrderData`."""

    code = "unreadable_order"

    def __init__(self, order: UnreadableOrder) -> None:
        super().__init__(f"order {order.external_id} could not be read: {order.error}")
        self.order = order


class RemoteNotFound(ConnectorError):
    """The remote object no longer exists (e.g. the store order was deleted)."""

    code = "remote_not_found"


@dataclass
class ConnectorContext:
    """What a connector instance is bound to. Built by the core; connectors only read it."""

    connector_id: str
    owner_id: int
    settings: dict[str, Any]
    credentials: dict[str, Any]
    #: Settings of the store's link to its warehouse (warehouse connectors only).
    account: dict[str, Any] = field(default_factory=dict)
    #: Persist refreshed credentials (e.g. a re-issued OAuth token); encrypted by the core.
    save_credentials: Callable[[dict[str, Any]], None] | None = None
    public_base_url: str = ""
    #: Storefront connectors: of the given shipping methods (as the store names them), those no
    #: shipping rule of the store maps, for a set-up check. Built by the core.
    unmapped_shipping_methods: Callable[[Sequence[str]], list[str]] | None = None


class Connector:
    """Common to both roles. Subclasses set the class attributes and implement the methods of
    their role; unsupported operations stay unimplemented and are left out of ``capabilities``."""

    #: Stable id stored on rows (e.g. ``"bigcommerce"``); never change it once released.
    id: ClassVar[str]
    #: Human name for the console.
    name: ClassVar[str]
    role: ClassVar[ConnectorRole]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: Non-secret settings, validated on save and rendered as a form.
    settings_schema: ClassVar[type[Schema]]
    #: Secret fields; write-only through the API, encrypted at rest.
    credentials_schema: ClassVar[type[Schema]]
    #: Settings of a store's link to a warehouse of this connector (warehouse connectors).
    account_schema: ClassVar[type[Schema] | None] = None

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    @classmethod
    def external_id_from_credentials(cls, credentials: dict[str, Any]) -> str | None:
        """The store's id at its platform when its credentials name it (BigCommerce: the store
        hash). The core keeps it as the store's ``external_id`` (unique per connector), which is
        how inbound webhooks find the store. None: the credentials do not say."""
        return None

    def setup_checks(self) -> Sequence[SetupCheck]:
        """Check credentials, permissions and configuration against the remote system.

        Each check says pass/fail and the fix in words. Must not change remote state except to
        repair DropStream's own registration (e.g. re-enable its webhooks).
        """
        raise NotImplementedError


class StorefrontConnector(Connector):
    role = ConnectorRole.STOREFRONT
    #: The settings field holding the store status DropStream imports orders at, when the store
    #: chooses it (the console's set-up wizard offers :meth:`order_statuses` for it).
    monitored_status_setting: ClassVar[str | None] = None
    #: The Flask endpoint (in the connector's blueprint) that starts its app-install (OAuth)
    #: flow, when it offers one: the console's set-up wizard shows "Install app" linking there.
    install_endpoint: ClassVar[str | None] = None

    def order_statuses(self) -> list[OrderStatusChoice]:
        """Optional: the store's own order statuses, read from the store (custom labels
        included), for choosing the monitored status. Leave unimplemented if the store has no
        such list; the wizard then asks for the code as text.

        :raises AuthError: credentials need a person. :raises TransientError: retry later.
        """
        raise NotImplementedError

    def fetch_orders(self, cursor: str | None) -> OrderPage:
        """Orders at the store's monitored status changed since ``cursor`` (None: the
        configured backfill start), and cancelled orders (``cancelled=True``) so cancellations
        are seen. Pages may overlap earlier ones; the core de-duplicates. An order that cannot
        be mapped goes into ``OrderPage.unreadable``; it must never fail the page.

        :raises TransientError: retry later. :raises AuthError: credentials need a person.
        """
        raise NotImplementedError

    def fetch_order(self, external_id: str) -> OrderData | None:
        """One order, read completely (every page of lines) or not at all.

        :returns: the order, or ``None`` if it is not at the monitored status (the core then
            leaves it alone unless it was already imported, e.g. to see a cancellation).
        :raises RemoteNotFound: the order no longer exists.
        :raises UnreadableOrderError: the order exists but its data cannot be mapped.
        """
        raise NotImplementedError

    def fetch_orders_by_id(
        self, external_ids: Sequence[str]
    ) -> Mapping[str, OrderData | UnreadableOrder | None]:
        """Optional: several orders at once, where the store's API can read them in fewer
        calls than one each (the core asks when re-reads of a store's orders queue up, as in a
        flash sale). Each order returned is what :meth:`fetch_order` would return for it, or
        an :class:`UnreadableOrder` where it would raise :class:`UnreadableOrderError`.

        Orders left out are read one by one with :meth:`fetch_order`, which also tells which
        no longer exist: leave out anything not read here, completely. The default reads
        nothing here.

        :raises TransientError: retry later. :raises AuthError: credentials need a person.
        """
        return {}

    def mark_order_status(self, external_id: str, status: str) -> None:
        """Move the store's order to the store status configured for DropStream's ``status``
        (``"sent"``: accepted by the warehouse). Idempotent."""
        raise NotImplementedError

    def post_fulfillment(self, fulfillment: FulfillmentData) -> FulfillmentResult:
        """Create the shipment in the store (tracking, carrier, lines).

        Must be idempotent by ``fulfillment.key``: when an earlier attempt's outcome was lost,
        find the shipment it made and return it with ``created=False`` instead of posting again.
        """
        raise NotImplementedError

    def push_inventory(self, updates: Sequence[InventoryUpdate]) -> list[InventoryResult]:
        """Set available quantities (absolute). One result per update: pushed, or skipped/failed
        with a reason code (``tracking_off``, ``unknown_sku``) — never silently dropped."""
        raise NotImplementedError


class WarehouseConnector(Connector):
    role = ConnectorRole.WAREHOUSE

    def forward_order(self, order: WarehouseOrder) -> WarehouseOrderAck:
        """Create the order at the warehouse, idempotently by ``order.reference``.

        A retry after an ambiguous failure must look the reference up before creating, so an
        order reaches the warehouse exactly once.
        """
        raise NotImplementedError

    def forward_batch_limit(self) -> int:
        """How many orders :meth:`forward_orders` takes in one call; 1 (the default): the
        warehouse takes one order a call, and the core sends each with :meth:`forward_order`."""
        return 1

    def forward_orders(
        self, orders: Sequence[WarehouseOrder]
    ) -> list[WarehouseOrderAck | RejectedError]:
        """Optional (with :meth:`forward_batch_limit` over 1): create several orders in one
        call, each exactly as :meth:`forward_order` would, idempotently by its reference. The
        core asks when forwards queue up for a store (as in a flash sale).

        :returns: one result per order, in the order given: its acknowledgement, or the
            :class:`RejectedError` :meth:`forward_order` would have raised for it alone.
        :raises TransientError: the call as a whole failed, its outcome unknown: the core sends
            each order again later, and the warehouse must then answer a reference it took with
            the order it made (so a batch connector needs a warehouse that de-duplicates
            references, or must look each one up first).
        :raises AuthError: credentials need a person.
        """
        raise NotImplementedError

    def cancel_order(self, reference: str, warehouse_order_id: str | None) -> CancelOutcome:
        """Cancel a forwarded order; ``TOO_LATE`` once it has shipped."""
        raise NotImplementedError

    def fetch_shipments(self, cursor: str | None) -> ShipmentPage:
        """Shipments confirmed since ``cursor`` for this account. Pages may overlap."""
        raise NotImplementedError

    def fetch_inventory(self, cursor: str | None, full: bool = False) -> StockSnapshot:
        """Stock levels: changes since ``cursor``, or the whole snapshot when ``full``."""
        raise NotImplementedError

    def ship_methods(self) -> list[ShipMethod]:
        """The warehouse's ship-method codes, for the shipping-rules editor."""
        raise NotImplementedError


ConnectorClass = type[StorefrontConnector] | type[WarehouseConnector]


def redact(text: str, secrets: Sequence[str]) -> str:
    """Remove every given secret value from ``text`` (for remote messages and logs)."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return text
