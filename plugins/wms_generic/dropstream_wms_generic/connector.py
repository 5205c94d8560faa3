"""The generic WMS warehouse connector: DropStream's side of the protocol in PROTOCOL.md.

One instance serves one warehouse connection (and, for order work, one store's account at it).
Orders go out idempotently by reference: the WMS is asked for the reference first when it does
not de-duplicate by itself (``dedupes_references: false``), and after any failure whose outcome
is unknown (a timeout, a reset, a 5xx), so a lost reply never makes a second warehouse order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from flask import has_app_context
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    missing,
    validate,
    validates,
    validates_schema,
)

from dropstream.connectors.base import (
    AuthError,
    Capability,
    ConnectorError,
    RejectedError,
    RemoteNotFound,
    TransientError,
    WarehouseConnector,
)
from dropstream.connectors.types import (
    CancelOutcome,
    SetupCheck,
    ShipmentPage,
    ShipMethod,
    StockSnapshot,
    WarehouseOrder,
    WarehouseOrderAck,
)
from dropstream.net.outbound import OutboundPolicy, UnsafeURL, app_policy
from dropstream_wms_generic import protocol
from dropstream_wms_generic.client import Auth, WmsClient, path_segment

CONNECTOR_ID = "wms_generic"
ACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HEADER_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")
#: The most orders one ``POST /v1/orders/batch`` carries (the protocol's limit).
BATCH_LIMIT = 100
#: Marks an inventory cursor that is part-way through a paged full snapshot.
SNAPSHOT_CURSOR = "snapshot"


def current_policy(**overrides: Any) -> OutboundPolicy:
    """The app's outbound policy (loopback sandboxes only where the app allows them)."""
    return app_policy(**overrides) if has_app_context() else OutboundPolicy(**overrides)


class ShipMethodSettings(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=120))
    name = fields.String(load_default="", validate=validate.Length(max=255))
    carrier = fields.String(load_default="", validate=validate.Length(max=120))


class WmsSettings(Schema):
    base_url = fields.String(
        required=True,
        validate=validate.Length(min=8, max=500),
        metadata={
            "description": "The WMS's protocol address, e.g. https://wms.example.com/dropstream "
            "(requests go to <base_url>/v1/…)."
        },
    )
    auth_mode = fields.String(
        load_default="bearer", validate=validate.OneOf(["bearer", "basic", "api_key"])
    )
    api_key_header = fields.String(
        load_default="X-API-Key",
        metadata={"description": "Header carrying credentials.api_key when auth_mode is api_key."},
    )
    dedupes_references = fields.Boolean(
        load_default=True,
        metadata={
            "description": "False when the WMS would accept the same reference twice: DropStream "
            "then looks every order up before creating it."
        },
    )
    batch_create = fields.Boolean(
        load_default=False,
        metadata={
            "description": "True when the WMS takes POST /v1/orders/batch: orders that queue up "
            "for a store go in one call (up to 100). Used only where the WMS de-duplicates "
            "references."
        },
    )
    default_account = fields.String(
        load_default="",
        metadata={"description": "Customer code used for stores whose link sets none."},
    )
    shipments_page_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    stock_page_size = fields.Integer(load_default=500, validate=validate.Range(min=1, max=1000))
    timeout_seconds = fields.Float(load_default=30.0, validate=validate.Range(min=1, max=120))
    ship_methods_endpoint = fields.Boolean(
        load_default=True,
        metadata={
            "description": "False for a WMS without GET /v1/ship-methods: ship_methods below is "
            "the catalogue instead."
        },
    )
    ship_methods = fields.List(
        fields.Nested(ShipMethodSettings), load_default=list, validate=validate.Length(max=1000)
    )

    @validates("base_url")
    def _safe_url(self, value: str, **_: Any) -> None:
        # Refused on entry, not at the first order: an unsafe address never gets stored.
        try:
            current_policy().check_url(value)
        except UnsafeURL as error:
            raise ValidationError(f"{error}.") from None
        if "?" in value or "#" in value:
            raise ValidationError("Give the base address only, without ?query or #fragment.")

    @validates("api_key_header")
    def _header(self, value: str, **_: Any) -> None:
        if not HEADER_PATTERN.match(value) or value.lower() in (
            "host",
            "content-type",
            "content-length",
        ):
            raise ValidationError("Use an HTTP header name such as X-API-Key.")

    @validates("default_account")
    def _account(self, value: str, **_: Any) -> None:
        if value and not ACCOUNT_PATTERN.match(value):
            raise ValidationError("Letters, digits, '.', '_' and '-' only (at most 64).")


