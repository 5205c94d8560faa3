"""PostgreSQL row-level security: the database's own backstop behind the tenant scope.

Every tenant table gets a forced policy that shows a row only when

* the transaction is *system work* (``dropstream.system = 'on'``: the relay, the scheduler,
  API-key lookup — exactly the code that runs ``unscoped``), or
* its provider is the transaction's ``dropstream.provider_id`` and, when a merchant is set, its
  merchant is ``dropstream.merchant_id`` (rows without a merchant — provider staff users — are
  visible to their whole provider).

An unset context shows nothing. The application keeps these settings in step with the session's
:class:`~dropstream.tenants.scope.TenantScope` (:func:`apply`), transaction-locally, so a pooled
connection never carries one tenant's context into another's transaction. For the policy to bind,
the application must connect as a role that owns no table and lacks ``BYPASSRLS`` (see
``dropstream db app-role``); the owner (who runs migrations) and superusers bypass it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

FUNCTION = "dropstream_tenant_visible"
POLICY = "dropstream_tenant_isolation"

CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}(row_provider integer, row_merchant integer)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('dropstream.system', true), '') = 'on'
      OR (row_provider = nullif(current_setting('dropstream.provider_id', true), '')::integer
          AND (coalesce(current_setting('dropstream.merchant_id', true), '') = ''
               OR row_merchant IS NULL
               OR row_merchant = nullif(current_setting('dropstream.merchant_id', true), '')::integer))
$$
"""

#: Table → the SQL expressions giving its (provider, merchant) — the tenant of each row.
TENANT_COLUMNS = {
    "providers": ("id", "NULL"),
    "merchants": ("provider_id", "id"),
    "users": ("provider_id", "merchant_id"),
    "api_keys": ("provider_id", "NULL"),
    "warehouses": ("provider_id", "NULL"),
}
#: Tables whose rows carry both ``provider_id`` and ``merchant_id``.
MERCHANT_TABLES = (
    "stores", "store_channels", "listings", "listing_components", "shipping_rules", "orders",
    "order_addresses", "order_lines", "warehouse_lines", "order_events", "shipments",
    "stock_levels", "inventory_items", "alerts", "outbox", "webhook_inbox",
)


def enable(op: Any, table: str, provider: str = "provider_id", merchant: str = "merchant_id") -> None:
    """In a migration: force row-level security on ``table`` with the tenant policy."""
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    condition = f"{FUNCTION}({provider}, {merchant})"
    op.execute(f'CREATE POLICY {POLICY} ON "{table}" USING ({condition}) WITH CHECK ({condition})')


def disable(op: Any, table: str) -> None:
    op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


def apply(session: Session, connection: Any = None) -> None:
    """Set the current transaction's tenant context from the session's scope (PostgreSQL only)."""
    from dropstream.tenants.scope import current

    if connection is None:
        if isinstance(session, scoped_session):
            session = session()
        transaction = session.get_transaction()
        if transaction is None or not transaction.is_active:
            return  # the next transaction gets the context when it begins (on_begin)
        if session.get_bind().dialect.name != "postgresql":
            return
        connection = session.connection()
    bind = connection
    if bind.dialect.name != "postgresql":
        return
    scope = current(session)
    bind.execute(
        text("SELECT set_config('dropstream.system', :system, true), "
             "set_config('dropstream.provider_id', :provider, true), "
             "set_config('dropstream.merchant_id', :merchant, true)"),
        {"system": "off" if scope else "on",
         "provider": str(scope.provider_id) if scope else "",
         "merchant": str(scope.merchant_id) if scope and scope.merchant_id is not None else ""},
    )


def on_begin(session: Session, transaction: Any, connection: Any) -> None:
    """``after_begin`` listener: every new transaction starts with the session's context."""
    if transaction.nested or transaction.parent is not None:
        return
    apply(session, connection)
