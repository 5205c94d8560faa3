"""Writing outbox rows in the caller's transaction, and relaying due rows to the queue.

``add_work`` is how any service asks for follow-up work: it inserts a pending row in the current
transaction (so the work exists if and only if the change that needs it was committed) and, once
the transaction commits, dispatches it straight away unless its store already has its share of
work in flight. ``relay_due_work`` (run by the scheduler every second) dispatches everything else
that is due, round-robin across stores, and re-dispatches rows whose job was lost.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    case,
    func,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, scoped_session

from dropstream.db import UTCDateTime, insert_unless_conflict, utcnow
from dropstream.extensions import db
from dropstream.jobs.models import (
    IS_PENDING,
    NOT_STARTED_ROWS,
    LeasedWork,
    OutboxItem,
    OutboxState,
)
from dropstream.state import get_state

log = logging.getLogger(__name__)

#: How long a dispatched row waits for a worker before the relay dispatches it again.
DISPATCH_LEASE = timedelta(seconds=60)
#: How long a worker holds a row; a crashed worker's rows come back after this. It outlasts any
#: job (``queue.JOB_TIMEOUT``), as nothing renews it: the embedded default's worker threads.
RUN_LEASE = timedelta(seconds=300)
#: Worker processes on PostgreSQL hold a row this long instead, renewed every
#: ``HEARTBEAT_SECONDS`` while its handler runs (``jobs/heartbeat.py``): a killed worker's rows
#: come back within a minute.
HEARTBEAT_LEASE = timedelta(seconds=60)
HEARTBEAT_SECONDS = 15.0
#: Work in flight per store at once; the rest waits its turn so one store cannot starve others.
STORE_IN_FLIGHT_CAP = 8
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0
_SESSION_KEY = "dropstream.outbox.dispatch"
#: Set while a worker runs an item: work committed meanwhile is collected here for the runner,
#: which runs the first follow-up itself and dispatches the rest (``runner.run_outbox_item``).
_FOLLOW_UP_KEY = "dropstream.outbox.follow_up"
#: The next step a running job leased in its last transaction, until that commits.
_CLAIMED_KEY = "dropstream.outbox.claimed"
#: Set while a worker runs the next steps of a job that waited in a backlog.
_AFTER_BACKLOG_KEY = "dropstream.outbox.after_backlog"
#: Work that waited this long for a worker after it became due is part of a backlog: only then
#: does its job look for more of its kind waiting behind it (:func:`take_along`), so that an
#: idle pipeline pays no query for it.
BACKLOG_WAIT = timedelta(seconds=0.5)


def add_work(
    session: Session,
    *,
    kind: str,
    merchant_id: int,
    provider_id: int,
    store_id: int | None = None,
    subject_id: int | None = None,
    dedupe_key: str | None = None,
    queue: str = "default",
    payload: dict[str, Any] | None = None,
    delay: timedelta | None = None,
    new_subject: bool = False,
) -> None:
    """Ask for ``kind`` to run for ``subject_id``; a no-op while the same work waits unstarted.

    ``new_subject``: the subject was created in the caller's transaction (an import's new
    order), so no work for it can be running anywhere: a job claiming this as its next step
    need not ask (:func:`claim_next_step`)."""
    now = utcnow()
    dedupe_key = dedupe_key or f"{kind}:{subject_id}"
    values = dict(
        provider_id=provider_id, merchant_id=merchant_id, store_id=store_id, kind=kind,
        subject_id=subject_id, dedupe_key=dedupe_key, queue=queue, payload=payload or {},
        state=OutboxState.PENDING, attempts=0, run_after=now + (delay or timedelta()),
        created_at=now,
    )
    # Work is de-duplicated only against requests no worker has started: a request arriving
    # while the same work runs (a second webhook while the first re-read is in flight) may
    # carry news the running one missed, so it becomes work of its own. The partial index's
    # own predicate, as SQL, so that prepared statements match it.
    insert = _returning_dispatch(insert_unless_conflict(session, OutboxItem, ("dedupe_key",),
                                                        index_where=NOT_STARTED_ROWS))
    if delay is None and (store_id is None or _continues_running_job(session, store_id)):
        values["dispatched_at"] = now
    elif delay is None:
        # Dispatched now only if the store has room and none of its work waits for the relay
        # (else it waits behind that work): asked in the same statement, so a webhook's work
        # costs one round trip.
        insert = _insert_if_store_has_room(insert)
        values.update(room_store_id=store_id, room_now=now,
                      room_dispatched_after=now - DISPATCH_LEASE)
    row = session.execute(insert, values).first()
    if row is not None and row.dispatched_at is not None:
        outbox_id = row.id
        session.info.setdefault(_SESSION_KEY, []).append((outbox_id, queue))
        follow_ups = session.info.get(_FOLLOW_UP_KEY)
        if follow_ups is not None:
            follow_ups.added[outbox_id] = (kind, subject_id, new_subject)


@cache
def _returning_dispatch(insert: Insert) -> Insert:
    """``insert`` also returning ``dispatched_at`` (None: the row waits for the relay)."""
    return insert.returning(OutboxItem.__table__.c.dispatched_at)


@cache
def _insert_if_store_has_room(insert: Insert) -> Insert:
    """``insert`` setting ``dispatched_at`` to ``room_now`` when fewer than
    :data:`STORE_IN_FLIGHT_CAP` rows of store ``room_store_id`` are in flight and none of its
    due rows waits undispatched, else NULL. Built once per database (see
    :func:`dropstream.db.insert_unless_conflict`).

    Where a store's work already waits for the relay (a flash sale's backlog), new work waits
    behind it rather than jumping it with a queue job of its own: the relay hands it out
    oldest first, and the job that runs it takes along the rest of its kind waiting for the
    store (:func:`take_along`). Measured at capacity, that turned about a fifth of the imports
    from one order a job (about 14 ms of a worker's CPU each) into batches (3–6 ms an order)."""
    outbox = OutboxItem.__table__
    in_flight = select(func.count()).select_from(outbox).where(
        outbox.c.store_id == bindparam("room_store_id"),
        IS_PENDING,
        or_(outbox.c.dispatched_at > bindparam("room_dispatched_after", type_=UTCDateTime()),
            outbox.c.leased_until > bindparam("room_now", type_=UTCDateTime())),
    ).scalar_subquery()
    waiting = select(outbox.c.id).where(
        outbox.c.store_id == bindparam("room_store_id"),
        IS_PENDING,
        outbox.c.dispatched_at.is_(None),
        outbox.c.leased_until.is_(None),
        outbox.c.run_after <= bindparam("room_now", type_=UTCDateTime()),
    ).exists()
    when_room = case((and_(in_flight < STORE_IN_FLIGHT_CAP, ~waiting),
                      bindparam("room_now", type_=UTCDateTime())), else_=null())
    return insert.values(dispatched_at=when_room)


def dispatch_committed(session: Session) -> None:
    """After a commit: hand the rows added in it to the queue (the relay covers any failure),
    or, inside a running job, to the runner (:func:`collect_follow_ups`)."""
    items = session.info.pop(_SESSION_KEY, None)
    claimed = session.info.pop(_CLAIMED_KEY, None)
    follow_ups = session.info.get(_FOLLOW_UP_KEY)
    if follow_ups is not None:
        if claimed is not None:
            follow_ups.claimed = claimed
        follow_ups.items.extend(items or ())
    elif items:
        get_state().queue.dispatch(items)


@dataclass
class FollowUps:
    """What a running job's commits dispatched, for the runner to run or queue."""

    #: The running item, once it is leased.
    running: LeasedWork | None = None
    items: list[tuple[int, str]] = field(default_factory=list)
    #: Whether the job already added the one piece of work that continues it.
    continued: bool = False
    #: The kind and subject of each row the job added and dispatched, and whether the subject
    #: is new (for :func:`claim_next_step`).
    added: dict[int, tuple[str, int | None, bool]] = field(default_factory=dict)
    #: Whether this worker may run the job's next step itself (it has not chained too many).
    may_claim: bool = True
    #: The next step, leased for this worker in the job's last commit (once that committed).
    claimed: LeasedWork | None = None
    #: Rows taken along (:func:`take_along`) that the job's last commit marks done with it.
    done_along: int = 0


@contextmanager
def collect_follow_ups(session: Session, may_claim: bool) -> Iterator[FollowUps]:
    """While a job runs: the ``(outbox_id, queue)`` pairs its commits dispatch are gathered
    instead of being queued, and the next step it claimed (:func:`claim_next_step`, only if
    ``may_claim``) is kept. The caller owns them (runs or dispatches them)."""
    follow_ups = FollowUps(may_claim=may_claim)
    session.info[_FOLLOW_UP_KEY] = follow_ups
    try:
        yield follow_ups
    finally:
        session.info.pop(_FOLLOW_UP_KEY, None)


def running_job(session: Session, item: LeasedWork) -> None:
    """The runner tells which item it leased."""
    follow_ups = session.info.get(_FOLLOW_UP_KEY)
    if follow_ups is not None:
        follow_ups.running = item


def _continues_running_job(session: Session, store_id: int | None) -> bool:
    """The first piece of work a job adds for its own store is the job's next step: it takes
    the job's place in the store's share of workers instead of waiting for room."""
    follow_ups = session.info.get(_FOLLOW_UP_KEY)
    if (follow_ups is None or follow_ups.continued or store_id is None
            or follow_ups.running is None or follow_ups.running.store_id != store_id):
        return False
    follow_ups.continued = True
    return True


def claim_next_step(session: Session, hold: timedelta,
                    runs_alone: Callable[[str], bool]) -> LeasedWork | None:
    """In a running job's last transaction, before it commits: when the job added exactly one
    piece of work (in this transaction, none in an earlier commit), lease it for this worker
    for ``hold`` and take it out of what the commit dispatches, so that the worker runs it next
    without a transaction of its own for the lease. None otherwise, and for a kind that
    ``runs_alone`` while another worker runs the same work for the same subject (the row is
    then dispatched, and its own job finds the subject busy: the runner's path).

    Once the commit succeeds, the runner finds the row as the job's ``FollowUps.claimed``; if
    it fails, the lease goes with it. If the worker dies after the commit, the lease runs out
    and the relay dispatches the row, as for any leased row.
    """
    follow_ups = session.info.get(_FOLLOW_UP_KEY)
    pending = session.info.get(_SESSION_KEY)
    if (follow_ups is None or not follow_ups.may_claim or follow_ups.items
            or not pending or len(pending) != 1):
        return None
    outbox_id, _queue = pending[0]
    kind, subject_id, new_subject = follow_ups.added.get(outbox_id, ("", None, False))
    if runs_alone(kind) and not new_subject and another_running(
            session, kind=kind, subject_id=subject_id, outbox_id=outbox_id):
        return None
    leased = lease(session, outbox_id, hold, commit=False)
    if leased is not None:
        pending.clear()
        session.info[_CLAIMED_KEY] = leased
    return leased


def uncommitted_mark(session: Session) -> int:
    """How much work the session's transaction has added so far (for :func:`forget_uncommitted`)."""
    return len(session.info.get(_SESSION_KEY, ()))


def forget_uncommitted(session: Session, since: int | None = None) -> None:
    """Drop the work added since ``since`` (a savepoint's start; by default the whole
    transaction's, and its claimed next step): its rows were rolled back."""
    if since is not None:
        del session.info.get(_SESSION_KEY, [])[since:]
        return
    session.info.pop(_SESSION_KEY, None)
    session.info.pop(_CLAIMED_KEY, None)


def relay_due_work(limit: int = 200) -> int:
    """Dispatch due pending rows with no live job, fairly across stores. Returns how many."""
    from dropstream.stores.models import WORKING_STATES, Store

    session = db.session
    now = utcnow()
    in_flight = (
        select(OutboxItem.store_id, func.count().label("n"))
        .where(
            IS_PENDING,
            or_(OutboxItem.dispatched_at > now - DISPATCH_LEASE, OutboxItem.leased_until > now),
        )
        .group_by(OutboxItem.store_id)
        .subquery()
    )
    rank = func.row_number().over(partition_by=OutboxItem.store_id, order_by=OutboxItem.id).label("rank")
    due = (
        select(OutboxItem.id, OutboxItem.queue, OutboxItem.store_id, rank,
               func.coalesce(in_flight.c.n, 0).label("busy"))
        .outerjoin(in_flight, in_flight.c.store_id == OutboxItem.store_id)
        .outerjoin(Store, Store.id == OutboxItem.store_id)
        .where(
            IS_PENDING,
            OutboxItem.run_after <= now,
            or_(OutboxItem.dispatched_at.is_(None), OutboxItem.dispatched_at <= now - DISPATCH_LEASE),
            or_(OutboxItem.leased_until.is_(None), OutboxItem.leased_until <= now),
            # A paused or disconnected store's work waits until it is resumed.
            or_(OutboxItem.store_id.is_(None), Store.state.in_(WORKING_STATES)),
        )
        .subquery()
    )
    rows = session.execute(
        select(due.c.id, due.c.queue)
        .where(or_(due.c.store_id.is_(None), due.c.rank + due.c.busy <= STORE_IN_FLIGHT_CAP))
        .order_by(due.c.rank, due.c.id)
        .limit(limit)
    ).all()
    if not rows:
        session.rollback()
        return 0
    ids = [row.id for row in rows]
    session.execute(
        update(OutboxItem)
        .where(OutboxItem.id.in_(ids), OutboxItem.state == OutboxState.PENDING)
        .values(dispatched_at=now)
    )
    session.commit()
    get_state().queue.dispatch([(row.id, row.queue) for row in rows])
    return len(rows)


def backoff_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """Exponential backoff with ±20% jitter, never sooner than the remote asked."""
    seconds = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** max(0, attempts - 1)))
    seconds *= random.uniform(0.8, 1.2)
    if retry_after is not None:
        seconds = max(seconds, retry_after)
    return timedelta(seconds=seconds)


