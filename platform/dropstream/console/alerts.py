"""Alerts, grouped per store and reason: open ones first, resolved by themselves when the cause
is fixed (the core does that) or by provider staff."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from flask import flash, redirect, render_template, url_for
from sqlalchemy import or_

from dropstream.alerts.models import Alert
from dropstream.console.access import bp, provider_only, scope
from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.stores.models import Store

RECENT = timedelta(days=7)


@bp.get("/alerts")
def alerts() -> Any:
    rows = db.session.scalars(scope().select(Alert, or_(
        Alert.resolved_at.is_(None), Alert.resolved_at > utcnow() - RECENT))
        .order_by(Alert.resolved_at.is_not(None), Alert.last_seen_at.desc()).limit(500)).all()
    stores = {s.id: s for s in db.session.scalars(scope().select(Store))}
    groups: dict[int | None, list[Alert]] = defaultdict(list)
    for alert in rows:
        groups[alert.store_id].append(alert)
    ordered = sorted(groups.items(), key=lambda item: (
        not any(a.resolved_at is None for a in item[1]),
        stores[item[0]].name if item[0] in stores else ""))
    return render_template("console/alerts.html", groups=ordered, stores=stores)


@bp.post("/alerts/<int:alert_id>/resolve")
@provider_only
def resolve_alert(alert_id: int) -> Any:
    alert = scope().get(db.session, Alert, alert_id)
    if alert.resolved_at is None:
        alert.resolved_at = utcnow()
        db.session.commit()
    flash("Alert resolved; it opens again by itself if the problem comes back.")
    return redirect(url_for("console.alerts"))
