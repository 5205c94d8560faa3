"""The provider dashboard: orders per status, holds by reason, open alerts, every store's
health, and orders imported and shipped per day (an inline SVG chart, no script)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import render_template
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from dropstream.alerts.models import Alert
from dropstream.console.access import bp, scope
from dropstream.console.models import SetupResult
from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.orders.models import Order
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.stores.models import Channel, Store
from dropstream.tenants.models import Merchant

CHART_DAYS = 14


@dataclass(frozen=True)
class Bar:
    day: date
    imported: int
    shipped: int


@dataclass(frozen=True)
class StoreHealth:
    store: Store
    merchant: str
    channels: dict[Channel, Any]
    webhooks: bool | None  # None: not known (no set-up checks recorded with a webhook check)
    checked_at: Any


def webhooks_state(result: SetupResult | None) -> bool | None:
    """From the last recorded set-up checks: are the store's webhooks registered and active?"""
    if result is None:
        return None
    hooks = [check for check in result.checks if "webhook" in check.get("key", "")]
    return all(check.get("passed") for check in hooks) if hooks else None


def _per_day(column: Any, model: type, *where: Any) -> dict[str, int]:
    since = utcnow() - timedelta(days=CHART_DAYS)
    day = func.date(column)
    rows = db.session.execute(
        select(day, func.count()).where(scope().criteria(model), column >= since, *where)
        .group_by(day)).all()
    return {str(value): count for value, count in rows}


def chart_bars() -> list[Bar]:
    imported = _per_day(Order.created_at, Order)
    shipped = _per_day(Shipment.posted_at, Shipment, Shipment.state == ShipmentState.POSTED)
    today = utcnow().date()
    days = [today - timedelta(days=offset) for offset in range(CHART_DAYS - 1, -1, -1)]
    return [Bar(d, imported.get(d.isoformat(), 0), shipped.get(d.isoformat(), 0)) for d in days]


def store_health() -> list[StoreHealth]:
    stores = db.session.scalars(scope().select(Store).order_by(Store.name).options(
        selectinload(Store.channels))).all()
    results = {r.store_id: r for r in db.session.scalars(scope().select(SetupResult))}
    merchants = dict(db.session.execute(
        select(Merchant.id, Merchant.name).where(scope().criteria(Merchant))).all())
    return [StoreHealth(store, merchants.get(store.merchant_id, ""),
                        {c.channel: c for c in store.channels},
                        webhooks_state(results.get(store.id)),
                        results[store.id].checked_at if store.id in results else None)
            for store in stores]


@bp.get("/")
def dashboard() -> Any:
    statuses = dict(db.session.execute(
        select(Order.status, func.count()).where(scope().criteria(Order)).group_by(Order.status)).all())
    holds = dict(db.session.execute(
        select(Order.hold_reason, func.count()).where(
            scope().criteria(Order), Order.status == OrderStatus.ON_HOLD).group_by(Order.hold_reason)).all())
    alerts = db.session.scalars(scope().select(Alert, Alert.resolved_at.is_(None))
                                .order_by(Alert.last_seen_at.desc()).limit(8)).all()
    open_alerts = db.session.scalar(select(func.count()).select_from(Alert).where(
        scope().criteria(Alert), Alert.resolved_at.is_(None))) or 0
    bars = chart_bars()
    return render_template(
        "console/dashboard.html", statuses=statuses, all_statuses=list(OrderStatus),
        holds=holds, hold_reasons=[r for r in HoldReason if holds.get(r)], alerts=alerts,
        open_alerts=open_alerts, stores=store_health(), bars=bars,
        chart_max=_axis_top(max(max(b.imported, b.shipped) for b in bars)), Channel=Channel)


def _axis_top(largest: int) -> int:
    """The chart's top: even (so the middle line is a whole number), and at least 2."""
    return max(2, largest + largest % 2)
