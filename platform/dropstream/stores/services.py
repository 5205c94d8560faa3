"""Creating and changing warehouses and stores: the rules the API and the console share.

Each function validates a plain dict (already shaped by the caller's schema) against the
connector's own schemas, so a bad setting is reported as ``settings.<field>`` whatever the
connector; seals credentials only after the row has its id (the id is bound into the
ciphertext); and leaves the session uncommitted for the caller. Rows named by id (a store's
warehouse, its merchant) are looked up through the caller's :class:`TenantScope`, so another
tenant's row is "no such" exactly like a missing one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropstream.alerts.services import resolve_alerts
from dropstream.connectors.base import Capability, ConnectorClass, ConnectorRole
from dropstream.errors import Conflict, Forbidden, NotFound, ValidationFailed, flatten_fields
from dropstream.jobs.outbox import release_for_stores
from dropstream.plugins import UnknownConnector
from dropstream.state import get_state
from dropstream.stores.channels import REQUIREMENTS
from dropstream.stores.credentials import write_credentials
from dropstream.stores.models import (
    DEFAULT_INTERVALS,
    Channel,
    Store,
    StoreChannel,
    StoreState,
    Warehouse,
)
from dropstream.tenants.models import Merchant
from dropstream.tenants.scope import TenantScope


class _Errors:
    """Collects field errors from several checks so one response names every bad field."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def check(self, step: Callable[[], Any]) -> Any:
        try:
            return step()
        except ValidationFailed as error:
            self.fields.update(error.fields)
            return None

    def raise_if_any(self, what: str) -> None:
        if self.fields:
            raise ValidationFailed(f"The {what} could not be saved: some fields are invalid.",
                                   fields=self.fields)


def connector_class(connector_id: str, role: ConnectorRole) -> ConnectorClass:
    try:
        return get_state().connectors.get(connector_id, role)
    except UnknownConnector:
        raise ValidationFailed(
            f"No {role.value} connector {connector_id!r} is installed.",
            fields={"connector_id": [f"Not an installed {role.value} connector."]},
        ) from None


def validate_with(schema_cls: type[Schema] | None, data: Any, prefix: str) -> dict[str, Any]:
    """Load ``data`` with a connector schema; errors are named ``<prefix>.<field>``. The result
    is JSON-safe (it goes to a JSON column or into a sealed JSON envelope)."""
    if schema_cls is None:
        if data:
            raise ValidationFailed(f"This connector takes no {prefix}.",
                                   fields={prefix: ["This connector takes no settings here."]})
        return {}
    try:
        loaded = schema_cls().load(data or {})
    except ValidationError as error:
        raise ValidationFailed(f"Some {prefix} are invalid.",
                               fields=flatten_fields(error.messages, prefix)) from None
    return json.loads(json.dumps(loaded, default=str))


def _lookup(session: Session, scope: TenantScope, model: type, object_id: int, field: str) -> Any:
    try:
        return scope.get(session, model, object_id)
    except NotFound:
        label = model.__name__.lower()
        raise ValidationFailed(f"No such {label}.", fields={field: [f"No such {label}."]}) from None


# ------------------------------------------------------------------------------------------------
# Warehouses
# ------------------------------------------------------------------------------------------------


def create_warehouse(session: Session, scope: TenantScope, data: dict[str, Any]) -> Warehouse:
    """Create a provider's warehouse connection from ``name``, ``connector_id``, ``settings``,
    optional ``credentials`` and ``is_active``.

    :raises ValidationFailed: unknown connector, or settings/credentials its schemas refuse.
    """
    errors = _Errors()
    cls = errors.check(lambda: connector_class(data["connector_id"], ConnectorRole.WAREHOUSE))
    settings = credentials = None
    if cls is not None:
        settings = errors.check(lambda: validate_with(cls.settings_schema, data.get("settings"), "settings"))
        if "credentials" in data:
            credentials = errors.check(
                lambda: validate_with(cls.credentials_schema, data["credentials"], "credentials"))
    errors.raise_if_any("warehouse")
    warehouse = Warehouse(provider_id=scope.provider_id, name=data["name"],
                          connector_id=data["connector_id"], settings=settings or {},
                          is_active=data.get("is_active", True))
    session.add(warehouse)
    session.flush()
    if credentials is not None:
        write_credentials(warehouse, credentials)
    return warehouse


