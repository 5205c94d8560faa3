"""Posting a warehouse shipment to BigCommerce: once, on the right address, then the status.

One :class:`FulfillmentData` becomes one ``POST /v2/orders/{id}/shipments`` on its
``order_address_id`` with the order-product ids and quantities, the tracking number (at most 50
characters), the carrier as BigCommerce's ``shipping_provider`` and ``tracking_carrier``, and
DropStream's shipment key in ``comments``. The shipment comes first: changing the status first
would e-mail the customer without tracking.

Idempotency: unless the core says this is the first attempt (nothing can exist yet), the
order's shipments are looked through for the key first, so a POST whose answer was lost is
found instead of repeated. Afterwards the order's status is checked — by the next polling sweep,
which reads it anyway — and set only if BigCommerce did not move it itself (to Shipped, or
Partially Shipped when lines remain); see :mod:`.status_checks`. The happy path is one call.
"""

from __future__ import annotations

import re
from typing import Any

from dropstream.connectors.base import RejectedError
from dropstream.connectors.types import FulfillmentData, FulfillmentResult
from dropstream_bigcommerce import carriers
from dropstream_bigcommerce.client import BigCommerceClient
from dropstream_bigcommerce.importing import INCLUDES
from dropstream_bigcommerce.mapping import MappingError, integer
from dropstream_bigcommerce.status_checks import CheckStore, settle_overdue

MAX_TRACKING = 50
KEY_PREFIX = "DropStream shipment "


def key_comment(key: str) -> str:
    return f"{KEY_PREFIX}{key}"


def find(client: BigCommerceClient, order_id: int, key: str) -> dict[str, Any] | None:
    """The order's shipment carrying ``key`` in its comments, if any (204: none at all). The
    key must end there: ``ds-shipment-1`` is not ``ds-shipment-12`` (taking one for the other
    would leave a shipment never posted)."""
    marker = re.compile(re.escape(key_comment(key)) + r"(?![\w-])")
    for page in client.v2_pages(f"/v2/orders/{order_id}/shipments"):
        for shipment in page:
            if isinstance(shipment, dict) and marker.search(str(shipment.get("comments") or "")):
                return shipment
    return None


def body(settings: dict[str, Any], fulfillment: FulfillmentData, address_id: int) -> dict[str, Any]:
    provider, tracking_carrier = carriers.resolve(fulfillment.carrier, settings.get("carrier_map"))
    try:
        items = [
            {"order_product_id": integer(line.line_external_id, "line"), "quantity": line.quantity}
            for line in fulfillment.lines
        ]
    except MappingError:
        raise RejectedError(
            "A shipment line does not name a BigCommerce order product id.", field="lines"
        ) from None
    tracking = (fulfillment.tracking_number or "").strip()
    if len(tracking) > MAX_TRACKING:
        raise RejectedError(
            f"Tracking number {tracking[:60]!r} is longer than BigCommerce's "
            f"{MAX_TRACKING} characters; correct it at the warehouse, then retry "
            "the shipment.",
            field="tracking_number",
        )
    payload: dict[str, Any] = {
        "order_address_id": address_id,
        "items": items,
        "tracking_number": tracking,
        "shipping_provider": provider,
        "tracking_carrier": tracking_carrier,
        "shipping_method": (fulfillment.shipping_method or fulfillment.carrier or "")[:100],
        "comments": key_comment(fulfillment.key),
    }
    if fulfillment.tracking_url and not provider and not tracking_carrier:
        payload["tracking_link"] = fulfillment.tracking_url[:500]
    return payload


def post(
    client: BigCommerceClient,
    settings: dict[str, Any],
    fulfillment: FulfillmentData,
    checks: CheckStore,
) -> FulfillmentResult:
    try:
        order_id = integer(fulfillment.order_external_id, "order")
    except MappingError:
        raise RejectedError(
            f"{fulfillment.order_external_id!r} is not a BigCommerce order id.",
            field="order_external_id",
        ) from None
    if not getattr(fulfillment, "first_attempt", False):
        existing = find(client, order_id, fulfillment.key)
        if existing is not None:
            return FulfillmentResult(str(existing.get("id")), created=False)
    address_id = _address_id(client, order_id, fulfillment)
    settle_overdue(client, settings, checks, INCLUDES)
    created = client.post(
        f"/v2/orders/{order_id}/shipments", body(settings, fulfillment, address_id)
    )
    shipment_id = str(created.get("id")) if isinstance(created, dict) else ""
    checks.add(client.store_hash, order_id)  # the status is confirmed later (see status_checks)
    return FulfillmentResult(shipment_id, created=True)


def _address_id(client: BigCommerceClient, order_id: int, fulfillment: FulfillmentData) -> int:
    if fulfillment.destination_external_id:
        try:
            return integer(fulfillment.destination_external_id, "destination")
        except MappingError:
            raise RejectedError(
                "The shipment's destination is not a BigCommerce shipping address id.",
                field="destination_external_id",
            ) from None
    addresses = [
        a for page in client.v2_pages(f"/v2/orders/{order_id}/shipping_addresses") for a in page
    ]
    if len(addresses) != 1:
        raise RejectedError(
            f"Order {order_id} ships to {len(addresses)} addresses and the shipment "
            "does not say which one.",
            field="destination_external_id",
        )
    return integer(addresses[0].get("id"), "shipping address id")
