"""Running a store's channels (orders in, shipments back, inventory back): on schedule, now,
paused and resumed. The scheduler turns due channels into outbox work; the work runs the
channel's service and sets the next run."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dropstream.alerts.services import resolve_alerts
from dropstream.connectors.base import Capability, ConnectorError
from dropstream.db import utcnow
from dropstream.errors import InvalidTransition, ValidationFailed
from dropstream.extensions import db
from dropstream.jobs.models import IS_PENDING, LeasedWork, OutboxItem
from dropstream.jobs.outbox import add_work, release_for_stores
from dropstream.plugins import UnknownConnector
from dropstream.state import get_state
from dropstream.stores.models import Channel, Store, StoreChannel, StoreState

log = logging.getLogger(__name__)
MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
#: What each channel needs from the store's connector and from the warehouse's.
REQUIREMENTS = {
    Channel.ORDERS: (Capability.IMPORT_ORDERS, Capability.FORWARD_ORDERS),
    Channel.SHIPMENTS: (Capability.POST_FULFILLMENT, Capability.FETCH_SHIPMENTS),
    Channel.INVENTORY: (Capability.PUSH_INVENTORY, Capability.FETCH_INVENTORY),
}
QUEUE_FOR = {Channel.ORDERS: "default", Channel.SHIPMENTS: "default", Channel.INVENTORY: "bulk"}


def supported(store: Store, channel: Channel) -> bool:
    """Both sides can do it (else the channel shows "not supported" instead of failing)."""
    registry = get_state().connectors
    store_side, warehouse_side = REQUIREMENTS[channel]
    if store.warehouse is None:
        return False
    try:
        store_capabilities = registry.get(store.connector_id).capabilities
        warehouse_capabilities = registry.get(store.warehouse.connector_id).capabilities
    except UnknownConnector:
        return False  # its plugin is not installed (or disabled): nothing can run
    return store_side in store_capabilities and warehouse_side in warehouse_capabilities


def channel_of(session: Session, store: Store, channel: Channel) -> StoreChannel:
    """The store's row for ``channel``, created if the store predates it."""
    row = store.channel(channel)
    if row is None:
        row = StoreChannel(provider_id=store.provider_id, merchant_id=store.merchant_id, channel=channel)
        store.channels.append(row)
        session.flush()
    return row


def run_now(session: Session, channel: StoreChannel, full: bool = False) -> None:
    """Queue a run of ``channel`` now (``full``: inventory full sync / orders from the start)."""
    store = channel.store
    if store.state is not StoreState.ACTIVE:
        raise InvalidTransition(f"The store is {store.state.value}; activate or resume it first.")
    if not channel.enabled or channel.paused:
        raise InvalidTransition(f"The {channel.channel.value} channel is switched off or paused.")
    if not supported(store, channel.channel):
        raise InvalidTransition(f"The {channel.channel.value} channel is not supported by this store and warehouse.")
    _queue_run(session, channel, full=full)


def _queue_run(session: Session, channel: StoreChannel, full: bool = False) -> None:
    add_work(session, kind="channel.run", subject_id=channel.id, store_id=channel.store_id,
             merchant_id=channel.merchant_id, provider_id=channel.provider_id,
             queue=QUEUE_FOR[channel.channel], payload={"full": full},
             dedupe_key=f"channel.run:{channel.id}{':full' if full else ''}")


def set_channel(session: Session, channel: StoreChannel, *, enabled: bool | None = None,
                paused: bool | None = None, interval_seconds: int | None = None) -> StoreChannel:
    if interval_seconds is not None:
        if not MIN_INTERVAL_SECONDS <= interval_seconds <= MAX_INTERVAL_SECONDS:
            raise ValidationFailed(
                f"The interval must be between {MIN_INTERVAL_SECONDS} seconds and 7 days.",
                fields={"interval_seconds": [f"between {MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS}"]},
            )
        channel.interval_seconds = interval_seconds
        channel.next_run_at = utcnow() + timedelta(seconds=interval_seconds) if channel.last_run_at else utcnow()
    if enabled is not None:
        channel.enabled = enabled
    if paused is not None:
        channel.paused = paused
    if channel.enabled and not channel.paused and (enabled or paused is False):
        channel.next_run_at = utcnow()
    return channel


def pause_store(session: Session, store: Store, reason: str) -> None:
    store.state = StoreState.PAUSED
    store.state_reason = reason


def resume_store(session: Session, store: Store) -> None:
    """Resume a paused store: its waiting work becomes due and its channels run now."""
    if store.state is StoreState.DISCONNECTED:
        raise InvalidTransition("The store is disconnected; connect it again (new credentials) first.")
    store.state = StoreState.ACTIVE
    store.state_reason = None
    release_for_stores(session, [store.id])
    for channel in store.channels:
        channel.next_run_at = utcnow()
    resolve_alerts(session, merchant_id=store.merchant_id, group_key=f"store:{store.id}:auth_failed")


