"""The job queues, for provider admins: the outbox (the truth behind every queue) with its
waiting and dead work and a retry button, and rq-dashboard when jobs run on Redis."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from dropstream.console.access import bp, provider_admin_only, scope, session_user
from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import IS_PENDING, OutboxItem, OutboxState
from dropstream.state import get_state
from dropstream.stores.models import Store
from dropstream.tenants.models import Role

LIMIT = 200
RQ_PREFIX = "/console/queues/rq"


@bp.get("/queues")
@provider_admin_only
def queues() -> Any:
    now = utcnow()
    base = scope().select(OutboxItem)
    pending = db.session.scalars(base.where(IS_PENDING)
                                 .order_by(OutboxItem.run_after).limit(LIMIT)).all()
    dead = db.session.scalars(base.where(OutboxItem.state == OutboxState.DEAD)
                              .order_by(OutboxItem.finished_at.desc()).limit(LIMIT)).all()
    counts = {state.value: count for state, count in db.session.execute(
        select(OutboxItem.state, func.count()).where(scope().criteria(OutboxItem))
        .group_by(OutboxItem.state)).all()}
    stores = {s.id: s.name for s in db.session.scalars(scope().select(Store))}
    return render_template("console/queues.html", pending=pending, dead=dead, counts=counts,
                           stores=stores, now=now, backend=get_state().queue.name,
                           rq_dashboard="rq_dashboard.queues_overview" in _endpoints(),
                           history_days=current_app.config["HISTORY_DAYS"])


def _endpoints() -> set[str]:
    return set(current_app.view_functions)


@bp.post("/queues/<int:item_id>/retry")
@provider_admin_only
def retry_item(item_id: int) -> Any:
    item = scope().get(db.session, OutboxItem, item_id)
    if item.state is not OutboxState.DEAD:
        flash("Only dead work can be retried; this item is " + item.state.value + ".", "error")
        return redirect(url_for("console.queues"))
    duplicate = db.session.scalar(select(OutboxItem.id).where(
        OutboxItem.dedupe_key == item.dedupe_key, OutboxItem.state == OutboxState.PENDING))
    if duplicate is not None:
        flash(f"The same work is already waiting (item {duplicate}); nothing to retry.", "error")
        return redirect(url_for("console.queues"))
    # Back to pending and due now: the relay hands it to a worker within a second.
    item.state, item.attempts, item.run_after = OutboxState.PENDING, 0, utcnow()
    item.leased_until = item.dispatched_at = item.finished_at = None
    db.session.commit()
    flash(f"Item {item.id} ({item.kind}) queued again.")
    return redirect(url_for("console.queues"))


def mount_rq_dashboard(app: Flask) -> None:
    """Serve rq-dashboard under /console/queues/rq to provider admins only."""
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=RQ_PREFIX)
    app.before_request(_guard_rq_dashboard)


def _guard_rq_dashboard() -> None:
    if request.blueprint != "rq_dashboard":
        return
    user = session_user()
    if user is None or user.role is not Role.PROVIDER_ADMIN:
        abort(404)  # as if it were not there
    if request.method not in ("GET", "HEAD"):
        # rq-dashboard's own buttons post without our token: accept only same-origin posts.
        origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
        if urlsplit(origin).netloc != request.host:
            abort(403)