def _secret(**kwargs: Any) -> fields.String:
    return fields.String(load_only=True, validate=validate.Length(min=1, max=500), **kwargs)


class WmsCredentials(Schema):
    token = _secret(metadata={"description": "auth_mode bearer"})
    username = _secret(metadata={"description": "auth_mode basic"})
    password = _secret(metadata={"description": "auth_mode basic"})
    api_key = _secret(metadata={"description": "auth_mode api_key"})
    inbound_key = fields.String(
        load_only=True,
        validate=validate.Length(min=16, max=200),
        metadata={
            "description": "Sent by the WMS in X-DropStream-Key when it pushes (16+ characters)."
        },
    )
    signing_secret = fields.String(
        load_only=True,
        validate=validate.Length(min=32, max=500),
        metadata={"description": "Signs the WMS's pushes (HMAC-SHA256; at least 32 characters)."},
    )

    @validates_schema
    def _something_to_send(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("token") or data.get("username") or data.get("api_key")):
            raise ValidationError(
                "Give token (bearer), username and password (basic) or api_key.", field_name="token"
            )
        if bool(data.get("inbound_key")) != bool(data.get("signing_secret")):
            raise ValidationError(
                "Pushes need both inbound_key and signing_secret (or neither).",
                field_name="signing_secret",
            )


class WmsAccount(Schema):
    customer_code = fields.String(
        load_default="",
        metadata={
            "description": "The merchant's customer code (account) at the WMS; empty: the "
            "warehouse's default_account."
        },
    )

    @validates("customer_code")
    def _code(self, value: str, **_: Any) -> None:
        if value and not ACCOUNT_PATTERN.match(value):
            raise ValidationError("Letters, digits, '.', '_' and '-' only (at most 64).")


def _defaults(schema: type[Schema]) -> dict[str, Any]:
    result = {}
    for name, field in schema._declared_fields.items():
        default = field.load_default
        if default is not missing:
            result[name] = default() if callable(default) else default
    return result