_OUTBOX = OutboxItem.__table__
#: Built once (see :func:`dropstream.db.insert_unless_conflict`): every job starts with it. Its
#: state is a bound parameter on purpose: the row is found by its id, and no index over pending
#: rows must look like a way to it (see ``OutboxItem``).
_LEASE = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("outbox_id"),
        _OUTBOX.c.state == OutboxState.PENDING,
        _OUTBOX.c.run_after <= bindparam("now", type_=UTCDateTime()),
        or_(_OUTBOX.c.leased_until.is_(None), _OUTBOX.c.leased_until <= bindparam("now", type_=UTCDateTime())),
    )
    .values(leased_until=bindparam("until", type_=UTCDateTime()), attempts=_OUTBOX.c.attempts + 1)
    .returning(*(_OUTBOX.c[name] for name in LeasedWork.__dataclass_fields__))
)


def lease(session: Session, outbox_id: int, hold: timedelta = RUN_LEASE,
          commit: bool = True) -> LeasedWork | None:
    """Claim a due pending row for this worker for ``hold`` (a conditional update, committed
    unless ``commit`` is False: the caller commits it, or rolls it back as if never taken),
    or None if it is done, not yet due, or held by another worker."""
    now = utcnow()
    row = session.execute(_LEASE, {"outbox_id": outbox_id, "now": now, "until": now + hold}).one_or_none()
    if commit:
        session.commit()
    return None if row is None else LeasedWork(**row._mapping)