def _connector_changes(errors: _Errors, row: Any, role: ConnectorRole,
                       data: dict[str, Any]) -> tuple[Any, dict[str, Any] | None, dict[str, Any] | None]:
    """Validate an update's ``settings`` (merged over the stored ones) and ``credentials``
    (whole) with the row's connector's schemas; errors are collected in ``errors``."""
    if "settings" not in data and "credentials" not in data:
        return None, None, None  # renaming needs no installed connector
    cls = errors.check(lambda: connector_class(row.connector_id, role))
    settings = credentials = None
    if cls is not None and "settings" in data:
        merged = {**(row.settings or {}), **(data["settings"] or {})}
        settings = errors.check(lambda: validate_with(cls.settings_schema, merged, "settings"))
    if cls is not None and "credentials" in data:
        credentials = errors.check(
            lambda: validate_with(cls.credentials_schema, data["credentials"], "credentials"))
    return cls, settings, credentials


def update_warehouse(session: Session, scope: TenantScope, warehouse: Warehouse,
                     data: dict[str, Any]) -> Warehouse:
    """Change a warehouse. Given ``settings`` are merged over the stored ones and the result
    validated whole; given ``credentials`` replace the stored ones whole."""
    errors = _Errors()
    cls, settings, credentials = _connector_changes(errors, warehouse, ConnectorRole.WAREHOUSE, data)
    errors.raise_if_any("warehouse")
    for key in ("name", "is_active"):
        if key in data:
            setattr(warehouse, key, data[key])
    if settings is not None:
        warehouse.settings = settings
    if credentials is not None:
        write_credentials(warehouse, credentials)
        _release_work_waiting_for_credentials(session, scope, warehouse)
    return warehouse


def _release_work_waiting_for_credentials(session: Session, scope: TenantScope,
                                          warehouse: Warehouse) -> None:
    """New credentials: the work that waits because the warehouse refused the old ones (for an
    hour, or until now) runs at once with them, and the refusal's alerts are resolved. What
    still fails is told again by its own work."""
    warehouse.last_error = None
    # Ids only: a provider may link hundreds of merchants' stores to one warehouse.
    stores = session.execute(select(Store.id, Store.merchant_id).where(
        scope.criteria(Store), Store.warehouse_id == warehouse.id)).all()
    release_for_stores(session, [store.id for store in stores])
    for merchant_id in {store.merchant_id for store in stores}:
        resolve_alerts(session, merchant_id=merchant_id,
                       group_key=f"warehouse:{warehouse.id}:auth_failed")


def delete_warehouse(session: Session, scope: TenantScope, warehouse: Warehouse) -> None:
    """:raises Conflict: stores still use it (their shipments and stock would go with it)."""
    in_use = session.scalar(
        select(Store.id).where(scope.criteria(Store), Store.warehouse_id == warehouse.id).limit(1))
    if in_use is not None:
        raise Conflict("Stores still use this warehouse: link them to another one first.",
                       code="in_use")
    session.delete(warehouse)


# ------------------------------------------------------------------------------------------------
# Stores
# ------------------------------------------------------------------------------------------------


def _check_warehouse_link_allowed(scope: TenantScope, data: dict[str, Any]) -> None:
    """Only provider staff link a store to a warehouse: the warehouse account decides whose
    stock and shipments the WMS reports, so a merchant choosing it could read another
    merchant's (at the WMS, outside DropStream's tenant scope)."""
    if scope.merchant_id is not None and ("warehouse_id" in data or "warehouse_account" in data):
        raise Forbidden("Only the fulfillment provider's staff link a store to a warehouse.",
                        fields={"warehouse_id": ["Set by the provider's staff."]})


