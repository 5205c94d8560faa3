"""The migration history: one head, and upgrading an empty database yields exactly the models."""

from __future__ import annotations

from pathlib import Path

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from dropstream.app import MIGRATIONS_DIR, create_app
from dropstream.extensions import db


def _scripts() -> ScriptDirectory:
    config = Config(str(Path(MIGRATIONS_DIR) / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def test_the_history_has_a_single_head() -> None:
    heads = _scripts().get_heads()
    assert len(heads) == 1, f"several heads {heads}: merge them with `dropstream db merge heads`"


def test_upgrade_from_empty_matches_the_models(app_config: dict[str, object],
                                               fresh_database_url: str) -> None:
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": fresh_database_url}, env={},
                     load_entry_points=False)
    with app.app_context():
        try:
            flask_migrate.upgrade()
            with db.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                differences = compare_metadata(context, db.metadata)
            assert differences == [], (
                "the models and the migrations differ; add a revision with "
                "`dropstream db migrate -m '...'` (see README, Development)"
            )

            flask_migrate.downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        finally:
            db.engine.dispose()
