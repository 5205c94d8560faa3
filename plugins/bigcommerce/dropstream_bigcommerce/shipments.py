"""Posting a warehouse shipment to BigCommerce: once, on the right address, then the status.

One :class:`FulfillmentData` becomes one ``POST /v2/orders/{id}/shipments`` on its
``order_address_id`` with the order-product ids and quantities, the tracking number (at most 50
characters), the carrier as BigCommerce's ``shipping_provider`` and ``tracking_carrier``, and
DropStream's shipment key in ``comments``. The shipment comes first: changing the status first
would e-mail the customer without tracking.

Idempotency: unless the core says this is the first attempt (nothing can exist yet), the
order's shipments are looked through for the key first, so a POST whose answer was lost is
found instead of repeated. Afterwards the order is read again and its status set only if
BigCommerce did not move it itself (to Shipped, or Partially Shipped when lines remain).
"""

from __future__ import annotations

from typing import Any

from dropstream.connectors.base import RejectedError
from dropstream.connectors.types import FulfillmentData, FulfillmentResult
from dropstream_bigcommerce import carriers
from dropstream_bigcommerce.client import BigCommerceClient
from dropstream_bigcommerce.importing import INCLUDES
from dropstream_bigcommerce.mapping import MappingError, embedded_consignments, integer

SHIPPED, PARTIALLY_SHIPPED = 2, 3
MAX_TRACKING = 50
KEY_PREFIX = "DropStream shipment "


def key_comment(key: str) -> str:
    return f"{KEY_PREFIX}{key}"


def find(client: BigCommerceClient, order_id: int, key: str) -> dict[str, Any] | None:
    """The order's shipment carrying ``key`` in its comments, if any (204: none at all)."""
    marker = key_comment(key)
    for page in client.v2_pages(f"/v2/orders/{order_id}/shipments"):
        for shipment in page:
            if isinstance(shipment, dict) and marker in str(shipment.get("comments") or ""):
                return shipment
    return None


def body(settings: dict[str, Any], fulfillment: FulfillmentData, address_id: int) -> dict[str, Any]:
    provider, tracking_carrier = carriers.resolve(fulfillment.carrier, settings.get("carrier_map"))
    try:
        items = [{"order_product_id": integer(line.line_external_id, "line"), "quantity": line.quantity}
                 for line in fulfillment.lines]
    except MappingError:
        raise RejectedError("A shipment line does not name a BigCommerce order product id.",
                            field="lines") from None
    tracking = (fulfillment.tracking_number or "").strip()
    if len(tracking) > MAX_TRACKING:
        raise RejectedError(f"Tracking number {tracking[:60]!r} is longer than BigCommerce's "
                            f"{MAX_TRACKING} characters; correct it at the warehouse, then retry "
                            "the shipment.", field="tracking_number")
    payload: dict[str, Any] = {
        "order_address_id": address_id, "items": items, "tracking_number": tracking,
        "shipping_provider": provider, "tracking_carrier": tracking_carrier,
        "shipping_method": (fulfillment.shipping_method or fulfillment.carrier or "")[:100],
        "comments": key_comment(fulfillment.key),
    }
    if fulfillment.tracking_url and not provider and not tracking_carrier:
        payload["tracking_link"] = fulfillment.tracking_url[:500]
    return payload


def post(client: BigCommerceClient, settings: dict[str, Any], fulfillment: FulfillmentData) -> FulfillmentResult:
    try:
        order_id = integer(fulfillment.order_external_id, "order")
    except MappingError:
        raise RejectedError(f"{fulfillment.order_external_id!r} is not a BigCommerce order id.",
                            field="order_external_id") from None
    if not getattr(fulfillment, "first_attempt", False):
        existing = find(client, order_id, fulfillment.key)
        if existing is not None:
            return FulfillmentResult(str(existing.get("id")), created=False)
    address_id = _address_id(client, order_id, fulfillment)
    created = client.post(f"/v2/orders/{order_id}/shipments", body(settings, fulfillment, address_id))
    shipment_id = str(created.get("id")) if isinstance(created, dict) else ""
    settle_status(client, settings, order_id)
    return FulfillmentResult(shipment_id, created=True)


def _address_id(client: BigCommerceClient, order_id: int, fulfillment: FulfillmentData) -> int:
    if fulfillment.destination_external_id:
        try:
            return integer(fulfillment.destination_external_id, "destination")
        except MappingError:
            raise RejectedError("The shipment's destination is not a BigCommerce shipping "
                                "address id.", field="destination_external_id") from None
    addresses = [a for page in client.v2_pages(f"/v2/orders/{order_id}/shipping_addresses") for a in page]
    if len(addresses) != 1:
        raise RejectedError(f"Order {order_id} ships to {len(addresses)} addresses and the shipment "
                            "does not say which one.", field="destination_external_id")
    return integer(addresses[0].get("id"), "shipping address id")


def settle_status(client: BigCommerceClient, settings: dict[str, Any], order_id: int) -> None:
    """Read the order again; set Shipped / Partially Shipped only if BigCommerce did not."""
    order = client.get(f"/v2/orders/{order_id}", INCLUDES)
    if not isinstance(order, dict):
        return
    expected = SHIPPED if _fully_shipped(order) else PARTIALLY_SHIPPED
    status = order.get("status_id")
    # Only move an order that is still where DropStream left it: never undo a refund or a
    # cancellation a person made meanwhile.
    movable = {settings.get("monitored_status_id"), settings.get("sent_status_id"), PARTIALLY_SHIPPED}
    if status != expected and status in movable:
        client.put(f"/v2/orders/{order_id}", {"status_id": expected})


def _fully_shipped(order: dict[str, Any]) -> bool:
    consignments = embedded_consignments(order)
    if consignments is None:
        try:
            return float(order.get("items_shipped") or 0) >= float(order.get("items_total") or 0)
        except (TypeError, ValueError):
            return False
    lines = [item for group in consignments.get("shipping") or [] for item in group.get("line_items") or []]
    by_parent: dict[Any, list[dict[str, Any]]] = {}
    for line in lines:
        by_parent.setdefault(line.get("parent_order_product_id"), []).append(line)

    def done(line: dict[str, Any]) -> bool:
        return float(line.get("quantity_shipped") or 0) >= float(line.get("quantity") or 0)

    for line in lines:
        if line.get("is_bundled_product") or line.get("type", "physical") != "physical":
            continue
        components = by_parent.get(line.get("id"), [])
        if not done(line) and not (components and all(done(c) for c in components)):
            return False
    return True