#: Built once: a running item's heartbeat. Only the lease this worker took (its attempt) and
#: only while it is live: a lease that ended (released for a retry, lapsed) is never revived.
_RENEW = update(_OUTBOX).where(
    _OUTBOX.c.id == bindparam("outbox_id"),
    _OUTBOX.c.attempts == bindparam("leased_attempt"),
    _OUTBOX.c.state == OutboxState.PENDING,
    _OUTBOX.c.leased_until > bindparam("now", type_=UTCDateTime()),
).values(leased_until=bindparam("until", type_=UTCDateTime()))


def renew(session: Session, item: LeasedWork, hold: timedelta) -> bool:
    """Extend this worker's lease of ``item`` to ``hold`` from now, committed. False when the
    lease is no longer this worker's to extend."""
    now = utcnow()
    renewed = session.execute(_RENEW, {"outbox_id": item.id, "leased_attempt": item.attempts,
                                       "now": now, "until": now + hold}).rowcount
    session.commit()
    return bool(renewed)


def end_leases(session: Session) -> int:
    """End every live run lease, committed: the work goes again (the relay dispatches it, its
    attempt spent, as a crash spends it). Returns how many. Only for a caller that knows no
    worker runs anywhere: a live worker's lease ended here would let a second one run its work
    (``jobs/sole_runner``: the embedded default starting with no other process running work)."""
    now = utcnow()
    live = list(session.scalars(select(_OUTBOX.c.id).where(
        _OUTBOX.c.state == OutboxState.PENDING, _OUTBOX.c.leased_until > now)))
    if live:  # (no UPDATE otherwise: on SQLite it would wait for the write lock)
        session.execute(update(_OUTBOX).where(_OUTBOX.c.id.in_(live), _OUTBOX.c.leased_until > now)
                        .values(leased_until=now, dispatched_at=None))
    session.commit()
    return len(live)


