"""What a BigCommerce store asks for: its settings (shown and editable) and its credentials
(write-only, encrypted at rest by the core).

Every field says what it is for and what happens when it is wrong, because these schemas are
what the API and console render as forms.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates

from dropstream_bigcommerce.carriers import PROVIDERS

DEFAULT_API_BASE_URL = "https://api.bigcommerce.com"
#: BigCommerce's "Awaiting Fulfillment": checkout done and payment confirmed.
AWAITING_FULFILLMENT = 11
#: BigCommerce's "Awaiting Shipment": pulled and packed, waiting for the carrier.
AWAITING_SHIPMENT = 9
CANCELLED = 5
#: Store hashes are short lower-case alphanumerics (the segment after /stores/ in the API path).
STORE_HASH = re.compile(r"^[a-z0-9]{1,40}$")
MAX_STATUS_ID = 1000


def _status_id(**kwargs: Any) -> fields.Integer:
    # Not strict: a form (the console's status picker) sends the id as text.
    return fields.Integer(validate=validate.Range(0, MAX_STATUS_ID), **kwargs)


class BigCommerceSettings(Schema):
    """Settings of one BigCommerce store in DropStream."""

    api_base_url = fields.String(
        load_default=DEFAULT_API_BASE_URL,
        validate=validate.Length(max=300),
        metadata={
            "description": "Leave the default; a sandbox address only for the demo and tests."
        },
    )
    monitored_status_id = _status_id(
        load_default=AWAITING_FULFILLMENT,
        metadata={
            "description": "Orders are imported when they reach this BigCommerce status id "
            "(11 Awaiting Fulfillment; the set-up checks list your store's statuses)."
        },
    )
    sent_status_id = _status_id(
        load_default=AWAITING_SHIPMENT,
        allow_none=True,
        metadata={
            "description": "Status id the store's order moves to once the warehouse accepted it "
            "(9 Awaiting Shipment); 0 or empty leaves the status alone."
        },
    )
    backfill_from = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "On the first run, import orders changed since this time (ISO 8601 "
            "with a time zone). Empty: the last 7 days."
        },
    )
    location_id = fields.Integer(
        strict=True,
        load_default=1,
        validate=validate.Range(1, 2**31 - 1),
        metadata={
            "description": "BigCommerce inventory location stock "
            "is written to (1 is the store's default location)."
        },
    )
    carrier_map = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        values=fields.String(validate=validate.Length(max=64)),
        load_default=dict,
        metadata={
            "description": "Warehouse carrier code → BigCommerce shipping "
            "provider (ups, fedex, usps, auspost, "
            "canadapost, royalmail, … or carrier_<id>); "
            "adds to or overrides the defaults."
        },
    )

    @validates("api_base_url")
    def _check_url(self, value: str, **kwargs: Any) -> None:
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
            raise ValidationError("Give an address like https://api.bigcommerce.com.")

    @validates("carrier_map")
    def _check_carriers(self, value: dict[str, str], **kwargs: Any) -> None:
        wrong = sorted(
            v
            for v in value.values()
            if v and v not in PROVIDERS and not re.match(r"^carrier_\d+$", v)
        )
        if wrong:
            raise ValidationError(
                f"Not BigCommerce shipping providers: {', '.join(wrong)}. Use one "
                f"of {', '.join(sorted(PROVIDERS))} or carrier_<id>."
            )

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["api_base_url"] = data["api_base_url"].rstrip("/")
        return data


class BigCommerceCredentials(Schema):
    """A store-level API account (Settings › Store-level API accounts, token type "V2/V3 API
    token"). All fields are write-only; the access token is checked by the set-up checks."""

    store_hash = fields.String(
        required=True,
        load_only=True,
        metadata={"description": "The part between /stores/ and /v3/ in the account's API path."},
    )
    client_id = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=200)
    )
    client_secret = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=200)
    )
    access_token = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=200)
    )

    @validates("store_hash")
    def _check_hash(self, value: str, **kwargs: Any) -> None:
        if not STORE_HASH.match(value.strip().lower()):
            raise ValidationError(
                "A store hash is lower-case letters and digits, e.g. abc123de: "
                "copy it from the API path https://api.bigcommerce.com/stores/"
                "<store hash>/v3/."
            )

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data = {key: value.strip() for key, value in data.items()}
        data["store_hash"] = data["store_hash"].lower()
        return data
