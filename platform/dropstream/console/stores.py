"""Stores: the list, each store's page with its channels (switch, run now, pause, schedule and
a live progress bar for long runs), and pausing or resuming the whole store."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload

from dropstream.console.access import bp, scope
from dropstream.console.checks import last_checks
from dropstream.console.dashboard import webhooks_state
from dropstream.db import utcnow
from dropstream.errors import AppError
from dropstream.extensions import db
from dropstream.stores import channels as channel_service
from dropstream.stores import services
from dropstream.stores.models import Channel, Store, StoreChannel

CHANNEL_WORDS = {Channel.ORDERS: "Orders in (import)", Channel.SHIPMENTS: "Shipments back",
                 Channel.INVENTORY: "Inventory back"}
FULL_RUN = {Channel.ORDERS: "Backfill orders", Channel.INVENTORY: "Full inventory sync"}


def load_store(store_id: int) -> Store:
    return scope().get(db.session, Store, store_id)


def load_channel(store: Store, name: str) -> StoreChannel:
    return channel_service.channel_of(db.session, store, Channel(name))


def running(store: Store) -> bool:
    return any(c.progress_started_at and not c.progress_finished_at for c in store.channels)


@bp.get("/stores")
def stores() -> Any:
    rows = db.session.scalars(scope().select(Store).order_by(Store.name)
                              .options(selectinload(Store.channels))).all()
    return render_template("console/stores.html", stores=rows)


def _channels_context(store: Store) -> dict[str, Any]:
    return {"store": store, "support": services.channel_support(store), "words": CHANNEL_WORDS,
            "full_run": FULL_RUN, "live": running(store),
            "channels": [load_channel(store, c.value) for c in Channel]}


@bp.get("/stores/<int:store_id>")
def store(store_id: int) -> Any:
    row = load_store(store_id)
    result = last_checks(db.session, row)
    return render_template("console/store.html", checks=result, webhooks=webhooks_state(result),
                           **_channels_context(row))


@bp.get("/stores/<int:store_id>/channels")
def store_channels(store_id: int) -> Any:
    """The channels table alone: the page polls it while a run is in progress."""
    return render_template("console/_channels.html", **_channels_context(load_store(store_id)))


@bp.post("/stores/<int:store_id>/channels/<any(orders,shipments,inventory):channel>")
def set_channel(store_id: int, channel: str) -> Any:
    row = load_store(store_id)
    change: dict[str, Any] = {}
    for key in ("enabled", "paused"):
        if key in request.form:
            change[key] = request.form[key] == "1"
    interval = request.form.get("interval_minutes", "")
    try:
        if interval:
            if not interval.isdigit():
                raise AppError("The interval is a whole number of minutes.")
            change["interval_seconds"] = int(interval) * 60
        channel_service.set_channel(db.session, load_channel(row, channel), **change)
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        flash(f"{CHANNEL_WORDS[Channel(channel)]}: {error.message}", "error")
    return redirect(url_for("console.store", store_id=store_id))


@bp.post("/stores/<int:store_id>/channels/<any(orders,shipments,inventory):channel>/run")
def run_channel(store_id: int, channel: str) -> Any:
    row = load_store(store_id)
    full = request.form.get("full") == "1"
    try:
        reason = services.channel_support(row)[Channel(channel)]
        if reason is not None:
            raise AppError(reason)
        target = load_channel(row, channel)
        channel_service.run_now(db.session, target, full=full)
        # The bar starts now, not when a worker picks the run up (the run continues from here).
        target.progress_started_at, target.progress_finished_at = utcnow(), None
        target.progress_done, target.progress_total = 0, None
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        flash(f"{CHANNEL_WORDS[Channel(channel)]}: {error.message}", "error")
    else:
        flash(f"{FULL_RUN.get(Channel(channel)) if full else CHANNEL_WORDS[Channel(channel)]}: "
              "queued; follow it below.")
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/console/") else url_for("console.store", store_id=store_id))


@bp.post("/stores/<int:store_id>/<any(pause,resume):action>")
def pause_or_resume(store_id: int, action: str) -> Any:
    row = load_store(store_id)
    try:
        if action == "pause":
            channel_service.pause_store(db.session, row, "Paused from the console.")
        else:
            channel_service.resume_store(db.session, row)
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        flash(error.message, "error")
    return redirect(url_for("console.store", store_id=store_id))
