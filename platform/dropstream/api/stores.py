"""Stores: a merchant's storefront connections, their channels and the actions on them.

Settings and credentials are validated by the store's connector (errors name
``settings.<field>``); credentials are write-only. Each store shows its three channels with
their switches, schedule and last outcome, and whether both connectors support them.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import selectinload

from dropstream.api.auth import current_scope, principal
from dropstream.api.common import MAX_INT, Id, QueryId, Text
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.errors import Conflict
from dropstream.extensions import db
from dropstream.stores import channels as channel_service
from dropstream.stores import services
from dropstream.stores.models import Channel, Store, StoreChannel, StoreState
from dropstream.stores.setup import run_setup_checks

blp = Blueprint("stores", __name__, url_prefix="/api/v1/stores",
                description="Merchants' storefront connections, their channels and actions.")

CHANNEL_PATH = "<any(orders,shipments,inventory):channel>"
CREDENTIALS_DOC = {"description": "Write-only; validated by the connector's credentials schema "
                                  "and encrypted at rest. Replaces the stored credentials whole."}
#: Shortest and longest channel run intervals an operator may set (1 minute, 1 week).
INTERVAL_RANGE = validate.Range(60, 7 * 24 * 3600)


class ChannelSchema(Schema):
    channel = fields.Enum(Channel, by_value=True)
    enabled = fields.Boolean()
    paused = fields.Boolean()
    interval_seconds = fields.Integer()
    last_run_at = fields.DateTime(allow_none=True)
    last_success_at = fields.DateTime(allow_none=True)
    next_run_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    failures = fields.Integer()
    supported = fields.Boolean(metadata={"description": "Both connectors can run this channel."})
    unsupported_reason = fields.String(allow_none=True)


class StoreSchema(Schema):
    id = fields.Integer()
    merchant_id = fields.Integer()
    name = fields.String()
    connector_id = fields.String()
    external_id = fields.String(allow_none=True)
    warehouse_id = fields.Integer(allow_none=True)
    settings = fields.Dict()
    warehouse_account = fields.Dict()
    credentials_set = fields.Boolean()
    state = fields.Enum(StoreState, by_value=True)
    state_reason = fields.String(allow_none=True)
    safety_buffer = fields.Integer()
    channels = fields.List(fields.Nested(ChannelSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class StoreCreateSchema(Schema):
    name = Text(200, min_length=1, required=True)
    connector_id = Text(64, min_length=1, required=True, metadata={
        "description": "A registered storefront connector (see /connectors)."})
    merchant_id = Id(metadata={"description": "Required for provider users; merchant users "
                                              "create stores for their own merchant."})
    external_id = Text(200, allow_none=True, metadata={
        "description": "The store's id at its platform (BigCommerce: the store hash)."})
    warehouse_id = Id(allow_none=True, metadata={"description": "Provider staff only."})
    settings = fields.Dict(keys=fields.String(), load_default=dict)
    credentials = fields.Dict(keys=fields.String(), load_only=True, metadata=CREDENTIALS_DOC)
    warehouse_account = fields.Dict(keys=fields.String(), metadata={
        "description": "The store's account at its warehouse, validated by the warehouse "
                       "connector's account schema."})
    safety_buffer = fields.Integer(strict=True, load_default=0, validate=validate.Range(0, MAX_INT))


class StoreUpdateSchema(Schema):
    name = Text(200, min_length=1)
    external_id = Text(200, allow_none=True)
    warehouse_id = Id(allow_none=True, metadata={"description": "Provider staff only."})
    settings = fields.Dict(keys=fields.String(), metadata={
        "description": "Merged over the stored settings, then validated whole."})
    credentials = fields.Dict(keys=fields.String(), load_only=True, metadata=CREDENTIALS_DOC)
    warehouse_account = fields.Dict(keys=fields.String())
    safety_buffer = fields.Integer(strict=True, validate=validate.Range(0, MAX_INT))


class StoreListArgs(PageArgs):
    merchant_id = QueryId()
    state = fields.Enum(StoreState, by_value=True)


class SetupCheckSchema(Schema):
    key = fields.String()
    title = fields.String()
    passed = fields.Boolean()
    message = fields.String()
    fix = fields.String()
    details = fields.List(fields.String())
    required = fields.Boolean()


class SetupChecksSchema(Schema):
    passed = fields.Boolean(metadata={"description": "Every required check passed."})
    checks = fields.List(fields.Nested(SetupCheckSchema))


class RunSchema(Schema):
    full = fields.Boolean(load_default=False, metadata={
        "description": "Orders: backfill; inventory: full sync instead of changes."})


class ChannelUpdateSchema(Schema):
    enabled = fields.Boolean()
    paused = fields.Boolean()
    interval_seconds = fields.Integer(strict=True, validate=INTERVAL_RANGE)


class PauseSchema(Schema):
    reason = Text(500, load_default="")


def present_store(store: Store) -> dict[str, Any]:
    support = services.channel_support(store)
    return {
        **{key: getattr(store, key) for key in (
            "id", "merchant_id", "name", "connector_id", "external_id", "warehouse_id", "settings",
            "warehouse_account", "state", "state_reason", "safety_buffer", "created_at",
            "updated_at")},
        "credentials_set": store.has_credentials,
        "channels": [present_channel(channel, support[channel.channel]) for channel in store.channels],
    }


def present_channel(channel: StoreChannel, reason: str | None) -> dict[str, Any]:
    return {
        **{key: getattr(channel, key) for key in (
            "channel", "enabled", "paused", "interval_seconds", "last_run_at", "last_success_at",
            "next_run_at", "last_error", "failures")},
        "supported": reason is None,
        "unsupported_reason": reason,
    }


def load_store(store_id: int) -> Store:
    return current_scope().get(db.session, Store, store_id)


def load_channel(store: Store, name: str) -> StoreChannel:
    channel = store.channel(Channel(name))
    if channel is None:  # a store created before the channel existed
        channel = StoreChannel(provider_id=store.provider_id, merchant_id=store.merchant_id,
                               channel=Channel(name))
        store.channels.append(channel)
        db.session.flush()
    return channel


@blp.route("")
class Stores(MethodView):
    @blp.arguments(StoreListArgs, location="query")
    @blp.response(200, page_schema(StoreSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List stores"""
        statement = current_scope().select(Store).order_by(Store.id).options(
            selectinload(Store.channels), selectinload(Store.warehouse))
        if "merchant_id" in args:
            statement = statement.where(Store.merchant_id == args["merchant_id"])
        if "state" in args:
            statement = statement.where(Store.state == args["state"])
        page = paginate(db.session, statement, args)
        page["items"] = [present_store(store) for store in page["items"]]
        return page

    @blp.arguments(StoreCreateSchema)
    @blp.response(201, StoreSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a store

        Validates ``settings``/``credentials`` with the storefront connector's schemas and
        ``warehouse_account`` with the linked warehouse's; creates the store's three channels.
        The store starts in ``setting_up``: run its set-up checks next. Only provider staff
        link a warehouse (``warehouse_id``, ``warehouse_account``).
        """
        store = services.create_store(db.session, current_scope(), data)
        db.session.commit()
        return present_store(store)


@blp.route("/<id:store_id>")
class StoreItem(MethodView):
    @blp.response(200, StoreSchema)
    def get(self, store_id: int) -> dict[str, Any]:
        """Get a store"""
        return present_store(load_store(store_id))

    @blp.arguments(StoreUpdateSchema)
    @blp.response(200, StoreSchema)
    def patch(self, data: dict[str, Any], store_id: int) -> dict[str, Any]:
        """Update a store"""
        store = load_store(store_id)
        services.update_store(db.session, current_scope(), store, data)
        db.session.commit()
        return present_store(store)

    @blp.response(204)
    def delete(self, store_id: int) -> None:
        """Delete a store

        Deletes its orders, listings, rules and history too. Refused with 409 while the store
        is active: pause it first.
        """
        services.delete_store(db.session, load_store(store_id))
        db.session.commit()


@blp.route("/<id:store_id>/setup-checks")
class StoreSetupChecks(MethodView):
    @blp.response(200, SetupChecksSchema)
    def post(self, store_id: int) -> dict[str, Any]:
        """Run the set-up checks

        Asks the store's connector, then its warehouse's, to check credentials, permissions and
        configuration. Each failing check says how to fix it.
        """
        checks = run_setup_checks(db.session, load_store(store_id))
        db.session.commit()
        return {"passed": all(c.passed for c in checks if c.required), "checks": checks}


@blp.route(f"/<id:store_id>/channels/{CHANNEL_PATH}")
class StoreChannelItem(MethodView):
    @blp.arguments(ChannelUpdateSchema, required=False)
    @blp.response(200, ChannelSchema)
    def patch(self, data: dict[str, Any], store_id: int, channel: str) -> dict[str, Any]:
        """Switch a channel on or off, pause it, or change its interval"""
        store = load_store(store_id)
        row = channel_service.set_channel(db.session, load_channel(store, channel), **data)
        db.session.commit()
        return present_channel(row, services.channel_support(store)[row.channel])


@blp.route(f"/<id:store_id>/channels/{CHANNEL_PATH}/run")
class StoreChannelRun(MethodView):
    @blp.arguments(RunSchema, required=False)
    @blp.response(202, ChannelSchema)
    def post(self, data: dict[str, Any], store_id: int, channel: str) -> dict[str, Any]:
        """Run a channel now

        Queues a run (``full``: an orders backfill or a full inventory sync). 409
        ``not_supported`` when the connectors cannot run this channel.
        """
        store = load_store(store_id)
        row = load_channel(store, channel)
        reason = services.channel_support(store)[row.channel]
        if reason is not None:
            raise Conflict(reason, code="not_supported")
        channel_service.run_now(db.session, row, full=data["full"])
        db.session.commit()
        return present_channel(row, None)


@blp.route("/<id:store_id>/pause")
class StorePause(MethodView):
    @blp.arguments(PauseSchema, required=False)
    @blp.response(200, StoreSchema)
    def post(self, data: dict[str, Any], store_id: int) -> dict[str, Any]:
        """Pause a store

        Nothing is imported, forwarded or pushed for it until it is resumed; work already
        queued waits.
        """
        store = load_store(store_id)
        channel_service.pause_store(db.session, store, data["reason"] or f"Paused by {principal().actor}.")
        db.session.commit()
        return present_store(store)


@blp.route("/<id:store_id>/resume")
class StoreResume(MethodView):
    @blp.response(200, StoreSchema)
    def post(self, store_id: int) -> dict[str, Any]:
        """Resume a paused store"""
        store = load_store(store_id)
        channel_service.resume_store(db.session, store)
        db.session.commit()
        return present_store(store)