def create_store(session: Session, scope: TenantScope, data: dict[str, Any]) -> Store:
    """Create a merchant's store from ``name``, ``connector_id``, ``settings``, optional
    ``credentials``, ``external_id``, ``warehouse_id``, ``warehouse_account``,
    ``safety_buffer`` and (provider users) ``merchant_id``; add its three channels.

    :raises ValidationFailed: any field, named by its path (``settings.sandbox``).
    :raises Conflict: the store (connector + external id) is connected already.
    :raises Forbidden: a merchant user tried to choose the warehouse link.
    """
    _check_warehouse_link_allowed(scope, data)
    errors = _Errors()
    merchant = errors.check(lambda: _merchant_for(session, scope, data.get("merchant_id")))
    cls = errors.check(lambda: connector_class(data["connector_id"], ConnectorRole.STOREFRONT))
    settings = credentials = None
    if cls is not None:
        settings = errors.check(lambda: validate_with(cls.settings_schema, data.get("settings"), "settings"))
        if "credentials" in data:
            credentials = errors.check(
                lambda: validate_with(cls.credentials_schema, data["credentials"], "credentials"))
    warehouse, account = _warehouse_and_account(
        session, scope, errors, data.get("warehouse_id"), data.get("warehouse_account") or {})
    external_id = (data.get("external_id") or "").strip() or None  # blank means "not known yet"
    if cls is not None and credentials:
        external_id = errors.check(lambda: _external_id_of(cls, credentials, external_id))
    errors.raise_if_any("store")
    _check_external_id(session, data["connector_id"], external_id, None)
    store = Store(
        provider_id=scope.provider_id, merchant_id=merchant.id, name=data["name"],
        connector_id=data["connector_id"], external_id=external_id,
        warehouse_id=warehouse.id if warehouse else None, settings=settings or {},
        warehouse_account=account, safety_buffer=data.get("safety_buffer", 0),
        state=StoreState.SETTING_UP,
    )
    session.add(store)
    session.flush()
    if credentials is not None:
        write_credentials(store, credentials)
    for channel in Channel:
        store.channels.append(StoreChannel(provider_id=store.provider_id,
                                           merchant_id=store.merchant_id, channel=channel,
                                           interval_seconds=DEFAULT_INTERVALS[channel]))
    session.flush()
    return store


def update_store(session: Session, scope: TenantScope, store: Store, data: dict[str, Any]) -> Store:
    """Change a store. ``settings`` merge over the stored ones; ``credentials`` replace them;
    a new ``warehouse_id`` re-validates ``warehouse_account`` against that warehouse."""
    _check_warehouse_link_allowed(scope, data)
    errors = _Errors()
    cls, settings, credentials = _connector_changes(errors, store, ConnectorRole.STOREFRONT, data)
    warehouse, account = store.warehouse, store.warehouse_account
    if "warehouse_id" in data or "warehouse_account" in data:
        warehouse_id = data.get("warehouse_id", store.warehouse_id)
        # Unlinking the warehouse drops the account at it unless a new one is given.
        given = data.get("warehouse_account", store.warehouse_account if warehouse_id else {})
        warehouse, account = _warehouse_and_account(session, scope, errors, warehouse_id, given or {})
    if "external_id" in data:
        external_id = (data["external_id"] or "").strip() or None
        fixed = external_id
    else:
        external_id = store.external_id
        # Credentials of another store may replace a mistyped one's, but not once orders came
        # in under the old identity (their ids would mix with the new store's).
        fixed = store.external_id if credentials and _has_orders(session, store) else None
    if cls is not None and credentials:
        external_id = errors.check(lambda: _external_id_of(cls, credentials, fixed)) or external_id
    errors.raise_if_any("store")
    if external_id != store.external_id:
        _check_external_id(session, store.connector_id, external_id, store.id)
        store.external_id = external_id
    for key in ("name", "safety_buffer"):
        if key in data:
            setattr(store, key, data[key])
    if settings is not None:
        store.settings = settings
    if credentials is not None:
        write_credentials(store, credentials)
    store.warehouse_id = warehouse.id if warehouse else None
    store.warehouse = warehouse
    store.warehouse_account = account
    return store


def delete_store(session: Session, store: Store) -> None:
    """Delete a store with its orders, mappings and history.

    :raises Conflict: the store is active (pause it first, so nothing is mid-flight).
    """
    if store.state is StoreState.ACTIVE:
        raise Conflict("Pause the store before deleting it.", code="store_active")
    session.delete(store)