class GenericWmsConnector(WarehouseConnector):
    """Any WMS that speaks DropStream's generic protocol (PROTOCOL.md), polled or pushing."""

    id = CONNECTOR_ID
    name = "Generic WMS (DropStream protocol v1)"
    capabilities = frozenset(
        {
            Capability.FORWARD_ORDERS,
            Capability.CANCEL_ORDERS,
            Capability.FETCH_SHIPMENTS,
            Capability.FETCH_INVENTORY,
            Capability.SHIP_METHODS,
        }
    )
    settings_schema = WmsSettings
    credentials_schema = WmsCredentials
    account_schema = WmsAccount

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        # Rows saved through the services are validated already; the defaults fill settings
        # added after a row was saved.
        return {**_defaults(WmsSettings), **self.context.settings}

    def client(self) -> WmsClient:
        settings, credentials = self.settings, self.context.credentials
        auth = Auth(
            mode=settings["auth_mode"],
            token=credentials.get("token", ""),
            username=credentials.get("username", ""),
            password=credentials.get("password", ""),
            api_key=credentials.get("api_key", ""),
            api_key_header=settings["api_key_header"],
        )
        timeout = float(settings["timeout_seconds"])
        return WmsClient(
            settings["base_url"],
            auth,
            current_policy(read_timeout=timeout, connect_timeout=min(timeout, 10.0)),
        )

    def account(self) -> str:
        """The store's customer code at the WMS, else the warehouse's default.

        :raises RejectedError: neither is set (a person must link the account).
        """
        code = (self.context.account or {}).get("customer_code") or self.settings["default_account"]
        if not code:
            raise RejectedError(
                "No WMS account: set warehouse_account.customer_code on the store "
                "(or settings.default_account on the warehouse).",
                code="no_account",
                field="warehouse_account.customer_code",
            )
        return str(code)

    # -- orders ---------------------------------------------------------------------------------

    def forward_order(self, order: WarehouseOrder) -> WarehouseOrderAck:
        account = self.account()
        document = protocol.order_document(order, account)
        try:
            protocol.validate("order", document)
        except protocol.ProtocolError as error:
            raise _unsendable(error) from None
        client = self.client()
        if not self.settings["dedupes_references"]:
            found = self._find(client, account, order.reference)
            if found is not None:
                return WarehouseOrderAck(order.reference, found, created=False)
        try:
            status, ack = client.post("orders", "order-ack", document)
        except TransientError:
            # The WMS may have stored the order and only the reply was lost: look before the
            # retry creates, so the order exists once whatever happened.
            try:
                found = self._find(client, account, order.reference)
            except ConnectorError:
                found = None
            if found is not None:
                return WarehouseOrderAck(order.reference, found, created=False)
            raise
        if ack["reference"] != order.reference:
            raise TransientError(
                f"The WMS acknowledged reference {ack['reference']!r} for {order.reference!r}",
                code="malformed_response",
            )
        return WarehouseOrderAck(order.reference, ack["id"], created=status == 201)

    def forward_batch_limit(self) -> int:
        # A batch's lost reply leaves each of its orders to be sent again on its own: safe only
        # where a repeated reference returns the order made (a WMS that would make a second one
        # has each order looked up first, one call each, which a batch would not save).
        settings = self.settings
        return BATCH_LIMIT if settings["batch_create"] and settings["dedupes_references"] else 1

    def forward_orders(
        self, orders: Sequence[WarehouseOrder]
    ) -> list[WarehouseOrderAck | RejectedError]:
        account = self.account()
        results: list[WarehouseOrderAck | RejectedError | None] = []
        documents = []
        for order in orders:
            document = protocol.order_document(order, account)
            try:
                protocol.validate("order", document)
            except protocol.ProtocolError as error:
                results.append(_unsendable(error))
                continue
            results.append(None)
            documents.append(document)
        if documents:
            client = self.client()
            _, reply = client.post("orders/batch", "order-batch-result", {"orders": documents})
            answers = iter(_batch_answers(client, reply, documents))
            results = [result if result is not None else next(answers) for result in results]
        return results  # type: ignore[return-value]

    def _find(self, client: WmsClient, account: str, reference: str) -> str | None:
        """The WMS's id for ``reference`` (the oldest live one), or None."""
        _, found = client.get("orders", "order-list", {"account": account, "reference": reference})
        live = [
            item
            for item in found["items"]
            if item["reference"] == reference and item["status"] != "cancelled"
        ]
        return live[0]["id"] if live else None

    def cancel_order(self, reference: str, warehouse_order_id: str | None) -> CancelOutcome:
        client = self.client()
        if not warehouse_order_id:
            warehouse_order_id = self._find(client, self.account(), reference)
            if warehouse_order_id is None:
                return CancelOutcome.NOT_FOUND
        try:
            client.post(f"orders/{path_segment(warehouse_order_id)}/cancel", "order-ack")
        except RemoteNotFound:
            return CancelOutcome.NOT_FOUND
        except RejectedError as error:
            if error.code == "already_shipped":
                return CancelOutcome.TOO_LATE
            raise
        return CancelOutcome.CANCELLED

    # -- shipments and stock ---------------------------------------------------------------------

    def fetch_shipments(self, cursor: str | None) -> ShipmentPage:
        params: dict[str, Any] = {
            "account": self.account(),
            "limit": self.settings["shipments_page_size"],
        }
        if cursor:
            params["cursor"] = cursor
        _, page = self.client().get("shipments", "shipment-page", params)
        return ShipmentPage(
            tuple(protocol.shipment_from(item) for item in page["items"]),
            page["next_cursor"],
            more=page["has_more"],
        )

    def fetch_inventory(self, cursor: str | None, full: bool = False) -> StockSnapshot:
        """Changes since ``cursor``, or a full snapshot page by page. A cursor handed out in the
        middle of a full snapshot continues it; the last page's cursor is the change feed's
        position as of the snapshot, so nothing between the two is missed."""
        params: dict[str, Any] = {
            "account": self.account(),
            "limit": self.settings["stock_page_size"],
        }
        client = self.client()
        parts = (cursor or "").split(" ")
        if parts[0] == SNAPSHOT_CURSOR and len(parts) == 3:
            full, params["cursor"], changes = True, parts[1], parts[2]
        elif full or not cursor:
            full, changes = True, ""
        else:
            params["cursor"] = cursor
        if not full:
            _, page = client.get("stock/changes", "stock-snapshot", params)
            return StockSnapshot(
                protocol.stock_levels_from(page),
                page.get("next_cursor") or cursor,
                complete=False,
                more=bool(page.get("has_more")),
            )
        _, page = client.get("stock", "stock-snapshot", params)
        changes = changes or page.get("changes_cursor") or ""
        more = bool(page.get("has_more")) and bool(page.get("next_cursor"))
        next_cursor = (
            f"{SNAPSHOT_CURSOR} {page['next_cursor']} {changes}" if more else (changes or None)
        )
        return StockSnapshot(
            protocol.stock_levels_from(page), next_cursor, complete=True, more=more
        )

    def ship_methods(self) -> list[ShipMethod]:
        settings = self.settings
        if not settings["ship_methods_endpoint"]:
            return [
                ShipMethod(m["code"], m.get("name", ""), m.get("carrier", ""))
                for m in settings["ship_methods"]
            ]
        _, catalogue = self.client().get("ship-methods", "ship-methods")
        return protocol.ship_methods_from(catalogue)

    # -- set-up ---------------------------------------------------------------------------------

    def setup_checks(self) -> list[SetupCheck]:
        title = "The WMS accepts the credentials"
        try:
            self.client().get("ship-methods", "ship-methods")
            checks = [
                SetupCheck("credentials", title, True, "The WMS answered with its ship methods.")
            ]
        except RemoteNotFound:
            # A WMS without the catalogue endpoint still answered, and accepted the credentials.
            checks = [
                SetupCheck(
                    "credentials",
                    title,
                    True,
                    "The WMS answered (it has no ship-method catalogue).",
                )
            ]
        except AuthError as error:
            return [
                SetupCheck(
                    "credentials",
                    title,
                    False,
                    error.message,
                    "Enter the credentials the WMS issued for DropStream and pick the "
                    "matching auth mode (bearer, basic or API key).",
                )
            ]
        except ConnectorError as error:
            return [
                SetupCheck(
                    "reachable",
                    "The WMS answers",
                    False,
                    error.message,
                    "Check settings.base_url and that the WMS is up; it must serve "
                    "the protocol under <base_url>/v1/.",
                )
            ]
        account = (self.context.account or {}).get("customer_code") or self.settings[
            "default_account"
        ]
        if account:
            checks.append(self._account_check(str(account)))
        return checks

    def _account_check(self, account: str) -> SetupCheck:
        title = f"The WMS knows account {account}"
        try:
            self.client().get("shipments", "shipment-page", {"account": account, "limit": 1})
        except RejectedError as error:
            return SetupCheck(
                "account",
                title,
                False,
                error.message,
                "Set the store's warehouse_account.customer_code to the customer "
                "code the WMS uses for this merchant.",
                field="warehouse_account.customer_code",
            )
        except ConnectorError as error:
            return SetupCheck(
                "account", title, False, error.message, "Try again when the WMS is up."
            )
        return SetupCheck("account", title, True, "The WMS serves this account's shipments.")


