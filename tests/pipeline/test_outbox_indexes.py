"""The running system finds pending work through indexes over pending rows alone: what a store's
next webhook, a job's lease or the relay scans grows with the backlog, never with the weeks of
history the outbox keeps. Checked on the plans the database makes for the statements as
DropStream sends them (on PostgreSQL, the generic plan a prepared statement ends up with, which
cannot know what its parameters will be)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, insert, select

from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.jobs.outbox import add_work, another_running, lease, relay_due_work, take_along
from dropstream.tenants.scope import unscoped
from tests.pipeline.conftest import Loop

HISTORY = 3000


@contextmanager
def _sent() -> Iterator[list[tuple[str, Any]]]:
    """The outbox statements the engine sends meanwhile, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def on_execute(_conn: object, _cursor: object, statement: str, parameters: Any,
                   *_args: object) -> None:
        if "outbox" in statement and not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE")):
            sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)


def _plan(statement: str, parameters: Any) -> str:
    """The database's plan for ``statement``: SQLite's query plan, or PostgreSQL's generic plan
    (the statement prepared with its parameters unknown, as psycopg prepares a statement it
    has run five times)."""
    raw = db.session.connection().connection.driver_connection
    if db.engine.dialect.name == "sqlite":
        rows = raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
        return "\n".join(str(row[-1]) for row in rows)
    import psycopg

    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", placeholder, statement)
    cursor = psycopg.ClientCursor(raw)
    cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    cursor.execute(f"PREPARE outbox_plan AS {prepared}")
    try:
        arguments = ", ".join(["%s"] * len(names))
        cursor.execute(f"EXPLAIN EXECUTE outbox_plan({arguments})", [parameters[n] for n in names])
        return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        cursor.execute("DEALLOCATE outbox_plan")


def _history_and_backlog(loop: Loop) -> None:
    """Weeks of a store's done work, and a backlog waiting behind it."""
    store = loop.store
    long_ago = utcnow() - timedelta(days=20)
    common = dict(provider_id=store.provider_id, merchant_id=store.merchant_id,
                  store_id=store.id, queue="default", payload={"external_id": "1"})
    rows = [dict(common, kind="order.forward", subject_id=n, dedupe_key=f"done:{n}",
                 state=OutboxState.DONE, attempts=1, run_after=long_ago, created_at=long_ago,
                 finished_at=long_ago + timedelta(seconds=n)) for n in range(HISTORY)]
    rows += [dict(common, kind="order.refresh", subject_id=store.id, dedupe_key=f"wait:{n}",
                  state=OutboxState.PENDING, attempts=0, run_after=utcnow() - timedelta(seconds=5),
                  created_at=utcnow()) for n in range(20)]
    with unscoped(db.session):
        db.session.execute(insert(OutboxItem), rows)
        db.session.commit()


def test_pending_work_is_found_through_indexes_over_pending_rows(loop: Loop) -> None:
    _history_and_backlog(loop)
    store = loop.store
    with unscoped(db.session):
        newest_waiting = db.session.scalar(select(func.max(OutboxItem.id)).where(
            OutboxItem.dedupe_key.like("wait:%")))
        db.session.commit()
    with _sent() as sent, unscoped(db.session):
        add_work(db.session, kind="order.refresh", subject_id=store.id, store_id=store.id,
                 merchant_id=store.merchant_id, provider_id=store.provider_id,
                 dedupe_key="new", payload={"external_id": "2"})  # a webhook's: is there room?
        db.session.commit()
        added = len(sent)
        leased = lease(db.session, newest_waiting)
        assert leased is not None
        leased_at = len(sent)
        assert take_along(db.session, leased, 5, timedelta(minutes=1))
        # What a job going through a backlog takes: rows with no job on the way, and for work
        # that runs alone, whether another worker runs each one's subject (here the leased
        # row's own subject: each is let go again).
        assert not take_along(db.session, leased, 5, timedelta(minutes=1),
                              undispatched_only=True, runs_alone=True)
        taken_at = len(sent)
        another_running(db.session, kind="order.refresh", subject_id=store.id, outbox_id=leased.id)
        asked_at = len(sent)
        db.session.commit()
        relay_due_work()
        db.session.rollback()

    def plans(start: int, end: int) -> str:
        return "\n".join(_plan(*sent[i]) for i in range(start, end)
                         if not sent[i][0].lstrip().upper().startswith(("COMMIT", "BEGIN")))

    # A webhook's question (is there room for the store's work?) goes through the store's
    # pending rows; a lease takes its row by id.
    assert "ix_outbox_pending_store" in plans(0, added)
    assert _indexes(plans(added, leased_at)) == {"pk_outbox"}
    # Taking rows along, asking whether a subject's work runs, and the relay's look for due
    # work go through pending rows only: never the whole table, nor the done rows' index.
    for rest in (plans(leased_at, taken_at), plans(taken_at, asked_at), plans(asked_at, len(sent))):
        assert _indexes(rest) and _indexes(rest) <= OVER_PENDING_ROWS, rest
        assert not re.search(r"Seq Scan on outbox|SCAN outbox(?! USING)", rest), rest


#: The indexes of pending rows alone (and the primary key, for a row by id).
OVER_PENDING_ROWS = {"pk_outbox", "ix_outbox_pending_due", "ix_outbox_pending_store",
                     "ix_outbox_pending_subject", "uq_outbox_pending_dedupe_key"}


def _indexes(plan: str) -> set[str]:
    """The outbox indexes a plan uses (SQLite calls the primary key by its kind)."""
    found = set(re.findall(r"\b(?:ix|uq|pk)_outbox\w*", plan))
    return found | ({"pk_outbox"} if "INTEGER PRIMARY KEY" in plan else set())
