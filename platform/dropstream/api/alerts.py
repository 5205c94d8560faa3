"""Alerts: problems grouped by cause, counted, and resolved by staff or when the cause is fixed."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from dropstream.alerts.models import Alert
from dropstream.api.auth import current_scope, require_provider
from dropstream.api.common import QueryId, Text
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.db import utcnow
from dropstream.extensions import db

blp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts",
                description="Grouped problems that need a person.")


class AlertSchema(Schema):
    id = fields.Integer()
    merchant_id = fields.Integer()
    store_id = fields.Integer(allow_none=True)
    order_id = fields.Integer(allow_none=True)
    code = fields.String()
    severity = fields.String()
    message = fields.String()
    occurrences = fields.Integer()
    first_seen_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    resolved_at = fields.DateTime(allow_none=True)
    open = fields.Function(lambda alert: alert.resolved_at is None)


class AlertListArgs(PageArgs):
    state = fields.String(validate=validate.OneOf(["open", "resolved"]))
    store_id = QueryId()
    code = Text(64)


@blp.route("")
class Alerts(MethodView):
    @blp.arguments(AlertListArgs, location="query")
    @blp.response(200, page_schema(AlertSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List alerts, most recent first"""
        statement = current_scope().select(Alert).order_by(Alert.last_seen_at.desc(), Alert.id.desc())
        if args.get("state") == "open":
            statement = statement.where(Alert.resolved_at.is_(None))
        elif args.get("state") == "resolved":
            statement = statement.where(Alert.resolved_at.is_not(None))
        if "store_id" in args:
            statement = statement.where(Alert.store_id == args["store_id"])
        if args.get("code"):
            statement = statement.where(Alert.code == args["code"])
        return paginate(db.session, statement, args)


@blp.route("/<id:alert_id>")
class AlertItem(MethodView):
    @blp.response(200, AlertSchema)
    def get(self, alert_id: int) -> Alert:
        """Get an alert"""
        return current_scope().get(db.session, Alert, alert_id)


@blp.route("/<id:alert_id>/resolve")
class AlertResolve(MethodView):
    @blp.response(200, AlertSchema)
    def post(self, alert_id: int) -> Alert:
        """Resolve an alert (provider staff)

        Idempotent. The alert re-opens by itself if the problem happens again.
        """
        require_provider()
        alert = current_scope().get(db.session, Alert, alert_id)
        if alert.resolved_at is None:
            alert.resolved_at = utcnow()
            db.session.commit()
        return alert
