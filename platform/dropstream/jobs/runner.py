"""Running one outbox item: the function every queue executes.

The item is leased with a conditional update (a second worker, or a duplicate job, finds it
taken and stops). The handler runs inside the item's tenant scope. Success marks the item done
in the same transaction as the handler's last changes. A :class:`TransientError` (or any
unexpected exception) reschedules it with backoff and jitter until its attempts run out; an
:class:`AuthError` pauses the store (or flags the warehouse) instead of hammering the remote.
Work that must run alone (``JobSpec.one_at_a_time``) is not leased while another worker runs the
same work for the same subject: it comes back a little later, unrun and uncounted.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, joinedload

from dropstream.alerts.services import raise_alert, resolve_alerts
from dropstream.connectors.base import AuthError, TransientError, means_unreachable
from dropstream.db import load, utcnow
from dropstream.extensions import db
from dropstream.jobs.heartbeat import lease_policy
from dropstream.jobs.models import LeasedWork, OutboxItem, OutboxState
from dropstream.jobs.outbox import (
    FollowUps,
    another_running,
    backoff_delay,
    claim_next_step,
    collect_follow_ups,
    defer,
    finish,
    hand_back,
    lease,
    next_steps_after,
    release_waiting_out,
    running_job,
    take_along,
    waited_in_backlog,
)
from dropstream.jobs.registry import JOBS, JobSpec, resolve
from dropstream.observability import context as log_context
from dropstream.observability import metrics
from dropstream.state import get_state
from dropstream.stores.credentials import credentials_version
from dropstream.stores.models import WORKING_STATES, Store, StoreState, Warehouse
from dropstream.tenants.scope import TenantScope, TenantViolation, activate, unscoped

log = logging.getLogger(__name__)
#: After an authentication failure the work waits this long (or until the store is resumed).
AUTH_PAUSE = timedelta(hours=1)
#: How long a worker keeps trying to record a failure while the database is unreachable.
RECORD_PATIENCE_SECONDS = 30.0
#: Follow-ups one job may run itself before queueing the next (keeps every job short).
MAX_FOLLOW_UPS = 4
#: How many more rows of its kind a job that waited in a backlog goes on with, each with its
#: follow-ups (``JobSpec.works_through_backlogs``): few enough to keep a job short, for a
#: worker's warm shutdown and for the other stores' work.
BACKLOG_RUN = 8
#: ... and for at most this long: when each takes long, the work waits on a remote rather
#: than on a CPU, and workers running it side by side finish it sooner.
BACKLOG_SECONDS = 5.0
#: How long work that must run alone waits while another run of it is in progress.
BUSY_DELAY = timedelta(seconds=2)
#: Work that waits out a warehouse outage (``JobSpec.waits_out_outages``) looks again this
#: often once its backoff grows longer, and gives up after this long.
OUTAGE_RECHECK = timedelta(minutes=5)
OUTAGE_PATIENCE = timedelta(hours=24)


#: session.info key: the rows a running job holds on to (see :func:`hold_for_next_step`).
_HELD = "dropstream.held_for_next_step"


def hold_for_next_step(session: Session, instance: object) -> None:
    """Session listener (``loaded_as_persistent``): while a job runs, the stores and warehouses
    it loads stay in the session's identity map, which otherwise holds rows only while
    something refers to them. An order's next step, run by the same worker in the same
    session, then finds its store and warehouse there when the step before it kept its rows
    loaded (``finish(keep_loaded=True)``: same merchant), instead of loading them again."""
    held = session.info.get(_HELD)
    if held is not None and isinstance(instance, (Store, Warehouse)):
        held.append(instance)


def run_outbox_item(outbox_id: int) -> str:
    """Run outbox item ``outbox_id`` if it is due and free. Returns what happened (for logs).

    This is the job function queues carry; its only argument is an id, never a secret.

    When the item leaves new work (an import queues the forward, the forward queues "mark as
    sent"), this worker runs the first piece next instead of queueing it: an order's next step
    starts at once, without a round trip through the queue, and a queue job (a dozen Redis
    commands of the worker's bookkeeping) is saved. The follow-up is still its own outbox row
    with its own lease, so retries and crashes behave as for any item (if this process dies
    first, the relay dispatches it). When the item added only it, in its last transaction, the
    follow-up's lease is taken in that same commit. The rest is queued as usual, for any free
    worker.

    Work of a kind that works through backlogs, when the item waited for a worker, goes on
    with more of its kind (:func:`_work_through_backlog`), and then with more of its next
    step's kind: a job that did a backlog's work together (a batch of forwards) leaves a next
    step per order, and the store, its share of work in flight, has no room to queue them.
    """
    db.session.info[_HELD] = []
    try:
        outcome, item, next_step = _run_with_follow_ups(outbox_id)
        if outcome == "done" and item is not None and waited_in_backlog(item):
            if _works_through_backlogs(item.kind):
                _work_through_backlog(item)
            if next_step is not None and next_step.kind != item.kind \
                    and _works_through_backlogs(next_step.kind):
                _work_through_backlog(next_step)
        return outcome
    finally:
        db.session.info.pop(_HELD, None)


def _run_with_follow_ups(work: int | LeasedWork
                         ) -> tuple[str, LeasedWork | None, LeasedWork | None]:
    """Run an item and the follow-ups it leaves, up to :data:`MAX_FOLLOW_UPS`. Returns the
    item's outcome, the item as leased (None if it was not), and its next step as leased
    (None if none ran)."""
    outcome, follow_up, item = _run_collecting(work, may_chain=True)
    next_step = None
    with next_steps_after(db.session, item):
        for step in range(1, MAX_FOLLOW_UPS + 1):
            if follow_up is None:
                break
            _, follow_up, ran = _run_collecting(follow_up, may_chain=step < MAX_FOLLOW_UPS)
            if step == 1:
                next_step = ran
    return outcome, item, next_step


def _work_through_backlog(item: LeasedWork) -> None:
    """``item`` waited in a backlog: more of its kind may wait for its store behind it, with no
    queue job on the way yet (the store had its share of work in flight, and the relay gives
    them one as room frees). This worker leases up to :data:`BACKLOG_RUN` of them and runs
    them one after another, each as the item it is (its own run, commit, follow-ups, retries):
    each saves a queue job, whose bookkeeping costs as much CPU as the work. Rows with a job
    on the way are left to it, and so is work that must run alone whose subject another worker
    runs now. The rows it has not started after :data:`BACKLOG_SECONDS`, or when it fails
    between two, are handed back to run on their own.
    """
    session = db.session
    policy = lease_policy()
    with unscoped(session):
        taken = take_along(session, item, BACKLOG_RUN, policy.hold, undispatched_only=True,
                           runs_alone=_runs_alone(item.kind))
    deadline = time.monotonic() + BACKLOG_SECONDS
    with policy.kept_waiting(taken):
        for position, row in enumerate(taken):
            if time.monotonic() > deadline:
                with unscoped(session):
                    hand_back(session, taken[position:])
                return
            try:
                _run_with_follow_ups(row)
            except BaseException:
                session.rollback()
                with unscoped(session):
                    hand_back(session, taken[position + 1:])
                raise


def _run_collecting(work: int | LeasedWork, may_chain: bool
                    ) -> tuple[str, int | LeasedWork | None, LeasedWork | None]:
    """Run one item (an id, or a row this worker already leased) and dispatch the work its
    commits added, except the first piece, which this worker may run next (returned: leased
    already when the item's last commit took its lease). Returns the outcome, that piece, and
    the item as leased."""
    follow_ups = FollowUps()
    finished = False
    try:
        with collect_follow_ups(db.session, may_claim=may_chain) as follow_ups:
            outcome = _run_observed(work, follow_ups)
        finished = True
    finally:
        # Committed work is dispatched whatever happened, so none waits for the relay.
        items = follow_ups.items
        follow_up: int | LeasedWork | None = follow_ups.claimed
        if follow_up is None and finished and may_chain and items:
            follow_up = items.pop(0)[0]
        if items:
            get_state().queue.dispatch(items)
    return outcome, follow_up, follow_ups.running


def _run_observed(work: int | LeasedWork, follow_ups: FollowUps) -> str:
    started = time.perf_counter()
    cpu_started = time.thread_time()
    kind = "unknown"
    outcome = "skipped"
    with log_context.bound(job_id=work if isinstance(work, int) else work.id):
        try:
            kind, outcome = _run(work)
            return outcome
        finally:
            if outcome != "skipped":
                # Rows the job took along and finished are items run too (their own jobs,
                # when they come, find them done and count as skipped).
                along = follow_ups.done_along if outcome == "done" else 0
                metrics.JOBS.labels(kind, outcome).inc(1 + along)
                metrics.JOB_SECONDS.labels(kind).observe(time.perf_counter() - started)
            else:
                # Counted, not timed: a queue job that found its row taken or done (its kind
                # unknown: the row was not read) says how much queueing went for nothing.
                metrics.JOBS.labels(kind, outcome).inc()
            # Skipped runs too: a lease that found the row taken still cost a transaction.
            metrics.JOB_CPU_SECONDS.labels(kind).inc(time.thread_time() - cpu_started)


def _runs_alone(kind: str) -> bool:
    spec = JOBS.get(kind)
    return spec is not None and spec.one_at_a_time


def _works_through_backlogs(kind: str) -> bool:
    spec = JOBS.get(kind)
    return spec is not None and spec.works_through_backlogs


def _run(work: int | LeasedWork) -> tuple[str, str]:
    session = db.session
    policy = lease_policy()
    try:
        if isinstance(work, LeasedWork):
            item = work  # leased in the commit of the job before it (claim_next_step)
        else:
            item = _lease(session, work, policy.hold)
            if item is None:
                return "unknown", "skipped"
            if isinstance(item, str):
                return item, "deferred"
        outbox_id = item.id
        spec = JOBS.get(item.kind)
        kind = item.kind
        running_job(session, item)
        if spec is None:
            finish(session, item.id, OutboxState.DEAD, f"no handler for work of kind {kind!r}")
            return kind, "dead"
        activate(session, TenantScope.for_merchant(item.provider_id, item.merchant_id,
                                                   actor=f"job:{kind}:{item.id}"))
        if not _store_takes_work(session, item.store_id):
            # Paused (its credentials were refused, say) after this job was queued: the work
            # waits, unspent, as the work that was refused does; resuming the store releases it.
            hand_back(session, [item], wait=AUTH_PAUSE)
            return kind, "paused"
        with log_context.bound(job_kind=kind, provider_id=item.provider_id,
                               merchant_id=item.merchant_id, store_id=item.store_id):
            try:
                with policy.kept(item):
                    resolve(spec.run)(item)
                if spec.waits_out_outages and item.attempts > spec.max_attempts:
                    _outage_over(session, item)
                next_step = claim_next_step(session, policy.hold, _runs_alone)
                # The next step reads what this one wrote without loading it again, when it
                # works for the same merchant (another's rows must be loaded, and checked).
                finish(session, item.id, OutboxState.DONE, keep_loaded=(
                    next_step is not None and next_step.merchant_id == item.merchant_id))
                return kind, "done"
            except AuthError as error:
                session.rollback()
                return kind, _auth_failed(session, outbox_id, error)
            except TenantViolation as error:
                # The work names another tenant's row: it can never run under this item's scope,
                # and its retry hooks would load that row again. Park it, visibly, untouched.
                session.rollback()
                log.error("outbox item %s (%s) refused: %s", outbox_id, kind, error)
                finish(session, outbox_id, OutboxState.DEAD, _describe(error))
                return kind, "dead"
            except Exception as error:  # noqa: BLE001 - every failure is recorded, none is lost
                session.rollback()
                if not isinstance(error, TransientError):
                    log.exception("outbox item %s (%s) failed unexpectedly", outbox_id, kind)
                else:
                    log.info("outbox item %s (%s) will be retried: %s", outbox_id, kind, _describe(error))
                return kind, _patiently(session, _retry_or_give_up, outbox_id, error)
    finally:
        # The session itself is closed by the caller's app-context teardown (worker, thread).
        activate(session, None)


_WITH_WAREHOUSE = (joinedload(Store.warehouse),)


def _store_takes_work(session: Session, store_id: int | None) -> bool:
    """Whether the store the work is for may be worked for now. Its row is loaded in the
    transaction the handler goes on with (which finds it there, without loading it again),
    with its warehouse's in the same statement: most work for a store calls its warehouse.
    A job that goes on with more work (a backlog's) holds its store expired by the last commit:
    it is read again the same way (:func:`~dropstream.db.load`), not refreshed alone."""
    if store_id is None:
        return True
    store = load(session, Store, store_id, _WITH_WAREHOUSE)
    return store is None or store.state in WORKING_STATES


def _lease(session: Session, outbox_id: int, hold: timedelta) -> LeasedWork | str | None:
    """Lease a row for this worker (committed): the row, None if it is not free, or its kind
    if it must run alone and another worker is running it (the row then comes back later)."""
    with unscoped(session):
        item = lease(session, outbox_id, hold, commit=False)
        if item is None:
            # The update changed nothing; COMMIT rather than ROLLBACK keeps the statements
            # psycopg prepared on this connection (a ROLLBACK makes it forget all of them).
            session.commit()
            return None
        if _runs_alone(item.kind) and another_running(
                session, kind=item.kind, subject_id=item.subject_id, outbox_id=item.id):
            # Not a failure: the subject is busy. The lease is undone (the row as it was,
            # its attempt unspent) and the row comes back a little later.
            session.rollback()
            defer(session, item.id, BUSY_DELAY * random.uniform(1.0, 1.5))
            return item.kind
        session.commit()
    return item


def _patiently(session: Session, record: Callable[[Session, int, Exception], str],
               outbox_id: int, error: Exception) -> str:
    """Record a failure, waiting out a database that is away (a restart, a failover) for up to
    :data:`RECORD_PATIENCE_SECONDS`: a failure left unrecorded keeps the item's run lease, and
    the work would wait for the lease to end, minutes later."""
    deadline = time.monotonic() + RECORD_PATIENCE_SECONDS
    while True:
        try:
            return record(session, outbox_id, error)
        except OperationalError:
            session.rollback()
            if time.monotonic() >= deadline:
                raise
            log.warning("the database is unreachable; recording the failure again in 1 s")
            time.sleep(1.0)


def _retry_or_give_up(session: Session, outbox_id: int, error: Exception) -> str:
    item = session.get(OutboxItem, outbox_id, populate_existing=True)
    spec = JOBS[item.kind]
    message = _describe(error)
    outage = _waits_out(spec, item, error)
    if item.attempts >= spec.max_attempts and not outage:
        if spec.on_give_up:
            resolve(spec.on_give_up)(LeasedWork.of(item), error)
        finish(session, outbox_id, OutboxState.DEAD, message)
        return "dead"
    retry_after = getattr(error, "retry_after", None)
    delay = backoff_delay(item.attempts, retry_after)
    if outage:
        # The warehouse is down, not this work: look again every few minutes (or when it said
        # it would be back), so that the work goes soon after it answers again.
        delay = max(min(delay, OUTAGE_RECHECK), timedelta(seconds=retry_after or 0))
        if item.attempts >= spec.max_attempts:
            _alert_outage(session, item, error)
    item.run_after = utcnow() + delay
    item.leased_until = utcnow()  # released: not running, not a new request
    item.dispatched_at = None
    item.last_error = message
    if spec.on_retry:
        resolve(spec.on_retry)(LeasedWork.of(item), error, item.run_after)
    session.commit()
    return "retrying"


def _waits_out(spec: JobSpec, item: OutboxItem, error: Exception) -> bool:
    """Whether this failure is a warehouse outage the work waits out instead of giving up."""
    owner = getattr(error, "owner", None)
    return (spec.waits_out_outages and means_unreachable(error) and owner is not None
            and owner[0] == "warehouse" and utcnow() - item.created_at < OUTAGE_PATIENCE)


def _alert_outage(session: Session, item: OutboxItem, error: Exception) -> None:
    _, warehouse_id = error.owner  # type: ignore[attr-defined]
    raise_alert(session, provider_id=item.provider_id, merchant_id=item.merchant_id,
                store_id=item.store_id, code="warehouse_unreachable",
                group_key=f"warehouse:{warehouse_id}:unreachable",
                message=(f"The warehouse has not been reachable for {item.attempts} attempts "
                         f"({getattr(error, 'message', error)}). Orders wait and go as soon as "
                         "it answers again (DropStream looks every few minutes, for up to a day)."))


def _outage_over(session: Session, item: LeasedWork) -> None:
    """Work that waited out an outage went through: the warehouse answers again. The rest of
    what waits for it goes now, not at its next look, minutes later."""
    store = session.get(Store, item.store_id) if item.store_id is not None else None
    if store is not None and store.warehouse_id is not None:
        resolve_alerts(session, merchant_id=item.merchant_id,
                       group_key=f"warehouse:{store.warehouse_id}:unreachable")
        release_waiting_out(session, store.warehouse_id, {
            kind: spec.max_attempts for kind, spec in JOBS.items() if spec.waits_out_outages})


def _auth_failed(session: Session, outbox_id: int, error: AuthError) -> str:
    """Pause the store (or flag the warehouse) whose credentials were refused, alert, and hold
    the work until a person fixes them: "paused".

    Unless they were replaced after the refused call was made: a merchant who reconnects while
    a job still uses the old credentials must not find the store paused again by its failure.
    The work then runs again at once, with the new ones: "retrying". The owner's row is locked
    while this is decided, so a reconnect either comes first (and is seen) or waits."""
    item = session.get(OutboxItem, outbox_id, populate_existing=True)
    kind, owner_id = getattr(error, "owner", ("store", item.store_id))
    # FOR NO KEY UPDATE, the lock of a plain UPDATE: a reconnect's update still waits for it,
    # but rows merely referring to the owner do not. A transaction that added one (work, an
    # order, an inbox event) share-locks the owner's key until it ends, perhaps after waiting
    # out the store's API quota; a FOR UPDATE here would wait with it, and the store's other
    # jobs would go on calling with the refused credentials meanwhile.
    owner = session.get(Store if kind == "store" else Warehouse, owner_id,
                        populate_existing=True, with_for_update={"key_share": True})
    used = getattr(error, "credentials_version", None)
    item.leased_until = utcnow()  # released: not running, not a new request
    item.dispatched_at = None
    item.last_error = _describe(error)
    if owner is not None and used is not None and used != credentials_version(owner):
        item.run_after = utcnow()
        session.commit()
        return "retrying"
    item.run_after = utcnow() + AUTH_PAUSE
    if isinstance(owner, Store):
        if owner.state is StoreState.ACTIVE:
            owner.state = StoreState.PAUSED
            owner.state_reason = f"The store refused DropStream's credentials: {error.message}"
        message = (f"Store {owner.name} was paused: its credentials were refused "
                   f"({error.message}). Update them and resume the store.")
    elif isinstance(owner, Warehouse):
        if not owner.credentials_refused:
            # The WMS's own answer; the calls that were not made for it repeat it (connections).
            owner.last_error = error.message
        message = (f"The warehouse refused DropStream's credentials ({owner.last_error}); orders "
                   "wait until new ones are entered.")
    else:
        message = f"The {kind}'s credentials were refused ({error.message})."
    raise_alert(session, provider_id=item.provider_id, merchant_id=item.merchant_id, store_id=item.store_id,
                code="auth_failed", group_key=f"{kind}:{owner_id}:auth_failed", message=message)
    spec = JOBS.get(item.kind)
    if spec is not None and spec.on_retry:
        # The work's subject says why it waits (an order shows "retrying", the refusal on its
        # timeline), not only the alert.
        resolve(spec.on_retry)(LeasedWork.of(item), error, item.run_after)
    session.commit()
    return "paused"


def _describe(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    return f"{type(error).__name__}: {message}"[:2000]
