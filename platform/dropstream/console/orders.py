"""Orders: the filtered list (status, hold reason, store, date, order number or SKU), the one
page that explains an order, and the actions on it, singly or in bulk (``orders.actions``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import exists, func, or_, select

from dropstream.api.listings import like
from dropstream.api.orders import ACTIONS, event_explanation
from dropstream.connectors.base import ConnectorError
from dropstream.console.access import bp, current_user, scope
from dropstream.errors import AppError
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment
from dropstream.orders.models import Order, OrderLine, WarehouseLine
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.stores.models import Store

PAGE_SIZE = 50
#: Actions offered on the list and the order page (hold needs a note: on the order page only).
BULK_ACTIONS = ("reprocess", "release", "cancel")
MAX_BULK = 500


def _day(name: str, errors: dict[str, list[str]]) -> date | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = ["Use a date like 2026-11-30."]
        return None


def filtered_orders() -> tuple[Any, dict[str, Any], dict[str, list[str]]]:
    """The list's statement from the query string, the filters as understood, and the errors."""
    errors: dict[str, list[str]] = {}
    statuses = [s for s in request.args.getlist("status") if s]
    reasons = [r for r in request.args.getlist("hold_reason") if r]
    known_statuses = {s.value for s in OrderStatus}
    known_reasons = {r.value for r in HoldReason}
    if set(statuses) - known_statuses:
        errors["status"] = ["Unknown status: " + ", ".join(sorted(set(statuses) - known_statuses))]
    if set(reasons) - known_reasons:
        errors["hold_reason"] = ["Unknown hold reason: " + ", ".join(sorted(set(reasons) - known_reasons))]
    store_id = request.args.get("store_id", "")
    if store_id and not store_id.isdigit():
        errors["store_id"] = ["Choose a store from the list."]
    since, until = _day("from", errors), _day("to", errors)
    q = (request.args.get("q") or "").strip()[:255]
    statement = scope().select(Order).order_by(Order.id.desc())
    if statuses and "status" not in errors:
        statement = statement.where(Order.status.in_(statuses))
    if reasons and "hold_reason" not in errors:
        statement = statement.where(Order.hold_reason.in_(reasons))
    if store_id.isdigit():
        statement = statement.where(Order.store_id == int(store_id))
    if since:
        statement = statement.where(Order.placed_at >= datetime.combine(since, datetime.min.time(), UTC))
    if until:
        statement = statement.where(Order.placed_at < datetime.combine(until + timedelta(days=1),
                                                                       datetime.min.time(), UTC))
    if q:
        pattern = like(q)
        statement = statement.where(or_(
            Order.number.ilike(pattern, escape="\\"),
            exists(select(OrderLine.id).where(OrderLine.order_id == Order.id,
                                              OrderLine.sku.ilike(pattern, escape="\\"))),
            exists(select(WarehouseLine.id).where(WarehouseLine.order_id == Order.id,
                                                  WarehouseLine.warehouse_sku.ilike(pattern, escape="\\")))))
    filters = {"status": statuses, "hold_reason": reasons, "store_id": store_id, "q": q,
               "from": request.args.get("from", ""), "to": request.args.get("to", "")}
    return statement, filters, errors


@bp.get("/orders")
def orders() -> Any:
    statement, filters, errors = filtered_orders()
    page = max(1, min(request.args.get("page", 1, type=int) or 1, 100_000))
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    rows = db.session.scalars(statement.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    stores = db.session.scalars(scope().select(Store).order_by(Store.name)).all()
    return render_template("console/orders.html", orders=rows, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), filters=filters, errors=errors,
                           stores=stores, store_names={s.id: s.name for s in stores},
                           statuses=list(OrderStatus), reasons=list(HoldReason),
                           bulk_actions=BULK_ACTIONS, page_url=_page_url), 422 if errors else 200


def _page_url(number: int) -> str:
    args = {key: request.args.getlist(key) for key in request.args if key != "page"}
    return url_for("console.orders", page=number, **args)


@bp.get("/orders/<int:order_id>")
def order(order_id: int) -> Any:
    row = scope().get(db.session, Order, order_id)
    store = scope().get(db.session, Store, row.store_id)
    by_line: dict[int, list[WarehouseLine]] = defaultdict(list)
    for warehouse_line in row.warehouse_lines:
        by_line[warehouse_line.order_line_id].append(warehouse_line)
    shipments = db.session.scalars(scope().select(Shipment, Shipment.order_id == row.id)
                                   .order_by(Shipment.id)).all()
    timeline = [(event, event_explanation(event)) for event in reversed(row.events)]
    return render_template("console/order.html", order=row, store=store, by_line=by_line,
                           shipments=shipments, timeline=timeline)


@bp.post("/orders/<int:order_id>/<any(reprocess,release,hold,cancel):action>")
def order_action(order_id: int, action: str) -> Any:
    row = scope().get(db.session, Order, order_id)
    kwargs = {"note": (request.form.get("note") or "").strip()[:500]} if action == "hold" else {}
    try:
        ACTIONS[action](db.session, row, current_user().email, **kwargs)
        db.session.commit()
    except (AppError, ConnectorError) as error:
        db.session.rollback()
        flash(f"{action.capitalize()} did not apply: {error.message}", "error")
    else:
        flash(f"{action.capitalize()}: order {row.number} is now {row.status.value.replace('_', ' ')}.")
    return redirect(url_for("console.order", order_id=order_id))


@bp.post("/orders/bulk")
def orders_bulk() -> Any:
    action = request.form.get("action", "")
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()][:MAX_BULK]
    back = request.form.get("back") or url_for("console.orders")
    if not back.startswith("/console/"):
        back = url_for("console.orders")
    if action not in BULK_ACTIONS or not ids:
        flash("Tick at least one order and choose an action.", "error")
        return redirect(back)
    outcomes: dict[str, int] = defaultdict(int)
    problems = []
    for order_id in dict.fromkeys(ids):
        row = db.session.scalars(scope().select(Order, Order.id == order_id)).first()
        if row is None:
            outcomes["not found"] += 1
            continue
        try:
            ACTIONS[action](db.session, row, current_user().email)
            db.session.commit()
            outcomes["done"] += 1
        except (AppError, ConnectorError) as error:
            db.session.rollback()
            outcomes["not applicable"] += 1
            problems.append(f"{row.number}: {error.message}")
    summary = ", ".join(f"{count} {what}" for what, count in outcomes.items())
    flash(f"{action.capitalize()} on {len(ids)} orders: {summary}."
          + (" " + "; ".join(problems[:5]) if problems else ""), "error" if problems else "info")
    return redirect(back)