def channel_support(store: Store) -> dict[Channel, str | None]:
    """Per channel: None when both connectors can run it, else the reason it cannot (in words,
    for the API and console; unlike ``channels.supported`` it copes with an uninstalled plugin)."""
    registry = get_state().connectors
    try:
        store_caps = registry.get(store.connector_id, ConnectorRole.STOREFRONT).capabilities
    except UnknownConnector:
        return {channel: f"The store's connector {store.connector_id!r} is not installed."
                for channel in Channel}
    warehouse = store.warehouse
    warehouse_caps: frozenset[Capability] = frozenset()
    missing_warehouse = None
    if warehouse is None:
        missing_warehouse = "No warehouse is linked to this store."
    else:
        try:
            warehouse_caps = registry.get(warehouse.connector_id, ConnectorRole.WAREHOUSE).capabilities
        except UnknownConnector:
            missing_warehouse = f"The warehouse's connector {warehouse.connector_id!r} is not installed."
    support: dict[Channel, str | None] = {}
    for channel, (store_needs, warehouse_needs) in REQUIREMENTS.items():
        if store_needs not in store_caps:
            support[channel] = f"The store's connector cannot {store_needs.value.replace('_', ' ')}."
        elif missing_warehouse:
            support[channel] = missing_warehouse
        elif warehouse_needs not in warehouse_caps:
            support[channel] = f"The warehouse's connector cannot {warehouse_needs.value.replace('_', ' ')}."
        else:
            support[channel] = None
    return support


def _merchant_for(session: Session, scope: TenantScope, merchant_id: int | None) -> Merchant:
    if merchant_id is None:
        if scope.merchant_id is None:
            raise ValidationFailed("Say which merchant the store belongs to.",
                                   fields={"merchant_id": ["Required for provider users."]})
        merchant_id = scope.merchant_id
    return _lookup(session, scope, Merchant, merchant_id, "merchant_id")


def _warehouse_and_account(session: Session, scope: TenantScope, errors: _Errors,
                           warehouse_id: int | None, account: dict[str, Any]
                           ) -> tuple[Warehouse | None, dict[str, Any]]:
    if warehouse_id is None:
        if account:
            errors.fields["warehouse_account"] = ["Link a warehouse (warehouse_id) first."]
        return None, {}
    warehouse = errors.check(lambda: _lookup(session, scope, Warehouse, warehouse_id, "warehouse_id"))
    if warehouse is None:
        return None, {}
    try:
        cls = get_state().connectors.get(warehouse.connector_id, ConnectorRole.WAREHOUSE)
    except UnknownConnector:
        errors.fields["warehouse_id"] = ["This warehouse's connector is not installed."]
        return None, {}
    loaded = errors.check(lambda: validate_with(cls.account_schema, account, "warehouse_account"))
    return warehouse, loaded or {}


def _external_id_of(cls: ConnectorClass, credentials: dict[str, Any], given: str | None) -> str | None:
    """The external id the credentials name, if the connector derives one; it must agree with
    one given (or already stored): credentials of another store would cross the two."""
    derived = cls.external_id_from_credentials(credentials)
    if not derived:
        return given
    if given and given != derived:
        raise ValidationFailed(
            f"These credentials are for store {derived}, but this store is {given}.",
            fields={"credentials": [f"Credentials of store {derived}; connect it as its own store."]})
    return derived


def _has_orders(session: Session, store: Store) -> bool:
    from dropstream.orders.models import Order

    return session.scalar(select(Order.id).where(Order.store_id == store.id).limit(1)) is not None


def _check_external_id(session: Session, connector_id: str, external_id: str | None,
                       store_id: int | None) -> None:
    if not external_id:
        return
    # Unique across every tenant (the same storefront cannot be connected twice), so look
    # beyond the caller's scope; only "taken" is revealed, never by whom.
    taken = session.scalar(
        select(Store.id).where(Store.connector_id == connector_id, Store.external_id == external_id,
                               Store.id != (store_id or 0))
        .execution_options(dropstream_unscoped=True)
    )
    if taken is not None:
        raise Conflict("This store is connected already.",
                       fields={"external_id": ["Already connected."]})
