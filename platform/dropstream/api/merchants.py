"""Merchants of the signed-in provider. Provider admins create and edit them; everyone else
reads (a merchant user sees only its own merchant)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from dropstream.api.auth import current_scope, require_provider_admin
from dropstream.api.common import Text
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.extensions import db
from dropstream.tenants.models import Merchant, Provider
from dropstream.tenants.services import create_merchant

blp = Blueprint("merchants", __name__, url_prefix="/api/v1/merchants",
                description="The provider's merchants (its clients).")


class MerchantSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    contact_email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class MerchantUpdateSchema(Schema):
    name = Text(200, min_length=1)
    contact_email = fields.Email(allow_none=True, validate=validate.Length(max=320))


@blp.route("")
class Merchants(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(MerchantSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List merchants

        Provider users see every merchant of their provider; merchant users see their own.
        """
        scope = current_scope()
        return paginate(db.session, scope.select(Merchant).order_by(Merchant.id), args)

    @blp.arguments(MerchantSchema)
    @blp.response(201, MerchantSchema)
    def post(self, data: dict[str, Any]) -> Merchant:
        """Create a merchant (provider admins)"""
        require_provider_admin()
        scope = current_scope()
        provider = db.session.scalars(scope.select(Provider)).one()
        merchant = create_merchant(db.session, provider, data["name"], data.get("contact_email"))
        db.session.commit()
        return merchant


@blp.route("/<id:merchant_id>")
class MerchantItem(MethodView):
    @blp.response(200, MerchantSchema)
    def get(self, merchant_id: int) -> Merchant:
        """Get a merchant"""
        return current_scope().get(db.session, Merchant, merchant_id)

    @blp.arguments(MerchantUpdateSchema)
    @blp.response(200, MerchantSchema)
    def patch(self, data: dict[str, Any], merchant_id: int) -> Merchant:
        """Update a merchant (provider admins)"""
        require_provider_admin()
        merchant = current_scope().get(db.session, Merchant, merchant_id)
        for key, value in data.items():
            setattr(merchant, key, value)
        db.session.commit()
        return merchant
