"""Orders: the list operators filter, the one page that explains an order, and the actions on
it (reprocess, release, hold, cancel), singly or in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from dropstream.api.auth import current_scope, principal
from dropstream.api.listings import like
from dropstream.api.order_schemas import (
    ADDRESS_FIELDS,
    EVENT_FIELDS,
    LINE_FIELDS,
    ORDER_FIELDS,
    BulkResultSchema,
    BulkSchema,
    HoldSchema,
    OrderDetailSchema,
    OrderListArgs,
    OrderSchema,
)
from dropstream.api.pagination import page_schema, paginate
from dropstream.connectors.base import ConnectorError
from dropstream.errors import AppError
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment
from dropstream.orders import actions
from dropstream.orders.models import Order, OrderEvent, OrderLine, WarehouseLine
from dropstream.orders.statuses import HoldReason, OrderStatus

blp = Blueprint("orders", __name__, url_prefix="/api/v1/orders",
                description="Orders, their timeline, and the actions operators take on them.")

ACTIONS: dict[str, Callable[..., Order]] = {
    "reprocess": actions.reprocess,
    "release": actions.release,
    "hold": actions.hold,
    "cancel": actions.cancel,
}


def _pick(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


def present_order(order: Order) -> dict[str, Any]:
    return {
        **_pick(order, ORDER_FIELDS),
        "status_explanation": order.status.explanation,
        "hold_explanation": order.hold_reason.explanation if order.hold_reason else None,
    }


def present_detail(session: Session, order: Order) -> dict[str, Any]:
    by_line: dict[int, list[WarehouseLine]] = defaultdict(list)
    for warehouse_line in order.warehouse_lines:
        by_line[warehouse_line.order_line_id].append(warehouse_line)
    shipments = session.scalars(current_scope().select(Shipment, Shipment.order_id == order.id)
                                .order_by(Shipment.id)).all()
    return {
        **present_order(order),
        "note": order.note,
        "store_status_code": order.store_status_code,
        "lines": [{**_pick(line, LINE_FIELDS), "warehouse_lines": by_line.get(line.id, [])}
                  for line in order.lines],
        "addresses": [_pick(address, ADDRESS_FIELDS) for address in order.addresses],
        "shipments": shipments,
        "timeline": [{**_pick(event, EVENT_FIELDS), "explanation": event_explanation(event)}
                     for event in order.events],
    }


def event_explanation(event: OrderEvent) -> str | None:
    """The operator's explanation of the status or hold reason an event moved the order to."""
    detail = event.detail or {}
    for key, enum in (("hold_reason", HoldReason), ("reason", HoldReason), ("status", OrderStatus),
                      ("to", OrderStatus)):
        value = detail.get(key)
        if isinstance(value, str):
            try:
                return enum(value).explanation
            except ValueError:
                continue
    return None


def load_order(order_id: int) -> Order:
    return current_scope().get(db.session, Order, order_id)