#: Built once: which of these subjects have work of the kind under another live lease (a row
#: other than the ones asking).
_RUNNING_SUBJECTS = select(_OUTBOX.c.subject_id).where(
    _OUTBOX.c.kind == bindparam("kind"),
    _OUTBOX.c.subject_id.in_(bindparam("subject_ids", expanding=True)),
    _OUTBOX.c.id.not_in(bindparam("outbox_ids", expanding=True)),
    IS_PENDING,
    _OUTBOX.c.leased_until > bindparam("now", type_=UTCDateTime()),
)
#: The transaction locks on (kind, subject) taken in one round trip, in the order given.
_LOCK_SUBJECTS = text("SELECT pg_advisory_xact_lock(hashtext(key)) "
                      "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS asked(key, position) "
                      "ORDER BY position")


def another_running(session: Session, *, kind: str, subject_id: int | None,
                    outbox_id: int) -> bool:
    """Whether work of ``kind`` for ``subject_id`` is running in another worker now (in a row
    other than ``outbox_id``, the row the caller is about to run).

    Asked in the transaction that takes (or has taken, uncommitted) the caller's own lease, and
    answered "no" only to the first asker: on PostgreSQL a transaction lock on (kind, subject)
    is held until the caller commits its lease or rolls it back, so a second asker waits and
    then sees that lease (SQLite has one writer: the uncommitted lease already keeps the second
    out)."""
    return bool(_running_subjects(session, kind, [subject_id], [outbox_id]))


