"""PostgreSQL row-level security: the database refuses other tenants' rows to the application's
role even where the application's own scoping was forgotten."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import flask_migrate
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from dropstream.app import create_app
from dropstream.extensions import db
from dropstream.tenants import rls
from dropstream.tenants.models import Role
from dropstream.tenants.scope import TenantScope, activate
from tests.factories import OrderFactory

pytestmark = pytest.mark.skipif(not os.environ.get("DATABASE_URL"),
                                reason="row-level security is PostgreSQL's (CI runs it)")


@pytest.fixture
def migrated(app_config: dict[str, object], fresh_database_url: str) -> Iterator[object]:
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": fresh_database_url}, env={},
                     load_entry_points=False)
    with app.app_context():
        flask_migrate.upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_role(migrated) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"dropstream_app_{uuid.uuid4().hex[:8]}"
    result = migrated.test_cli_runner().invoke(args=["db", "app-role", name])
    assert result.exit_code == 0, result.output
    yield name
    with db.engine.begin() as connection:
        connection.execute(text(f'DROP OWNED BY "{name}"'))
        connection.execute(text(f'DROP ROLE "{name}"'))


def _two_tenants():  # type: ignore[no-untyped-def]
    from tests.tenancy import make_tenant

    a, b = make_tenant("alpha"), make_tenant("beta")
    for tenant in (a, b):
        OrderFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id, store_id=tenant.store.id)
    db.session.commit()
    return a, b


def test_every_tenant_table_forces_row_level_security(migrated, app_role: str) -> None:  # type: ignore[no-untyped-def]
    tables = set(inspect(db.engine).get_table_names())
    tenant_tables = {t for t in tables if "provider_id" in {c["name"] for c in inspect(db.engine).get_columns(t)}}
    tenant_tables |= {"providers"}
    rows = db.session.execute(text(
        "SELECT relname, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) "
        "FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")).all()
    secured = {row[0] for row in rows if row[1] and row[2]}
    assert tenant_tables <= secured, f"tables without forced RLS: {sorted(tenant_tables - secured)}"
    assert app_role not in {row[3] for row in rows}, "the application role must own no table"
    bypass = db.session.scalar(text("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = :r"), {"r": app_role})
    assert bypass is False


def test_the_application_role_sees_only_its_tenant(migrated, app_role: str) -> None:  # type: ignore[no-untyped-def]
    a, b = _two_tenants()
    url = make_url(str(db.engine.url)).set(username=app_role, password=None)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            # No tenant context at all: nothing is visible (fail closed).
            assert connection.scalar(text("SELECT count(*) FROM orders")) == 0
            assert connection.scalar(text("SELECT count(*) FROM stores")) == 0
        with engine.begin() as connection:
            _context(connection, a.provider.id, a.merchant.id)
            assert connection.scalar(text("SELECT count(*) FROM orders")) == 1
            # A query that forgot its WHERE clause still cannot read or change tenant B.
            assert connection.scalar(text("SELECT count(*) FROM orders WHERE merchant_id = :m"), {"m": b.merchant.id}) == 0
            assert connection.execute(text("UPDATE orders SET note = 'x' WHERE merchant_id = :m"),
                                      {"m": b.merchant.id}).rowcount == 0
            assert connection.scalar(text("SELECT count(*) FROM merchants")) == 1
            assert connection.scalar(text("SELECT count(*) FROM warehouses")) == 1
        with engine.begin() as connection, pytest.raises(Exception, match="row-level security"):
            _context(connection, a.provider.id, a.merchant.id)
            connection.execute(text("INSERT INTO alerts (provider_id, merchant_id, code, severity, message, group_key, "
                                    "occurrences, first_seen_at, last_seen_at) VALUES (:p, :m, 'x', 'error', 'x', 'k', 1, now(), now())"),
                               {"p": b.provider.id, "m": b.merchant.id})
    finally:
        engine.dispose()


def test_the_application_running_as_the_role_works_within_its_scope(migrated, app_role: str) -> None:  # type: ignore[no-untyped-def]
    a, b = _two_tenants()
    provider_id, merchant_id, headers = a.provider.id, a.merchant.id, a.headers(Role.MERCHANT_ADMIN)
    db.session.commit()  # nothing of this session stays open while the other app runs
    url = make_url(str(db.engine.url)).set(username=app_role, password=None).render_as_string(hide_password=False)
    app = create_app({**migrated.config, "SQLALCHEMY_DATABASE_URI": url}, env={}, load_entry_points=False)
    try:
        assert _orders_listed(app, headers) == 1
        with app.app_context():
            from dropstream.orders.models import Order

            activate(db.session, TenantScope.for_merchant(provider_id, merchant_id))
            # A raw SQL count bypasses the ORM backstop; the database still limits it.
            assert db.session.scalar(text("SELECT count(*) FROM orders")) == 1
            assert db.session.query(Order).count() == 1
            # The context follows the scope statement by statement within one transaction,
            # also after a rolled-back savepoint (which undoes what was set inside it).
            activate(db.session, None)
            assert db.session.scalar(text("SELECT count(*) FROM orders")) == 2  # system work
            with db.session.begin_nested() as savepoint:
                activate(db.session, TenantScope.for_merchant(provider_id, merchant_id))
                assert db.session.scalar(text("SELECT count(*) FROM orders")) == 1
                savepoint.rollback()
            assert db.session.scalar(text("SELECT count(*) FROM orders")) == 1
            activate(db.session, TenantScope.for_merchant(provider_id + 10_000, None))
            assert db.session.scalar(text("SELECT count(*) FROM orders")) == 0
            try:  # a statement failing inside a savepoint leaves the transaction usable
                with db.session.begin_nested():
                    activate(db.session, None)
                    db.session.execute(text("SELECT 1 / 0"))
            except DBAPIError:
                pass
            assert db.session.scalar(text("SELECT count(*) FROM orders")) == 2
            activate(db.session, None)
            db.session.remove()
    finally:
        with app.app_context():
            db.engine.dispose()


def _orders_listed(app, headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    with app.test_client() as client:
        response = client.get("/api/v1/orders", headers=headers)
        assert response.status_code == 200
        count = len(response.get_json()["items"])
        response.close()
    return count


def _context(connection, provider_id: int, merchant_id: int | None) -> None:  # type: ignore[no-untyped-def]
    connection.execute(text("SELECT set_config('dropstream.system', 'off', true), "
                            "set_config('dropstream.provider_id', :p, true), "
                            "set_config('dropstream.merchant_id', :m, true)"),
                       {"p": str(provider_id), "m": "" if merchant_id is None else str(merchant_id)})


def test_policy_helpers_name_one_function(migrated) -> None:  # type: ignore[no-untyped-def]
    assert rls.FUNCTION in rls.CREATE_FUNCTION


def _tenant_tables() -> list[str]:
    inspector = inspect(db.engine)
    return sorted(t for t in inspector.get_table_names()
                  if "provider_id" in {c["name"] for c in inspector.get_columns(t)})


def test_the_application_role_owns_nothing_and_holds_no_way_around_the_policy(
        migrated, app_role: str) -> None:  # type: ignore[no-untyped-def]
    """Not FORCE alone: a table's owner, a superuser, a BYPASSRLS role, a member of such a role
    (SET ROLE) and TRUNCATE (which row security does not filter) each get past a policy."""
    role = {"r": app_role}
    attributes = db.session.execute(text(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit FROM pg_roles "
        "WHERE rolname = :r"), role).one()
    assert attributes[:4] == (False, False, False, False)
    owned = db.session.execute(text(
        "SELECT 'relation', relname FROM pg_class WHERE relowner = to_regrole(:r) "
        "UNION ALL SELECT 'function', proname FROM pg_proc WHERE proowner = to_regrole(:r) "
        "UNION ALL SELECT 'schema', nspname FROM pg_namespace WHERE nspowner = to_regrole(:r) "
        "UNION ALL SELECT 'type', typname FROM pg_type WHERE typowner = to_regrole(:r) "
        "UNION ALL SELECT 'database', datname FROM pg_database WHERE datdba = to_regrole(:r)"), role).all()
    assert owned == [], f"the application role owns {owned}"
    memberships = db.session.scalars(text(
        "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = to_regrole(:r)"), role).all()
    assert memberships == [], f"the application role can become {memberships}"
    for table in _tenant_tables():
        for privilege in ("TRUNCATE", "REFERENCES", "TRIGGER"):
            granted = db.session.scalar(text("SELECT has_table_privilege(:r, :t, :p)"),
                                        {**role, "t": f'public."{table}"', "p": privilege})
            assert not granted, (table, privilege)
    assert not db.session.scalar(text("SELECT has_schema_privilege(:r, 'public', 'CREATE')"), role)
    db.session.rollback()


SWITCH_OFF = [
    "ALTER TABLE orders DISABLE ROW LEVEL SECURITY",
    "ALTER TABLE orders NO FORCE ROW LEVEL SECURITY",
    "DROP POLICY dropstream_tenant_isolation ON orders",
    "CREATE POLICY everything ON orders USING (true)",
    (f"CREATE OR REPLACE FUNCTION {rls.FUNCTION}(integer, integer) RETURNS boolean "
     "LANGUAGE sql AS 'SELECT true'"),
    "TRUNCATE orders",
    "SET ROLE postgres",
]


def test_the_application_role_cannot_switch_the_policy_off(migrated, app_role: str) -> None:  # type: ignore[no-untyped-def]
    _two_tenants()
    engine = create_engine(make_url(str(db.engine.url)).set(username=app_role, password=None))
    try:
        for statement in SWITCH_OFF:
            with engine.connect() as connection, \
                    pytest.raises(DBAPIError, match="must be owner|permission denied"):
                connection.execute(text(statement))
        # Nor can a session turn row security off: the query fails instead of seeing everything.
        with engine.connect() as connection, pytest.raises(DBAPIError, match="row-level security"):
            connection.execute(text("SET row_security = off"))
            connection.execute(text("SELECT count(*) FROM orders"))
    finally:
        engine.dispose()


def test_every_tenant_table_shows_the_role_only_its_tenants_rows(migrated, app_role: str) -> None:  # type: ignore[no-untyped-def]
    """Both tenants hold rows in every tenant table: under tenant A's context the role sees
    exactly A's rows in each, none of B's, and can change none of B's; under a merchant's context,
    none of its provider's other merchant."""
    from tests.api.data import populate
    from tests.console.test_access import add_console_objects
    from tests.factories import MerchantFactory, StoreFactory
    from tests.tenancy import make_tenant

    tenants = []
    for name in ("alpha", "beta"):
        data = populate(make_tenant(name))
        add_console_objects(data)
        _rows_made_by_flows(data.tenant)
        tenants.append(data.tenant)
    a, b = tenants
    other = MerchantFactory(provider_id=a.provider.id)
    populate(a, store=StoreFactory(provider_id=a.provider.id, merchant_id=other.id,
                                   warehouse_id=a.warehouse.id))
    tables = _tenant_tables()
    mine = {t: _count(db.session, t, "provider_id = :p", p=a.provider.id) for t in tables}
    theirs = {t: _count(db.session, t, "provider_id = :p", p=b.provider.id) for t in tables}
    merchant_rows = {t: _count(db.session, t, f"provider_id = :p AND ({_merchant(t)} IS NULL "
                               f"OR {_merchant(t)} = :m)", p=a.provider.id, m=a.merchant.id)
                     for t in tables}
    ids = (a.provider.id, a.merchant.id, b.provider.id, other.id)
    db.session.commit()
    assert all(theirs[t] > 0 and mine[t] > 0 for t in tables), {t: (mine[t], theirs[t]) for t in tables}

    engine = create_engine(make_url(str(db.engine.url)).set(username=app_role, password=None))
    try:
        with engine.begin() as connection:
            _context(connection, ids[0], None)
            for table in tables:
                assert _count(connection, table) == mine[table], table
                assert _count(connection, table, "provider_id = :p", p=ids[2]) == 0, table
                assert connection.execute(text(f'DELETE FROM "{table}" WHERE provider_id = :p'),
                                          {"p": ids[2]}).rowcount == 0, table
        with engine.begin() as connection:
            _context(connection, ids[0], ids[1])
            for table in tables:
                assert _count(connection, table) == merchant_rows[table], table
                if _merchant(table) != "NULL":
                    assert _count(connection, table, f"{_merchant(table)} = :m", m=ids[3]) == 0, table
    finally:
        engine.dispose()
    assert all(_count(db.session, t, "provider_id = :p", p=ids[2]) == theirs[t] for t in tables)


def _rows_made_by_flows(tenant) -> None:  # type: ignore[no-untyped-def]
    """Rows the API data leaves out (webhooks, set-up checks, digests), one each."""
    from dropstream.console.models import AlertDigestPreference, SetupResult
    from dropstream.jobs.models import InboxEvent
    from dropstream.tenants.models import Role

    owned = {"provider_id": tenant.provider.id, "merchant_id": tenant.merchant.id}
    db.session.add_all([
        InboxEvent(**owned, store_id=tenant.store.id, event_key=f"hook-{tenant.store.id}", topic="t"),
        SetupResult(**owned, store_id=tenant.store.id),
        AlertDigestPreference(**owned, user_id=tenant.users[Role.MERCHANT_ADMIN].id),
    ])
    db.session.commit()


def _count(connection, table: str, where: str = "true", **values: int) -> int:  # type: ignore[no-untyped-def]
    return connection.scalar(text(f'SELECT count(*) FROM "{table}" WHERE {where}'), values)


def _merchant(table: str) -> str:
    """The SQL naming a row's merchant, as the table's policy reads it (``NULL``: provider-wide)."""
    return rls.TENANT_COLUMNS.get(table, ("provider_id", "merchant_id"))[1]
