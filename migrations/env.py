"""Alembic environment for DropStream, run through Flask-Migrate (``dropstream db …``).

The application is built by ``create_app`` (the command line does that), so the database URL,
the metadata and the options come from it: ``db.metadata`` carries the naming convention that
gives every constraint a stable name, and ``render_as_batch`` (set in ``create_app``) lets
SQLite alter tables by copying them. Plugins loaded by the app register their models on the same
metadata, so autogenerate sees their tables too.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from flask import current_app
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

config = context.config
# Configure logging from alembic.ini only when nobody else has (a bare `dropstream db` run);
# under the application or pytest that would replace their handlers and levels.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate = current_app.extensions["migrate"]
engine = migrate.db.engine
url = engine.url.render_as_string(hide_password=False)
config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ini files treat % specially


def target_metadata() -> MetaData:
    return migrate.db.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our column types (``UTCDateTime``) as the plain SQLAlchemy type they store, so a
    migration never imports application code that may change after it was written."""
    if type_ == "type" and isinstance(obj, postgresql.JSONB):
        # Generated on SQLite, Alembic would write JSONB(astext_type=Text()) without the `sa.`.
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.JSONB()"
    if type_ == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl_instance if hasattr(obj, "impl_instance") else obj.impl
        if type(impl).__module__.startswith("sqlalchemy.sql"):
            return f"sa.{impl!r}"
    return False


def run_migrations_offline() -> None:
    """Emit SQL to standard output (``dropstream db upgrade --sql``) instead of running it."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      target_metadata=target_metadata(), render_item=render_item)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def skip_empty_revision(context: Any, revision: Any, directives: list[Any]) -> None:
        # `db migrate` with no model change writes nothing rather than an empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    options = dict(migrate.configure_args)
    options.setdefault("process_revision_directives", skip_empty_revision)
    options.setdefault("render_item", render_item)
    options.setdefault("compare_type", True)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata(), **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
