"""Stores: a merchant's storefront connections, their channels and the actions on them.

Settings and credentials are validated by the store's connector (errors name
``settings.<field>``); credentials are write-only. Each store shows its three channels with
their switches, schedule and last outcome, and whether both connectors support them.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import selectinload

from dropstream.api.auth import current_scope, principal
from dropstream.api.pagination import page_schema, paginate
from dropstream.api.store_schemas import (
    ChannelSchema,
    ChannelUpdateSchema,
    PauseSchema,
    RunSchema,
    SetupChecksSchema,
    StoreCreateSchema,
    StoreListArgs,
    StoreSchema,
    StoreUpdateSchema,
)
from dropstream.errors import Conflict
from dropstream.extensions import db
from dropstream.stores import channels as channel_service
from dropstream.stores import services
from dropstream.stores.models import Channel, Store, StoreChannel
from dropstream.stores.setup import run_setup_checks

blp = Blueprint("stores", __name__, url_prefix="/api/v1/stores",
                description="Merchants' storefront connections, their channels and actions.")

CHANNEL_PATH = "<any(orders,shipments,inventory):channel>"


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
    return channel_service.channel_of(db.session, store, Channel(name))


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