def _running_subjects(session: Session, kind: str, subject_ids: list[int | None],
                      outbox_ids: list[int]) -> set[int | None]:
    """:func:`another_running` for several subjects at once, each asked for rows other than
    ``outbox_ids``: two statements, whatever their number. The locks are taken in the order of
    their keys, the one order every asker follows, so two askers cannot deadlock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_SUBJECTS, {"keys": sorted({f"outbox:{kind}:{subject_id}"
                                                         for subject_id in subject_ids})})
    return set(session.scalars(_RUNNING_SUBJECTS, {
        "kind": kind, "subject_ids": subject_ids, "outbox_ids": outbox_ids, "now": utcnow()}))


#: Built once: a free row made due later (never one another worker has since taken).
_DEFER = update(_OUTBOX).where(
    _OUTBOX.c.id == bindparam("outbox_id"),
    _OUTBOX.c.state == OutboxState.PENDING,
    or_(_OUTBOX.c.leased_until.is_(None), _OUTBOX.c.leased_until <= bindparam("now", type_=UTCDateTime())),
).values(run_after=bindparam("run_after", type_=UTCDateTime()), dispatched_at=None)


def defer(session: Session, outbox_id: int, delay: timedelta) -> None:
    """Make a row no worker holds due again after ``delay`` (the relay dispatches it then),
    committed. A row never started stays one: later asks for the same work fold into it."""
    now = utcnow()
    session.execute(_DEFER, {"outbox_id": outbox_id, "now": now, "run_after": now + delay})
    session.commit()


#: Rows of a kind waiting unstarted for one store, oldest and undispatched first (those have no
#: job on the way yet). Rows another transaction holds are skipped, not waited for (PostgreSQL;
#: SQLite has one writer anyway).
_WAITING_ALONGSIDE = (
    select(_OUTBOX.c.id)
    .where(
        # (Named unlike the columns: an UPDATE reserves those names for its SET clause.)
        _OUTBOX.c.kind == bindparam("taken_kind"),
        _OUTBOX.c.store_id == bindparam("taken_store_id"),
        _OUTBOX.c.merchant_id == bindparam("taken_merchant_id"),
        _OUTBOX.c.id != bindparam("outbox_id"),
        IS_PENDING,
        _OUTBOX.c.leased_until.is_(None),
        _OUTBOX.c.run_after <= bindparam("now", type_=UTCDateTime()),
    )
    .order_by(_OUTBOX.c.dispatched_at.is_not(None), _OUTBOX.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


def _leasing(waiting: Select) -> Update:
    """The rows ``waiting`` selects, leased (built once per selection).

    The selection is a materialized CTE, run once. As a plain ``IN (subquery)`` PostgreSQL may
    plan a nested loop that runs it again for each outbox row: each run re-checks the rows this
    statement has already leased, finds them taken, and locks the next ones past its LIMIT (a
    take-along that asked for 8 rows was measured leasing 86)."""
    picked = waiting.cte("waiting").prefix_with("MATERIALIZED", dialect="postgresql")
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(select(picked.c.id)),
               _OUTBOX.c.state == OutboxState.PENDING, _OUTBOX.c.leased_until.is_(None))
        .values(leased_until=bindparam("until", type_=UTCDateTime()),
                attempts=_OUTBOX.c.attempts + 1)
        .returning(*(_OUTBOX.c[name] for name in LeasedWork.__dataclass_fields__))
    )


_TAKE_ALONG = _leasing(_WAITING_ALONGSIDE)
#: Only rows no job is on the way to: a row whose job is queued is left to that job, which
#: would otherwise be queued and run for nothing.
_TAKE_UNDISPATCHED = _leasing(_WAITING_ALONGSIDE.where(_OUTBOX.c.dispatched_at.is_(None)))
#: Built once: a row taken along let go in the transaction that took it, exactly as it was.
_UNTAKE = update(_OUTBOX).where(
    _OUTBOX.c.id == bindparam("outbox_id"), _OUTBOX.c.attempts == bindparam("leased_attempt"),
).values(leased_until=None, attempts=_OUTBOX.c.attempts - 1)


def waited_in_backlog(item: LeasedWork) -> bool:
    """Whether ``item`` waited for a worker long enough to be part of a backlog."""
    return utcnow() - item.run_after >= BACKLOG_WAIT


def part_of_backlog(session: Session, item: LeasedWork) -> bool:
    """Whether ``item`` is part of a backlog: it waited (:func:`waited_in_backlog`), or it runs
    as a next step of a job that did (:func:`next_steps_after`). An import of a backlog leaves
    a forward per order: the one its worker runs next has not waited, and the rest wait
    behind it."""
    return waited_in_backlog(item) or bool(session.info.get(_AFTER_BACKLOG_KEY))


@contextmanager
def next_steps_after(session: Session, item: LeasedWork | None) -> Iterator[None]:
    """While the worker that ran ``item`` runs its next steps: they are part of a backlog
    when ``item`` waited in one (:func:`part_of_backlog`)."""
    before = session.info.get(_AFTER_BACKLOG_KEY)
    session.info[_AFTER_BACKLOG_KEY] = item is not None and waited_in_backlog(item)
    try:
        yield
    finally:
        session.info[_AFTER_BACKLOG_KEY] = before


def take_along(session: Session, item: LeasedWork, limit: int, hold: timedelta, *,
               undispatched_only: bool = False, runs_alone: bool = False) -> list[LeasedWork]:
    """Lease, for the worker running ``item``, up to ``limit`` other rows of its kind that wait
    unstarted for its store, oldest first (committed, so their own jobs find them taken). A
    job that took them along keeps them alive with its own heartbeat and must end each with
    :func:`finish_taken` in its last commit, or :func:`hand_back` if it fails.

    ``undispatched_only``: only rows with no queue job on the way. ``runs_alone``: the kind's
    work never runs twice at once for one subject, so a row whose subject another worker runs
    now is left waiting (asked as :func:`another_running` asks, under its lock)."""
    if limit <= 0 or item.store_id is None:
        return []
    now = utcnow()
    rows = session.execute(_TAKE_UNDISPATCHED if undispatched_only else _TAKE_ALONG, {
        "taken_kind": item.kind, "taken_store_id": item.store_id,
        "taken_merchant_id": item.merchant_id, "outbox_id": item.id, "now": now, "limit": limit,
        "until": now + hold}).all()
    if not rows:
        return []
    taken = sorted((LeasedWork(**row._mapping) for row in rows), key=lambda row: row.id)
    if runs_alone:
        taken = _let_go_of_running(session, taken)
    session.commit()  # (also when every row was let go: the locks asked under end with it)
    from dropstream.jobs.heartbeat import keep_alongside  # (the heartbeat builds on this module)

    keep_alongside(taken)
    return taken


def _let_go_of_running(session: Session, taken: list[LeasedWork]) -> list[LeasedWork]:
    """In the transaction that took ``taken`` along (rows of one kind): the rows whose subject
    another worker runs now are given up again, untouched (each comes back to a job of its own
    later); the rest are returned. Rows taken together for one subject run one after another
    in this job, never at once, so they do not count as running for each other."""
    running = _running_subjects(session, taken[0].kind, [row.subject_id for row in taken],
                                [row.id for row in taken])
    kept = []
    for row in taken:
        if row.subject_id in running:
            session.execute(_UNTAKE, {"outbox_id": row.id, "leased_attempt": row.attempts})
        else:
            kept.append(row)
    return kept


#: Built once: rows taken along, done with the job's last changes (only the lease it took).
_FINISH_TAKEN = update(_OUTBOX).where(
    _OUTBOX.c.id == bindparam("outbox_id"), _OUTBOX.c.attempts == bindparam("leased_attempt"),
).values(state=OutboxState.DONE, finished_at=bindparam("finished", type_=UTCDateTime()),
         leased_until=None, last_error=None)


def finish_taken(session: Session, taken: list[LeasedWork]) -> None:
    """Mark rows taken along as done, in the running job's transaction (not committed here)."""
    if taken:
        finished = utcnow()
        session.execute(_FINISH_TAKEN, [{"outbox_id": row.id, "leased_attempt": row.attempts,
                                         "finished": finished} for row in taken])
        follow_ups = session.info.get(_FOLLOW_UP_KEY)
        if follow_ups is not None:  # counted as run once the job's last commit succeeds
            follow_ups.done_along += len(taken)


