"""The BigCommerce storefront connector: the contract's methods, each over one API client.

The work itself lives next door, one module per flow (:mod:`.importing`, :mod:`.shipments`,
:mod:`.inventory`, :mod:`.setup_checks`); this class binds them to one store's settings and
credentials and makes sure every client it opens is closed again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from flask import current_app

from dropstream.connectors.base import AuthError, Capability, StorefrontConnector
from dropstream.connectors.types import (
    FulfillmentData,
    FulfillmentResult,
    InventoryResult,
    InventoryUpdate,
    OrderData,
    OrderPage,
    OrderStatusChoice,
    SetupCheck,
    UnreadableOrder,
)
from dropstream.net.outbound import app_policy, shared_session
from dropstream_bigcommerce import hooks, importing, inventory, setup_checks, shipments
from dropstream_bigcommerce.client import RETRY_DELAYS, BigCommerceClient
from dropstream_bigcommerce.runtime import runtime
from dropstream_bigcommerce.schemas import (
    AWAITING_FULFILLMENT,
    AWAITING_SHIPMENT,
    DEFAULT_API_BASE_URL,
    BigCommerceCredentials,
    BigCommerceSettings,
)

#: The header BigCommerce echoes on every webhook it sends us (set when the hook is made).
WEBHOOK_SECRET_HEADER = "X-DropStream-Webhook-Secret"


class BigCommerceConnector(StorefrontConnector):
    """A BigCommerce store, through a store-level API account or the installed app's token.

    Settings: :class:`~.schemas.BigCommerceSettings`. Credentials (write-only):
    :class:`~.schemas.BigCommerceCredentials`, plus what DropStream adds itself — the per-store
    webhook secret, and for app installs the granted scopes and installing user.
    """

    id = "bigcommerce"
    name = "BigCommerce"
    capabilities = frozenset(
        {
            Capability.IMPORT_ORDERS,
            Capability.MARK_ORDER_STATUS,
            Capability.POST_FULFILLMENT,
            Capability.PUSH_INVENTORY,
        }
    )
    settings_schema = BigCommerceSettings
    credentials_schema = BigCommerceCredentials
    monitored_status_setting: ClassVar[str | None] = "monitored_status_id"
    install_endpoint: ClassVar[str | None] = "bigcommerce.install"
    WEBHOOK_SECRET_HEADER = WEBHOOK_SECRET_HEADER
    _new_secret: str | None = None

    @classmethod
    def external_id_from_credentials(cls, credentials: dict[str, Any]) -> str | None:
        """The store hash: DropStream's id for the store, and how webhooks find it."""
        return credentials.get("store_hash") or None

    # -- configuration ---------------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        settings = {
            "api_base_url": DEFAULT_API_BASE_URL,
            "monitored_status_id": AWAITING_FULFILLMENT,
            "sent_status_id": AWAITING_SHIPMENT,
            "backfill_from": None,
            "location_id": 1,
            "carrier_map": {},
            **(self.context.settings or {}),
        }
        for key in ("monitored_status_id", "sent_status_id", "location_id"):
            if isinstance(settings[key], str) and settings[key].isdigit():
                settings[key] = int(settings[key])  # stored by an older form as text
        return settings

    @property
    def store_hash(self) -> str:
        return str(self.context.credentials.get("store_hash") or "")

    @contextmanager
    def client(self) -> Iterator[BigCommerceClient]:
        credentials = self.context.credentials
        if not credentials.get("store_hash") or not credentials.get("access_token"):
            raise AuthError(
                "The store has no BigCommerce access token: enter the API account's "
                "credentials, or install the DropStream app from the store.",
                code="no_credentials",
            )
        # The thread's shared session: its connection to the API stays open between jobs.
        yield BigCommerceClient(
            self.settings["api_base_url"],
            credentials["store_hash"],
            credentials["access_token"],
            session=shared_session(app_policy()),
            limiter=runtime().limiter,
            retry_delays=current_app.config.get("BIGCOMMERCE_RETRY_DELAYS", RETRY_DELAYS),
        )

    def webhook_secret(self) -> str:
        """The store's webhook secret, made (and saved with its credentials) on first use."""
        secret = self.context.credentials.get("webhook_secret") or self._new_secret
        if not secret:
            secret = self._new_secret = secrets.token_urlsafe(32)
            if self.context.save_credentials is not None:
                self.context.save_credentials(
                    {**self.context.credentials, "webhook_secret": secret}
                )
        return str(secret)

    def webhook_url(self) -> str:
        return f"{self.context.public_base_url.rstrip('/')}{hooks.PATH}"

    # -- the contract ----------------------------------------------------------------------------

    def setup_checks(self) -> Sequence[SetupCheck]:
        return setup_checks.run(self)

    def order_statuses(self) -> list[OrderStatusChoice]:
        with self.client() as client:
            return [
                OrderStatusChoice(str(status_id), label)
                for status_id, label in setup_checks.order_statuses(client)
            ]

    def fetch_orders(self, cursor: str | None) -> OrderPage:
        with self.client() as client:
            return importing.fetch_orders(
                client, self.settings, cursor, self, runtime().status_checks
            )

    def fetch_order(self, external_id: str) -> OrderData | None:
        with self.client() as client:
            return importing.fetch_order(client, self.settings, external_id)

    def fetch_orders_by_id(
        self, external_ids: Sequence[str]
    ) -> dict[str, OrderData | UnreadableOrder | None]:
        with self.client() as client:
            return importing.fetch_orders_by_id(client, self.settings, external_ids)

    def mark_order_status(self, external_id: str, status: str) -> None:
        if status != "sent":
            raise ValueError(f"BigCommerce stores have no status for {status!r}")
        sent = self.settings.get("sent_status_id")
        if not sent:
            return  # the store chose to keep its own status: nothing to do, nothing called
        with self.client() as client:
            importing.set_status(client, external_id, int(sent))

    def post_fulfillment(self, fulfillment: FulfillmentData) -> FulfillmentResult:
        with self.client() as client:
            return shipments.post(client, self.settings, fulfillment, runtime().status_checks)

    def push_inventory(self, updates: Sequence[InventoryUpdate]) -> list[InventoryResult]:
        with self.client() as client:
            return inventory.push(client, runtime().catalog, self.settings, updates)
