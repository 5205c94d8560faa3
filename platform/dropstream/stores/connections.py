"""Building a connector instance bound to one store or warehouse row.

Every call the pipeline makes to a connector goes through the instances built here, so remote
failures come back tagged with the row they concern (to pause the right store) and with every
credential value redacted from their message.

A warehouse whose WMS refused DropStream's credentials is not called with them again: a call
fails at once with an :class:`AuthError` naming the refusal, as the WMS's own answer would, and
its work waits as refused work does, until new credentials are entered. One WMS serves many
stores, so without this each of their orders would try the refused credentials once more (and
some WMSs lock an account after repeated failed logins). A store needs no such guard: its work
is not even dispatched while it is paused.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from dropstream.connectors.base import (
    AuthError,
    ConnectorContext,
    ConnectorError,
    ConnectorRole,
    StorefrontConnector,
    WarehouseConnector,
    redact,
)
from dropstream.state import get_state
from dropstream.stores.credentials import credentials_version, read_credentials, write_credentials
from dropstream.stores.models import HasCredentials, Store, Warehouse


class _Guarded:
    """Wraps a connector: tags its :class:`ConnectorError` s with their owner (``("store",
    id)`` or ``("warehouse", id)``) and the version of the credentials the connector was built
    with (:func:`credentials_version`), and redacts them."""

    def __init__(self, connector: Any, owner: HasCredentials, kind: str,
                 secrets: list[str]) -> None:
        self._connector = connector
        self._owner_row = owner
        self._owner = (kind, owner.id)
        self._credentials_version = credentials_version(owner)
        self._secrets = secrets

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._connector, name)
        if not callable(attribute) or isinstance(attribute, type):
            return attribute  # a value, or a class such as the connector's settings schema

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                _refuse_if_refused_before(self._owner_row)
                result = attribute(*args, **kwargs)
            except ConnectorError as error:
                self._tag(error)
                raise
            if isinstance(result, list):  # (errors returned per item, as a batch's refusals)
                for item in result:
                    if isinstance(item, ConnectorError):
                        self._tag(item)
            return result

        return call

    def _tag(self, error: ConnectorError) -> None:
        error.owner = self._owner  # type: ignore[attr-defined]
        error.credentials_version = self._credentials_version  # type: ignore[attr-defined]
        error.message = redact(error.message, self._secrets)
        error.args = (error.message,)


def _refuse_if_refused_before(owner: HasCredentials) -> None:
    if isinstance(owner, Warehouse) and owner.credentials_refused:
        raise AuthError(f"{owner.last_error} (its earlier answer: not asked again with the same "
                        "credentials)")


def store_connector(store: Store) -> StorefrontConnector:
    cls = get_state().connectors.get(store.connector_id, ConnectorRole.STOREFRONT)
    credentials = read_credentials(store)
    context = ConnectorContext(
        connector_id=store.connector_id, owner_id=store.id, settings=dict(store.settings or {}),
        credentials=credentials, save_credentials=lambda values: write_credentials(store, values),
        public_base_url=current_app.config["PUBLIC_BASE_URL"],
        unmapped_shipping_methods=lambda methods: _unmapped_shipping_methods(store, methods),
    )
    guarded = _Guarded(cls(context), store, "store", _secret_strings(credentials))
    return guarded  # type: ignore[return-value]


def warehouse_connector(warehouse: Warehouse, store: Store | None = None) -> WarehouseConnector:
    cls = get_state().connectors.get(warehouse.connector_id, ConnectorRole.WAREHOUSE)
    credentials = read_credentials(warehouse)
    context = ConnectorContext(
        connector_id=warehouse.connector_id, owner_id=warehouse.id,
        settings=dict(warehouse.settings or {}), credentials=credentials,
        account=dict(store.warehouse_account or {}) if store is not None else {},
        save_credentials=lambda values: write_credentials(warehouse, values),
        public_base_url=current_app.config["PUBLIC_BASE_URL"],
    )
    guarded = _Guarded(cls(context), warehouse, "warehouse", _secret_strings(credentials))
    return guarded  # type: ignore[return-value]


def _secret_strings(credentials: dict[str, Any]) -> list[str]:
    return [str(value) for value in credentials.values() if isinstance(value, (str, int)) and str(value)]


def _unmapped_shipping_methods(store: Store, methods: Any) -> list[str]:
    from dropstream.catalog.services import unmapped_shipping_methods
    from dropstream.extensions import db

    return unmapped_shipping_methods(db.session, store, methods)
