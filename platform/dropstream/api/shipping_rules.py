"""Shipping rules of a store: a store shipping method → a warehouse ship code, plus at most one
default rule. Every change releases orders held for an unmapped method by itself."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from dropstream.api.auth import current_scope
from dropstream.api.common import Trimmed
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.api.stores import load_store
from dropstream.catalog import services
from dropstream.catalog.models import ShippingRule
from dropstream.errors import NotFound
from dropstream.extensions import db

blp = Blueprint("shipping_rules", __name__, url_prefix="/api/v1/stores/<id:store_id>/shipping-rules",
                description="Store shipping method → warehouse ship code.")


class ShippingRuleSchema(Schema):
    id = fields.Integer(dump_only=True)
    store_id = fields.Integer(dump_only=True)
    store_method = Trimmed(validate=validate.Length(max=255), load_default="", metadata={
        "description": "As the store names it; matched ignoring case and spacing. Empty for "
                       "the default rule."})
    warehouse_code = Trimmed(required=True, validate=validate.Length(min=1, max=120))
    is_default = fields.Boolean(load_default=False, metadata={
        "description": "Applies when no other rule matches; at most one per store."})
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ShippingRuleUpdateSchema(Schema):
    store_method = Trimmed(validate=validate.Length(max=255))
    warehouse_code = Trimmed(validate=validate.Length(min=1, max=120))
    is_default = fields.Boolean()


def load_rule(store_id: int, rule_id: int) -> tuple[Any, ShippingRule]:
    store = load_store(store_id)
    rule = db.session.scalars(current_scope().select(
        ShippingRule, ShippingRule.id == rule_id, ShippingRule.store_id == store.id)).first()
    if rule is None:
        raise NotFound("shipping rule")
    return store, rule


@blp.route("")
class ShippingRules(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(ShippingRuleSchema))
    def get(self, args: dict[str, Any], store_id: int) -> dict[str, Any]:
        """List a store's shipping rules (the default rule first)"""
        store = load_store(store_id)
        statement = current_scope().select(ShippingRule, ShippingRule.store_id == store.id).order_by(
            ShippingRule.is_default.desc(), ShippingRule.match_key)
        return paginate(db.session, statement, args)

    @blp.arguments(ShippingRuleSchema)
    @blp.response(201, ShippingRuleSchema)
    def post(self, data: dict[str, Any], store_id: int) -> ShippingRule:
        """Create a shipping rule

        409 when the store has a rule for the same method, or a second default rule.
        """
        rule = services.create_rule(db.session, load_store(store_id), data)
        db.session.commit()
        return rule


@blp.route("/<id:rule_id>")
class ShippingRuleItem(MethodView):
    @blp.response(200, ShippingRuleSchema)
    def get(self, store_id: int, rule_id: int) -> ShippingRule:
        """Get a shipping rule"""
        return load_rule(store_id, rule_id)[1]

    @blp.arguments(ShippingRuleUpdateSchema)
    @blp.response(200, ShippingRuleSchema)
    def patch(self, data: dict[str, Any], store_id: int, rule_id: int) -> ShippingRule:
        """Update a shipping rule"""
        store, rule = load_rule(store_id, rule_id)
        services.update_rule(db.session, store, rule, data)
        db.session.commit()
        return rule

    @blp.response(204)
    def delete(self, store_id: int, rule_id: int) -> None:
        """Delete a shipping rule"""
        store, rule = load_rule(store_id, rule_id)
        services.delete_rule(db.session, store, rule)
        db.session.commit()
