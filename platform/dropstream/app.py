"""The application factory: ``create_app`` builds everything; importing this module does nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import click
from flask import Flask
from sqlalchemy import event

from dropstream.config import finalize_secrets, load_settings
from dropstream.extensions import db, migrate
from dropstream.plugins import ConnectorRegistry, build_plugin_manager
from dropstream.security.secrets import SecretBox
from dropstream.state import DropStreamState
from dropstream.tenants.scope import install_backstop

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def create_app(
    config: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    plugins: Iterable[tuple[str, ModuleType | object]] = (),
    load_entry_points: bool = True,
) -> Flask:
    """Build a DropStream application.

    :param config: overrides applied after the environment (tests pass their database URL here).
    :param env: read settings from this mapping instead of ``os.environ`` + ``.env``.
    :param plugins: ``(name, module)`` pairs registered before the entry points (tests use this
        for the reference connectors).
    :param load_entry_points: False to load only ``plugins`` (isolated tests).
    :raises dropstream.config.ConfigError: a setting is missing or malformed (the message says
        which and how to fix it).
    """
    settings = load_settings(env)
    settings.update(config or {})
    finalize_secrets(settings)

    app = Flask("dropstream", instance_path=settings["INSTANCE_PATH"], instance_relative_config=False)
    app.config.update(settings)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(settings["SQLALCHEMY_DATABASE_URI"]))
    app.config.setdefault("JOBS_INLINE_WORKERS", 2)
    app.config.setdefault("JOBS_START_IN_PROCESS", False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    _configure_logging(app)

    if settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(settings["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    from dropstream import models  # noqa: F401  (every table on the metadata)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    install_backstop(db.Model)
    session_class = db.session.session_factory.class_
    _dispatch_outbox_after_commit(session_class)
    from dropstream.jobs.runner import hold_for_next_step
    from dropstream.tenants import rls

    if not event.contains(session_class, "after_begin", rls.on_begin):
        event.listen(session_class, "after_begin", rls.on_begin)
    if not event.contains(session_class, "loaded_as_persistent", hold_for_next_step):
        event.listen(session_class, "loaded_as_persistent", hold_for_next_step)
    with app.app_context():
        rls.install(db.engine)
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
            event.listen(db.engine, "begin", _sqlite_begin_immediate)
        elif not app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping"):
            _test_connections_left_idle(db.engine)

    pm, loaded = build_plugin_manager(
        allow=settings["PLUGINS_ALLOW"], disable=settings["PLUGINS_DISABLE"],
        extra=plugins, load_entry_points=load_entry_points,
    )
    from dropstream.jobs.queue import build_queue

    app.extensions["dropstream"] = DropStreamState(
        plugin_manager=pm,
        plugins=loaded,
        connectors=ConnectorRegistry.from_plugin_manager(pm),
        secrets=SecretBox(settings["ENCRYPTION_KEYS"]),
        queue=build_queue(app),
    )

    from dropstream.api import init_api
    from dropstream.health import bp as health_bp
    from dropstream.observability import metrics

    app.register_blueprint(health_bp)
    app.register_blueprint(metrics.bp)
    metrics.observe_requests(app)
    app.before_request(_begin_log_context)
    init_api(app)
    from dropstream.console import init_console

    init_console(app)
    for blueprints in pm.hook.register_blueprints():
        for blueprint in blueprints or []:
            app.register_blueprint(blueprint)
    # Plugin commands join this app's own group, which the `dropstream` FlaskGroup merges in
    # when it loads the app: same plugins as the app, nothing registered process-wide.
    from dropstream.cli.database import app_role_command

    app.cli.commands["db"].add_command(app_role_command)  # Flask-Migrate's group: `db app-role`
    # Sandboxes of every plugin share one group: `dropstream sandbox bigcommerce`, `… wms`.
    app.cli.add_command(click.Group("sandbox", help="Run a sandbox standing in for a remote "
                                    "system (for the demo, tests and benchmarks)."))
    pm.hook.register_commands(cli=app.cli)
    return app


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Worker threads share the file with the web process: wait for locks instead of failing.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    # Connections are tested before use only after they sat idle (see below), not on every
    # checkout: that is every transaction, and the test is a round trip of its own.
    return {"pool_size": 10, "max_overflow": 10}


#: A pooled connection unused for this long is tested before it is handed out again.
IDLE_BEFORE_TEST_SECONDS = 1.0


def _test_connections_left_idle(engine: Any) -> None:
    """Test a pooled connection before use (the dialect's ping; a dead one is replaced,
    transparently) only when it sat in the pool longer than :data:`IDLE_BEFORE_TEST_SECONDS`.

    A database restart or failover kills every connection while it is down, and testing the
    long-idle ones finds that before a request or a job does. Under load a connection comes
    back to work within milliseconds and the test would cost a round trip per transaction
    (about ten per order). What a connection used less than a second ago meets instead is at
    worst one failed statement per process, after which SQLAlchemy discards the whole pool: a
    request answered 500 (the sender retries) or a job retried, as a restart mid-statement
    gives anyway.
    """
    from sqlalchemy.exc import DisconnectionError

    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_TEST_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(str(error)) from error
        if not alive:
            raise DisconnectionError("the pooled connection is closed")

    event.listen(engine.pool, "checkin", checked_in)
    event.listen(engine.pool, "checkout", checked_out)


def _begin_log_context() -> None:
    from uuid import uuid4

    from dropstream.observability import context

    context.start(request_id=uuid4().hex[:12])


def _dispatch_outbox_after_commit(session_class: Any) -> None:
    """Queue outbox work and deliver plugin notifications only once their transaction commits;
    then too, make every process forget what it remembers of senders whose rows changed."""
    if not event.contains(session_class, "after_commit", _after_commit):
        from dropstream.stores.credentials import note_changed_senders

        event.listen(session_class, "after_flush", note_changed_senders)
        event.listen(session_class, "after_commit", _after_commit)
        event.listen(session_class, "after_soft_rollback", _after_rollback)
        event.listen(session_class, "after_transaction_create", _mark_savepoint)
        event.listen(session_class, "after_transaction_end", _forget_savepoint_marks)


def _after_commit(session: Any) -> None:
    # SQLAlchemy also fires after_commit when a SAVEPOINT is released; only the outermost
    # commit makes rows visible to workers.
    if session.in_nested_transaction():
        return
    from dropstream import events
    from dropstream.jobs import outbox
    from dropstream.security import senders

    senders.forget_committed(session)
    outbox.dispatch_committed(session)
    events.deliver_committed(session)


#: Per savepoint, how much work and how many announcements the session held when it began.
_SAVEPOINT_MARKS = "dropstream.savepoint_marks"


def _mark_savepoint(session: Any, transaction: Any) -> None:
    if transaction.nested:
        from dropstream import events
        from dropstream.jobs import outbox

        session.info.setdefault(_SAVEPOINT_MARKS, {})[id(transaction)] = (
            outbox.uncommitted_mark(session), events.uncommitted_mark(session))


def _forget_savepoint_marks(session: Any, transaction: Any) -> None:
    # Only when the outermost transaction ends: SQLAlchemy ends a savepoint before it reports
    # its rollback.
    if transaction.parent is None:
        session.info.pop(_SAVEPOINT_MARKS, None)


def _after_rollback(session: Any, previous_transaction: Any) -> None:
    from dropstream import events
    from dropstream.jobs import outbox
    from dropstream.security import senders

    if previous_transaction.nested:
        # A rolled-back savepoint: the outer transaction's work still stands, but what the
        # savepoint asked for went with its rows (an announced import that did not happen).
        marks = session.info.get(_SAVEPOINT_MARKS, {}).pop(id(previous_transaction), None)
        if marks is not None:
            outbox.forget_uncommitted(session, since=marks[0])
            events.forget_uncommitted(session, since=marks[1])
        return
    outbox.forget_uncommitted(session)
    events.forget_uncommitted(session)
    senders.forget_rolled_back(session)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, issue BEGIN (savepoints need it; see below).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # The embedded default runs worker threads beside the web app. A deferred transaction that
    # later writes can fail at once with "database is locked"; taking the write lock up front
    # makes writers queue behind the busy timeout instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _configure_logging(app: Flask) -> None:
    from dropstream.observability import logs

    level = getattr(logging, app.config["LOG_LEVEL"], logging.INFO)
    logs.configure(level, json_lines=app.config.get("LOG_FORMAT") == "json")
    app.logger.setLevel(level)
