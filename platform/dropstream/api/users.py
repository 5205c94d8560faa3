"""The provider's users (staff and merchant users). Provider admins only."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from dropstream.api.auth import current_scope, require_provider_admin
from dropstream.api.common import Id, QueryId, Text, reference
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.extensions import db
from dropstream.tenants.models import Merchant, Provider, Role, User
from dropstream.tenants.services import create_user

blp = Blueprint("users", __name__, url_prefix="/api/v1/users",
                description="People who sign in: provider staff and merchant users.")


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email(required=True, validate=validate.Length(max=320))
    name = Text(200, load_default="")
    role = fields.Enum(Role, by_value=True, required=True)
    merchant_id = Id(allow_none=True, metadata={"description": "Required for merchant roles."})
    password = Text(1024, min_length=1, load_only=True, metadata={
        "description": "Optional: without one the user can only use API keys."})
    is_active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class UserListArgs(PageArgs):
    role = fields.Enum(Role, by_value=True)
    merchant_id = QueryId()


@blp.route("")
class Users(MethodView):
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, page_schema(UserSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List users (provider admins)"""
        require_provider_admin()
        statement = current_scope().select(User).order_by(User.id)
        if "role" in args:
            statement = statement.where(User.role == args["role"])
        if "merchant_id" in args:
            statement = statement.where(User.merchant_id == args["merchant_id"])
        return paginate(db.session, statement, args)

    @blp.arguments(UserSchema)
    @blp.response(201, UserSchema)
    def post(self, data: dict[str, Any]) -> User:
        """Create a user (provider admins)

        Merchant roles need ``merchant_id``; provider roles must not have one.
        """
        require_provider_admin()
        scope = current_scope()
        merchant = reference(scope, Merchant, data.get("merchant_id"), "merchant_id")
        provider = db.session.scalars(scope.select(Provider)).one()
        user = create_user(db.session, provider=provider, email=data["email"], role=data["role"],
                           password=data.get("password"), merchant=merchant, name=data["name"])
        db.session.commit()
        return user


@blp.route("/<id:user_id>")
class UserItem(MethodView):
    @blp.response(200, UserSchema)
    def get(self, user_id: int) -> User:
        """Get a user (provider admins)"""
        require_provider_admin()
        return current_scope().get(db.session, User, user_id)
