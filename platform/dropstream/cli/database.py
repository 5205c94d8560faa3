"""``dropstream db app-role``: the PostgreSQL role the application should connect as.

Migrations run as the tables' owner; the application runs as a role that owns nothing and
cannot bypass row-level security, so the database enforces tenant isolation even if a query in
the application forgot it.
"""

from __future__ import annotations

import re
import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import text

from dropstream.extensions import db

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@click.command("app-role")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the role's password from standard input.")
@with_appcontext
def app_role_command(name: str, password_stdin: bool) -> None:
    """Create (or update) NAME as the application's database role: LOGIN, no superuser, no
    BYPASSRLS, owning nothing, with read/write grants on DropStream's tables.

    Run it as the owner after `dropstream db upgrade`; then point DATABASE_URL of the web app,
    workers and scheduler at NAME (keep the owner's URL for migrations).
    """
    if db.engine.dialect.name != "postgresql":
        raise click.UsageError("Application roles and row-level security are PostgreSQL features.")
    if not ROLE_NAME.match(name):
        raise click.BadParameter("use lower-case letters, digits and underscores", param_hint="NAME")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with db.engine.begin() as connection:
        exists = connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": name})
        verb = "ALTER" if exists else "CREATE"
        connection.execute(text(f'{verb} ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'))
        if password:
            connection.execute(text(f"ALTER ROLE \"{name}\" PASSWORD {_literal(connection, password)}"))
        owner = connection.scalar(text("SELECT current_user"))
        connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{name}"'))
        connection.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{name}"'))
        connection.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{name}"'))
        # Tables added by later migrations (run by the owner) are granted too.
        connection.execute(text(f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA public '
                                f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{name}"'))
        connection.execute(text(f'ALTER DEFAULT PRIVILEGES FOR ROLE "{owner}" IN SCHEMA public '
                                f'GRANT USAGE, SELECT ON SEQUENCES TO "{name}"'))
    click.echo(f"Role {name} is ready: connect the application as it (migrations stay with {owner}).")


def _literal(connection, value: str) -> str:  # type: ignore[no-untyped-def]
    """A quoted string literal (ALTER ROLE takes no bind parameters)."""
    return connection.scalar(text("SELECT quote_literal(:value)"), {"value": value})
