"""PostgreSQL connections in the pool: one the database dropped while it sat idle (a restart, a
failover, an idle timeout) is replaced before anyone uses it; one in steady use is not tested
on every checkout (that would be a round trip per transaction)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from dropstream import app as app_module
from dropstream.extensions import db

pytestmark = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL") or "").startswith("postgres"),
    reason="the pool of the embedded default's SQLite file has nothing to drop: CI's "
    "PostgreSQL + Redis run executes this")


def _pooled_connection_killed_by_the_server() -> None:
    """Leave one connection in the pool whose server process has been terminated."""
    db.session.remove()
    db.engine.dispose()
    killer = db.engine.connect()
    with db.engine.connect() as doomed:
        pid = doomed.scalar(text("SELECT pg_backend_pid()"))
        doomed.rollback()
    # Back in the pool (its reset done) before the server drops it, as a restart would.
    killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.commit()
    killer.close()  # the pool hands out the oldest first: the dropped one


def test_a_connection_the_database_dropped_while_idle_is_replaced_unseen(
        app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "IDLE_BEFORE_TEST_SECONDS", 0.0)
    _pooled_connection_killed_by_the_server()

    with db.engine.connect() as connection:
        assert connection.scalar(text("SELECT 1")) == 1


def test_a_connection_in_steady_use_is_not_tested_on_every_checkout(
        app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "IDLE_BEFORE_TEST_SECONDS", 3600.0)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: statements.append(statement))
    for _ in range(3):
        with db.engine.connect() as connection:
            connection.scalar(text("SELECT 1"))
    assert statements == ["SELECT 1"] * 3

    # What that trades: a connection dropped within the last moment fails once, and SQLAlchemy
    # then discards the pool, so the next checkout is a fresh connection.
    _pooled_connection_killed_by_the_server()
    with pytest.raises(OperationalError), db.engine.connect() as connection:
        connection.scalar(text("SELECT 1"))
    with db.engine.connect() as connection:
        assert connection.scalar(text("SELECT 1")) == 1