#: Built once: a row taken along handed back (only the lease this job took), its attempt
#: unspent. Released, not "unstarted" again: a new ask for the same work may have come meanwhile,
#: and only one unstarted row per ask may exist.
_HAND_BACK = update(_OUTBOX).where(
    _OUTBOX.c.id == bindparam("outbox_id"), _OUTBOX.c.attempts == bindparam("leased_attempt"),
).values(leased_until=bindparam("now", type_=UTCDateTime()),
         run_after=bindparam("run_after", type_=UTCDateTime()),
         dispatched_at=None, attempts=_OUTBOX.c.attempts - 1)


def hand_back(session: Session, taken: list[LeasedWork], wait: timedelta = timedelta()) -> None:
    """Release rows this worker leased and will not run, committed, their attempt unspent: rows
    taken along by a job that failed (due at once: the relay dispatches each to run on its
    own), or work of a store paused since it was queued (due after ``wait``, or as soon as the
    store is resumed)."""
    if taken:
        now = utcnow()
        session.execute(_HAND_BACK, [{"outbox_id": row.id, "leased_attempt": row.attempts,
                                      "now": now, "run_after": now + wait} for row in taken])
        session.commit()


#: Built once: every job ends with it (with the handler's last changes, in one commit).
_FINISH = update(_OUTBOX).where(_OUTBOX.c.id == bindparam("outbox_id")).values(
    state=bindparam("new_state", type_=_OUTBOX.c.state.type),
    finished_at=bindparam("finished", type_=UTCDateTime()), leased_until=None,
    last_error=bindparam("error", type_=_OUTBOX.c.last_error.type),
)