def schedule_due_channels(session: Session, limit: int = 500) -> int:
    """Turn every due channel of an active store into outbox work; set its next run.

    A channel whose last run is still pending (waiting its turn, running, or waiting to be
    retried) gets no new run: the pending one reads from the channel's cursor whenever it
    runs, and so stands for the runs due meanwhile. Otherwise, where the interval is shorter
    than a failing run's retries, each interval of a warehouse outage added a run of its own,
    which called the warehouse at once and then retried too.
    (A run asked for now, by a person or a push, is still added: it may carry news.)"""
    now = utcnow()
    run_pending = select(OutboxItem.id).where(
        OutboxItem.kind == "channel.run", OutboxItem.subject_id == StoreChannel.id,
        IS_PENDING).exists()
    due = (StoreChannel.enabled.is_(True), StoreChannel.paused.is_(False),
           or_(StoreChannel.next_run_at.is_(None), StoreChannel.next_run_at <= now))
    longest_waiting = (
        select(StoreChannel.id).join(Store, Store.id == StoreChannel.store_id)
        .where(Store.state == StoreState.ACTIVE, *due)
        .order_by(StoreChannel.next_run_at).limit(limit)
    )
    # Locked and queued in id order, the order every other writer of these rows and their
    # work keys uses (a WMS stock push queues its stores' runs by store): two transactions
    # taking the same channels in different orders deadlock.
    statement = select(StoreChannel, run_pending) \
        .where(StoreChannel.id.in_(longest_waiting.scalar_subquery()), *due).order_by(StoreChannel.id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True, of=StoreChannel)
    channels = session.execute(statement).all()
    for channel, waiting in channels:
        channel.next_run_at = now + timedelta(seconds=channel.interval_seconds)
        if not waiting and supported(channel.store, channel.channel):
            _queue_run(session, channel)
    session.commit()
    return len(channels)


def run_channel(session: Session, channel: StoreChannel, full: bool = False) -> bool:
    """Run one channel now. Returns True when a backlog remains for another run."""
    from dropstream.fulfillment.services import sync_shipments
    from dropstream.inventory.services import sync_inventory
    from dropstream.orders.sync import sync_orders

    store = channel.store
    if store.state is not StoreState.ACTIVE or not channel.enabled or channel.paused:
        return False
    if not supported(store, channel.channel):
        channel.last_error = "not supported by this store and warehouse"
        return False
    channel.last_run_at = utcnow()
    if channel.progress_started_at is None or channel.progress_finished_at is not None:
        # A new run (not the continuation of a backlog): its progress starts from zero. The
        # services count what they did as they commit it, so the console can follow along.
        channel.progress_started_at, channel.progress_finished_at = channel.last_run_at, None
        channel.progress_done, channel.progress_total = 0, None
    more = False
    if channel.channel is Channel.ORDERS:
        more = sync_orders(session, store, channel).more
    elif channel.channel is Channel.SHIPMENTS:
        more = sync_shipments(session, store, channel)
    else:
        sync_inventory(session, store, channel, full=full)
    channel.last_success_at = utcnow()
    channel.last_error = None
    channel.failures = 0
    if not more:
        channel.progress_finished_at = utcnow()
    return more


def run_channel_job(item: LeasedWork) -> None:
    """Outbox handler ``channel.run``: ``subject_id`` is the store channel id."""
    channel = db.session.get(StoreChannel, item.subject_id)
    if channel is None or not run_channel(db.session, channel, full=bool(item.payload.get("full"))):
        return
    # A backlog remains: continue at once. This item is still pending under its own key, so the
    # continuation alternates between two keys.
    key = f"channel.run:{channel.id}:continue"
    add_work(db.session, kind="channel.run", subject_id=channel.id, store_id=channel.store_id,
             merchant_id=channel.merchant_id, provider_id=channel.provider_id,
             queue=QUEUE_FOR[channel.channel], payload={"full": False},
             dedupe_key=f"channel.run:{channel.id}" if item.dedupe_key == key else key)


def channel_failed(item: LeasedWork, error: Exception, next_attempt: datetime | None = None) -> None:
    channel = db.session.get(StoreChannel, item.subject_id)
    if channel is None:
        return
    channel.failures += 1
    channel.last_error = error.message if isinstance(error, ConnectorError) else f"{type(error).__name__}: {error}"


def channel_gave_up(item: LeasedWork, error: Exception) -> None:
    channel_failed(item, error)
    channel = db.session.get(StoreChannel, item.subject_id)
    if channel is not None and channel.progress_finished_at is None:
        channel.progress_finished_at = utcnow()  # the run is over, unfinished (last_error says why)
