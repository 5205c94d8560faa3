"""Schemas of the stores API: a store with its channels, and the bodies of its actions."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dropstream.api.common import MAX_INT, Id, QueryId, Text
from dropstream.api.pagination import PageArgs
from dropstream.stores.channels import MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS
from dropstream.stores.models import Channel, StoreState

CREDENTIALS_DOC = {"description": "Write-only; validated by the connector's credentials schema "
                                  "and encrypted at rest. Replaces the stored credentials whole."}
#: The channel run intervals an operator may set, as the channel service enforces them.
INTERVAL_RANGE = validate.Range(MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS)


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
    field = fields.String(metadata={"description": "The input a failing check is about, named as a "
                                                   "validation error names it (credentials.access_token); "
                                                   "empty when it concerns no single input."})


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
