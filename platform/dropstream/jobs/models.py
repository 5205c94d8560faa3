"""The outbox (pending work, the durable truth behind the queue) and the webhook inbox."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dropstream.db import JSONType, MerchantOwned, StrEnum, UTCDateTime, utcnow
from dropstream.extensions import db


class OutboxState(str, enum.Enum):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"  # a transient failure outlived its retries; the subject says what happened


#: The predicates of the outbox's partial indexes, as SQL. A query meant to use one must say it
#: in these words (``IS_PENDING`` / ``IS_DONE`` below), not with a bound parameter: a prepared
#: statement's generic plan cannot know that a parameter will be 'pending'.
PENDING_ROWS = "state = 'pending'"
DONE_ROWS = "state = 'done'"
#: Pending rows no worker has started: the rows ``dedupe_key`` is unique among.
NOT_STARTED_ROWS = "state = 'pending' AND leased_until IS NULL"


def _partial(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    return Index(name, *columns, unique=unique, sqlite_where=text(where),
                 postgresql_where=text(where))


class OutboxItem(MerchantOwned, db.Model):
    """One unit of follow-up work, written in the same transaction as the change needing it.

    A queue (RQ or the in-process one) only carries ``outbox_id``; if Redis loses the job, the
    relay sees a pending row with an expired lease and enqueues it again. ``dedupe_key`` is unique
    among pending rows no worker has started (``leased_until`` is NULL until the first lease and
    never again after it), so asking twice for the same waiting work adds nothing.

    Every query of the running system looks for pending rows (or one row by id), and pending
    rows are a backlog's worth while done ones are the history of weeks: they are found through
    indexes over pending rows alone, so that what a query scans grows with the backlog, not
    with the history, and no plan can mistake one for the other (a lease by id once went through
    an index of every pending row while the table had no statistics yet).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        _partial("uq_outbox_pending_dedupe_key", "dedupe_key", where=NOT_STARTED_ROWS,
                 unique=True),
        # The relay's due rows; a store's work in flight, waiting, to take along or release;
        # whether a subject's work runs; and the history the clean-up deletes.
        _partial("ix_outbox_pending_due", "run_after", where=PENDING_ROWS),
        _partial("ix_outbox_pending_store", "store_id", "kind", where=PENDING_ROWS),
        _partial("ix_outbox_pending_subject", "subject_id", "kind", where=PENDING_ROWS),
        _partial("ix_outbox_done", "finished_at", where=DONE_ROWS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Not indexed on its own: only pending rows are looked up by store (ix_outbox_pending_store),
    # and a store deleted with its work, rare, may scan a table the clean-up keeps to weeks.
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(32), default="default")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[OutboxState] = mapped_column(
        StrEnum(OutboxState, 16), default=OutboxState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: When it was last handed to the queue; re-dispatched if no worker took it in time.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: While a worker holds the item; the relay leaves it alone until this passes.
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


#: ``state = 'pending'`` / ``state = 'done'`` as the partial indexes say it (see PENDING_ROWS).
IS_PENDING = OutboxItem.__table__.c.state == literal_column("'pending'")
IS_DONE = OutboxItem.__table__.c.state == literal_column("'done'")


@dataclass(frozen=True)
class LeasedWork:
    """An outbox row as its worker leased it: what a job's handler is given.

    Handlers read their work and never change its row (the runner records how it ended), so
    a copy taken from the lease serves them, with no ORM object to load again after the lease
    is committed.
    """

    id: int
    kind: str
    store_id: int | None
    subject_id: int | None
    dedupe_key: str
    payload: dict[str, Any]
    attempts: int
    provider_id: int
    merchant_id: int
    #: When it became due: how long it waited for a worker tells of a backlog.
    run_after: datetime

    @classmethod
    def of(cls, item: OutboxItem) -> LeasedWork:
        return cls(**{name: getattr(item, name) for name in cls.__dataclass_fields__})


class InboxEvent(MerchantOwned, db.Model):
    """A webhook as received, committed before it is acknowledged. ``event_key`` identifies the
    sender's event across its redeliveries (BigCommerce: scope, time and ``hash``) and is unique
    per store."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (UniqueConstraint("store_id", "event_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    event_key: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: Indexed for the history's clean-up (``jobs/retention.py``), which deletes the oldest.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(200))