@blp.route("")
class Orders(MethodView):
    @blp.arguments(OrderListArgs, location="query")
    @blp.response(200, page_schema(OrderSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List orders, newest first

        Filter by ``status`` and ``hold_reason`` (repeat the parameter for several), store,
        merchant, import time (``created_from``/``created_to``) or order date
        (``placed_from``/``placed_to``), and ``q``: part of the order number, or of a store or
        warehouse SKU on one of its lines.
        """
        statement = current_scope().select(Order).order_by(Order.id.desc())
        if args.get("status"):
            statement = statement.where(Order.status.in_(args["status"]))
        if args.get("hold_reason"):
            statement = statement.where(Order.hold_reason.in_(args["hold_reason"]))
        for key, column in (("store_id", Order.store_id), ("merchant_id", Order.merchant_id)):
            if key in args:
                statement = statement.where(column == args[key])
        for key, column in (("created", Order.created_at), ("placed", Order.placed_at)):
            if f"{key}_from" in args:
                statement = statement.where(column >= args[f"{key}_from"])
            if f"{key}_to" in args:
                statement = statement.where(column < args[f"{key}_to"])
        if args.get("q"):
            pattern = like(args["q"])
            statement = statement.where(or_(
                Order.number.ilike(pattern, escape="\\"),
                exists(select(OrderLine.id).where(OrderLine.order_id == Order.id,
                                                  OrderLine.sku.ilike(pattern, escape="\\"))),
                exists(select(WarehouseLine.id).where(
                    WarehouseLine.order_id == Order.id,
                    WarehouseLine.warehouse_sku.ilike(pattern, escape="\\"))),
            ))
        page = paginate(db.session, statement, args)
        page["items"] = [present_order(order) for order in page["items"]]
        return page


@blp.route("/<id:order_id>")
class OrderItem(MethodView):
    @blp.response(200, OrderDetailSchema)
    def get(self, order_id: int) -> dict[str, Any]:
        """Review an order

        Its lines (each store SKU with the warehouse lines it became), addresses, shipments and
        timeline, with what its status and hold reason mean and how to fix them.
        """
        return present_detail(db.session, load_order(order_id))


def _act(action: str, order_id: int, **kwargs: Any) -> dict[str, Any]:
    order = load_order(order_id)
    ACTIONS[action](db.session, order, principal().actor, **kwargs)
    db.session.commit()
    return present_detail(db.session, order)


@blp.route("/<id:order_id>/reprocess")
class OrderReprocess(MethodView):
    @blp.response(200, OrderDetailSchema)
    def post(self, order_id: int) -> dict[str, Any]:
        """Reprocess an order

        Runs its failed or held step again (re-maps a held order, re-sends an errored one).
        409 ``invalid_transition`` when there is nothing to reprocess.
        """
        return _act("reprocess", order_id)


@blp.route("/<id:order_id>/release")
class OrderRelease(MethodView):
    @blp.response(200, OrderDetailSchema)
    def post(self, order_id: int) -> dict[str, Any]:
        """Release a held order

        Re-validates it; a manual hold is lifted. 409 ``invalid_transition`` unless on hold.
        """
        return _act("release", order_id)


@blp.route("/<id:order_id>/hold")
class OrderHold(MethodView):
    @blp.arguments(HoldSchema, required=False)
    @blp.response(200, OrderDetailSchema)
    def post(self, data: dict[str, Any], order_id: int) -> dict[str, Any]:
        """Hold an order

        A manual hold on an order not yet at the warehouse. 409 ``invalid_transition`` otherwise.
        """
        return _act("hold", order_id, note=data["note"])


@blp.route("/<id:order_id>/cancel")
class OrderCancel(MethodView):
    @blp.response(200, OrderDetailSchema)
    def post(self, order_id: int) -> dict[str, Any]:
        """Cancel an order

        If the warehouse has it, the cancel is forwarded. 409 ``invalid_transition`` once shipped
        or cancelled.
        """
        return _act("cancel", order_id)


@blp.route("/bulk")
class OrdersBulk(MethodView):
    @blp.arguments(BulkSchema)
    @blp.response(200, BulkResultSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Act on many orders

        Applies ``action`` to each id on its own: one failure does not undo the others. Each id
        gets an outcome: ``ok``, ``not_found`` (missing, or not yours), or the error code
        (``invalid_transition``, …) with its message.
        """
        scope, session = current_scope(), db.session
        kwargs = {"note": data["note"]} if data["action"] == "hold" else {}
        results = []
        for order_id in dict.fromkeys(data["ids"]):  # each id once, in the order given
            order = session.scalars(scope.select(Order, Order.id == order_id)).first()
            if order is None:
                results.append({"id": order_id, "outcome": "not_found", "message": "No such order."})
                continue
            try:
                ACTIONS[data["action"]](session, order, principal().actor, **kwargs)
                session.commit()
            except (AppError, ConnectorError) as error:
                session.rollback()
                results.append({"id": order_id, "outcome": error.code, "message": error.message})
                continue
            results.append({"id": order_id, "outcome": "ok", "status": order.status})
        counts: dict[str, int] = defaultdict(int)
        for result in results:
            counts[result["outcome"]] += 1
        return {"action": data["action"], "results": results, "counts": dict(counts)}