def finish(session: Session, outbox_id: int, state: OutboxState, error: str | None = None,
           keep_loaded: bool = False) -> None:
    """End a leased row as ``state`` and commit, together with whatever its handler changed.

    ``keep_loaded``: the rows the session holds are not expired by this commit, so the job's
    next step, run at once by the same worker, reads them without loading them again (what it
    changes it still writes with conditional updates, as any step does).
    """
    session.execute(_FINISH, {"outbox_id": outbox_id, "new_state": state, "finished": utcnow(), "error": error})
    if not keep_loaded:
        session.commit()
        return
    plain = session() if isinstance(session, scoped_session) else session
    plain.expire_on_commit = False
    try:
        plain.commit()
    finally:
        plain.expire_on_commit = True


def release_waiting_out(session: Session, warehouse_id: int, after_attempts: dict[str, int]) -> int:
    """The warehouse answers again: make due at once the work of every store linked to it that
    waits out its outage (kinds with at least their ``after_attempts`` spent: beyond their
    ordinary retries), whichever merchant's. System work: it reads and changes no one's data
    but the work's timing. Returns how many rows were released."""
    from dropstream.stores.models import Store
    from dropstream.tenants.scope import unscoped

    now = utcnow()
    stores = select(Store.id).where(Store.warehouse_id == warehouse_id).scalar_subquery()
    waiting_out = or_(*(and_(OutboxItem.kind == kind, OutboxItem.attempts >= attempts)
                        for kind, attempts in after_attempts.items()))
    # Rows another transaction holds are skipped: several pieces of work may go through at
    # once after an outage, each releasing the same rows, and two updates taking overlapping
    # rows in different orders would deadlock. What another holds, it is releasing or running.
    waiting = (select(OutboxItem.id)
               .where(IS_PENDING, OutboxItem.store_id.in_(stores),
                      waiting_out, OutboxItem.run_after > now,
                      or_(OutboxItem.leased_until.is_(None), OutboxItem.leased_until <= now))
               .with_for_update(skip_locked=True))
    with unscoped(session):
        return session.execute(
            update(OutboxItem).where(OutboxItem.id.in_(waiting.scalar_subquery()))
            .values(run_after=now, dispatched_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount


def release_for_stores(session: Session, store_ids: list[int]) -> None:
    """Make these stores' waiting work due now: a store was resumed, or their warehouse was
    given new credentials."""
    session.execute(
        update(OutboxItem)
        .where(and_(OutboxItem.store_id.in_(store_ids), IS_PENDING))
        .values(run_after=utcnow(), dispatched_at=None)
    )
