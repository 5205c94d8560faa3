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

import weakref

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

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


#: Keys in a database connection's ``info``: the session whose transaction runs on it, and the
#: context that transaction has set so far.
_SESSION = "dropstream.rls.session"
_APPLIED = "dropstream.rls.applied"
_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
_SET_CONTEXT = ("SELECT set_config('dropstream.system', %s, true), "
                "set_config('dropstream.provider_id', %s, true), "
                "set_config('dropstream.merchant_id', %s, true)")


def context_of(session: Session) -> tuple[str, str, str]:
    """``(system, provider_id, merchant_id)`` for the session's scope, as the policy reads them."""
    from dropstream.tenants.scope import current

    scope = current(session)
    if scope is None:
        return ("on", "", "")
    return ("off", str(scope.provider_id), "" if scope.merchant_id is None else str(scope.merchant_id))


def install(engine: Engine) -> None:
    """Keep every PostgreSQL transaction's tenant context in step with its session's scope.

    The context is set lazily, just before a statement runs and only when the session's scope
    differs from what the transaction has set: a scope switched on and off between statements
    (``unscoped`` around a lookup, a job activating its tenant) costs nothing, and a
    transaction pays one ``set_config`` round trip per scope it actually queries under. It is
    transaction-local, so it ends with each commit or rollback (and a rolled-back savepoint
    may undo it: it is set again).
    """
    if engine.dialect.name != "postgresql" or event.contains(engine, "before_cursor_execute", _before_execute):
        return
    event.listen(engine, "before_cursor_execute", _before_execute)
    for ended in ("commit", "rollback", "rollback_savepoint"):
        event.listen(engine, ended, _forget_applied)
    event.listen(engine, "commit", _forget_session)
    event.listen(engine, "rollback", _forget_session)


def on_begin(session: Session, transaction: Any, connection: Any) -> None:
    """``after_begin`` listener: the connection now runs this session's transaction."""
    if transaction.nested or transaction.parent is not None:
        return
    if connection.dialect.name == "postgresql":
        connection.info[_SESSION] = weakref.ref(session)
        connection.info.pop(_APPLIED, None)


def _before_execute(connection: Any, cursor: Any, statement: str, parameters: Any,
                    context: Any, executemany: bool) -> None:
    if statement.startswith(_TRANSACTION_CONTROL):
        return  # reads no rows; and after a failed statement only the rollback may run
    owner = connection.info.get(_SESSION)
    session = owner() if owner is not None else None
    if session is None:
        return  # not a session's transaction (migrations, maintenance): no tenant context
    wanted = context_of(session)
    if connection.info.get(_APPLIED) != wanted:
        cursor.execute(_SET_CONTEXT, wanted)
        connection.info[_APPLIED] = wanted


def _forget_applied(connection: Any, *args: Any) -> None:
    if connection.invalidated:
        return  # its database connection is gone (a restart cut it), and what it had set too
    connection.info.pop(_APPLIED, None)


def _forget_session(connection: Any, *args: Any) -> None:
    if connection.invalidated:
        return  # reading ``info`` would reconnect, which SQLAlchemy refuses mid-rollback
    connection.info.pop(_SESSION, None)
