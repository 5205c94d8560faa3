"""Shared fixtures: an app on the embedded default (SQLite, in-process queue) or, when
``DATABASE_URL`` / ``REDIS_URL`` are set (as CI does), on real PostgreSQL and Redis.

Each test session gets its own database (a fresh PostgreSQL database or SQLite file); each test
starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from werkzeug.serving import make_server

from dropstream.app import create_app
from dropstream.extensions import db
from dropstream.testing import plugin as reference_plugin
from dropstream.testing.databases import scratch_database

TEST_KEYS = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database(os.environ.get("DATABASE_URL"), tmp_path_factory.mktemp("db"),
                          "dropstream_test") as url:
        yield url


@pytest.fixture(scope="session")
def _schema(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    app = create_app(_test_config(database_url, tmp_path_factory.mktemp("instance")),
                     env={}, load_entry_points=False)
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return database_url


def _test_config(database_url: str, instance: object) -> dict[str, object]:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "ENCRYPTION_KEYS": list(TEST_KEYS),
        "INSTANCE_PATH": str(instance),
        "PUBLIC_BASE_URL": "http://dropstream.test",
        # Connectors under test talk to sandboxes on loopback.
        "ALLOW_LOOPBACK": True,
        "TESTING": True,
    }


@pytest.fixture
def app_config(_schema: str, tmp_path: object) -> dict[str, object]:
    """Override entries of this dict in a test (before using ``app``) to change the config."""
    return _test_config(_schema, tmp_path)


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[object]:
    with running_app(app_config, plugins=[("reference", reference_plugin)]) as app:
        yield app


@contextlib.contextmanager
def running_app(config: dict[str, object], *, empty: bool = True, load_entry_points: bool = False,
                **options: Any) -> Iterator[Any]:
    """``create_app(config, **options)`` in its context, on empty tables (unless ``empty=False``:
    the same database under other settings, as after a restart); closed down afterwards. Plugin
    tests pass their ``plugins``, or ``load_entry_points=True`` for DropStream as installed."""
    app = create_app(config, env={}, load_entry_points=load_entry_points, **options)
    with app.app_context():
        if empty:
            _empty_everything(app)
        try:
            yield app
        finally:
            db.session.remove()
            app.extensions["dropstream"].queue.close()
            db.engine.dispose()


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """The app on a free loopback port; also its PUBLIC_BASE_URL meanwhile, so the sandboxes'
    webhooks, pushes and callbacks reach it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="live-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    previous, app.config["PUBLIC_BASE_URL"] = app.config["PUBLIC_BASE_URL"], base
    try:
        yield base
    finally:
        app.config["PUBLIC_BASE_URL"] = previous
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _empty_everything(app: object) -> None:
    # DELETE, children first, not TRUNCATE: a test's few rows go in about 10 ms, where a
    # TRUNCATE of every table (new files for each, on PostgreSQL) took 0.4 s, about a minute of
    # the suite. Ids start again at 1, as they did after TRUNCATE … RESTART IDENTITY.
    tables = list(reversed(db.metadata.sorted_tables))
    with db.engine.begin() as connection:
        for table in tables:
            connection.execute(table.delete())
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT setval(oid::regclass, 1, false) FROM pg_class "
                                    "WHERE relkind = 'S'"))
    queue = app.extensions["dropstream"].queue  # type: ignore[attr-defined]
    if hasattr(queue, "connection"):
        queue.connection.flushdb()


@pytest.fixture
def client(app: object) -> object:
    return app.test_client()  # type: ignore[attr-defined]


@pytest.fixture
def runner(app: object) -> object:
    return app.test_cli_runner()  # type: ignore[attr-defined]


@pytest.fixture
def fresh_database_url(tmp_path: object) -> Iterator[str]:
    """An empty database of the same kind as the session's (a new PostgreSQL database when
    ``DATABASE_URL`` is set, else a new SQLite file), for tests that build a schema themselves
    (migrations, the demo); dropped afterwards."""
    with scratch_database(os.environ.get("DATABASE_URL"), tmp_path, "dropstream_fresh") as url:  # type: ignore[arg-type]
        yield url