def _unsendable(error: protocol.ProtocolError) -> RejectedError:
    """An order whose document breaks the protocol: refused here, never sent."""
    return RejectedError(
        f"The order cannot be sent: {error.reason}", code="invalid_order", field=error.field or None
    )


def _batch_answers(
    client: WmsClient, reply: dict[str, Any], documents: list[dict[str, Any]]
) -> list[WarehouseOrderAck | RejectedError]:
    """Each order's result in a batch's reply (validated as ``order-batch-result``).

    :raises TransientError: the reply does not answer each order sent, in order: what became
        of them is unknown, and each is sent again (the WMS answers a reference it has with
        the order it made).
    """
    results = reply["results"]
    sent = [document["reference"] for document in documents]
    answered = [result["reference"] for result in results]
    if answered != sent:
        raise TransientError(
            f"The WMS answered a batch of {len(sent)} orders with results for "
            f"{len(answered)} that do not match them one for one",
            code="malformed_response",
        )
    answers: list[WarehouseOrderAck | RejectedError] = []
    for result in results:
        if result["status"] == 422:
            error = result["error"]
            answers.append(
                client.refusal(422, error["code"], error["message"], error.get("field"))
            )
            continue
        ack = result["order"]
        if ack["reference"] != result["reference"]:
            raise TransientError(
                f"The WMS acknowledged reference {ack['reference']!r} for "
                f"{result['reference']!r}",
                code="malformed_response",
            )
        answers.append(
            WarehouseOrderAck(result["reference"], ack["id"], created=result["status"] == 201)
        )
    return answers
