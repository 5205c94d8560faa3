"""Order shipments: ``/v2/orders/{order_id}/shipments`` (orders.v2.oas2.yml, bigcommerce.md §2.7).

A POST needs ``order_address_id`` (a shipping address of the order) and ``items`` (order-product
ids of physical lines on that address, each quantity at most what is left to ship). It adds to
``quantity_shipped``/``items_shipped`` and moves the order to 2 Shipped when every line is
shipped, else to 3 Partially Shipped. Deleting a shipment gives its quantities back but leaves
the status alone ("Deleting a shipment does not move the order out of Shipped").
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from .errors import NOT_FOUND_V2, ApiError
from .formats import decimal
from .order_json import SHIPPING_PROVIDER_NAMES, shipment_json
from .order_routes import get_order_or_404, v2_list
from .orders import change_status, fully_shipped
from .routing import Call, Reply, Route, no_content
from .state import Order, Shipment, now

TEXT_LIMITS = {"tracking_number": 50, "tracking_link": 500, "comments": 65535,
               "shipping_method": 250, "tracking_carrier": 100}
WRITABLE = set(TEXT_LIMITS) | {"order_address_id", "merchant_shipping_cost", "shipping_provider"}
CUSTOM_PROVIDER = re.compile(r"carrier_[A-Za-z0-9_-]+")
CARRIER_SLUG = re.compile(r"[a-z0-9-]*")


def _invalid(field: str, why: str) -> ApiError:
    return ApiError(400, f"The field '{field}' is invalid: {why}.")


def _check_fields(order: Order, body: dict[str, Any], *, creating: bool) -> None:
    allowed = WRITABLE | ({"items"} if creating else set())
    for key in body:
        if key not in allowed:
            raise ApiError(400, f"The field '{key}' cannot be written to. Please remove it from "
                           "your request before trying again.")
    for key, limit in TEXT_LIMITS.items():
        if key in body:
            if not isinstance(body[key], str):
                raise _invalid(key, "it must be a string")
            if len(body[key]) > limit:
                raise _invalid(key, f"it is {len(body[key])} characters long; the maximum is {limit}")
    provider = body.get("shipping_provider", "")
    if not isinstance(provider, str) or not (provider in SHIPPING_PROVIDER_NAMES
                                             or CUSTOM_PROVIDER.fullmatch(provider)):
        raise _invalid("shipping_provider", f"{provider!r} is not one of "
                       f"{', '.join(repr(p) for p in SHIPPING_PROVIDER_NAMES)} or carrier_{{id}}")
    if not CARRIER_SLUG.fullmatch(body.get("tracking_carrier", "")):
        raise _invalid("tracking_carrier", "use \"\" or an AfterShip courier slug such as \"dhl\"")
    if "merchant_shipping_cost" in body:
        try:
            decimal(body["merchant_shipping_cost"], "merchant_shipping_cost")
        except ValueError as error:
            raise _invalid("merchant_shipping_cost", str(error)) from None
    if creating or "order_address_id" in body:
        address_id = body.get("order_address_id")
        if isinstance(address_id, bool) or not isinstance(address_id, int):
            raise ApiError(400, "The field 'order_address_id' is required: the id of one of the "
                           "order's shipping addresses (GET .../shipping_addresses).")
        if order.address(address_id) is None:
            raise _invalid("order_address_id", f"{address_id} is not a shipping address of order "
                           f"{order.id}")


def _items(order: Order, body: dict[str, Any]) -> list[tuple[int, int, int]]:
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "The field 'items' is required: a list of {\"order_product_id\", "
                       "\"quantity\"} (order_product_id is the id from .../products).")
    wanted: dict[int, int] = {}
    for index, item in enumerate(items):
        field = f"items[{index}]"
        if not isinstance(item, dict):
            raise _invalid(field, "each item must be an object with order_product_id and quantity")
        line_id, quantity = item.get("order_product_id"), item.get("quantity")
        if isinstance(line_id, bool) or not isinstance(line_id, int):
            raise _invalid(f"{field}.order_product_id", "it must be the integer id of an order "
                           "product (not the catalog product_id)")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise _invalid(f"{field}.quantity", "it must be a whole number of at least 1")
        line = order.line(line_id)
        if line is None:
            raise _invalid(f"{field}.order_product_id", f"{line_id} is not a product of order {order.id}")
        if line.type != "physical":
            raise _invalid(f"{field}.order_product_id", f"order product {line_id} is {line.type} "
                           "and is not shipped")
        if line.order_address_id != body["order_address_id"]:
            raise _invalid(f"{field}.order_product_id", f"order product {line_id} ships to address "
                           f"{line.order_address_id}, not {body['order_address_id']}")
        wanted[line_id] = wanted.get(line_id, 0) + quantity
    for line_id, quantity in wanted.items():
        line = order.line(line_id)
        assert line is not None
        left = line.quantity - line.quantity_shipped
        if quantity > left:
            raise ApiError(400, f"The quantity of order product {line_id} to ship ({quantity}) is "
                           f"greater than the quantity left to ship ({left}).")
    return [(line_id, order.line(line_id).product_id, quantity)  # type: ignore[union-attr]
            for line_id, quantity in wanted.items()]


def _shipment_or_404(order: Order, shipment_id: int) -> Shipment:
    shipment = next((s for s in order.shipments if s.id == shipment_id), None)
    if shipment is None:
        raise ApiError(404, NOT_FOUND_V2)
    return shipment


def create_shipment(call: Call, order_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    body = call.json_object()
    _check_fields(order, body, creating=True)
    items = _items(order, body)
    shipment = Shipment(
        id=call.store.next_id("shipment"), order_id=order.id,
        order_address_id=body["order_address_id"], created=now(),
        tracking_number=body.get("tracking_number", ""), tracking_link=body.get("tracking_link", ""),
        merchant_shipping_cost=Decimal(str(body.get("merchant_shipping_cost", "0"))),
        shipping_method=body.get("shipping_method", ""),
        shipping_provider=body.get("shipping_provider", ""),
        tracking_carrier=body.get("tracking_carrier", ""), comments=body.get("comments", ""),
        items=items)
    for line_id, _, quantity in items:
        line = order.line(line_id)
        assert line is not None
        line.quantity_shipped += quantity
    order.shipments.append(shipment)
    complete = fully_shipped(order)
    if complete and order.shipped is None:
        order.shipped = shipment.created
    call.emit(call.store, "store/shipment/created",
              {"type": "shipment", "id": shipment.id, "orderId": order.id})
    if not change_status(call.store, order, 2 if complete else 3, call.emit):
        order.modified = now()
        call.emit(call.store, "store/order/updated", {"type": "order", "id": order.id})
    return Reply(201, shipment_json(order, shipment))


def list_shipments(call: Call, order_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    return v2_list(call, [shipment_json(order, shipment) for shipment in order.shipments])


def count_shipments(call: Call, order_id: int) -> Reply:
    return Reply(200, {"count": len(get_order_or_404(call, order_id).shipments)})


def get_shipment(call: Call, order_id: int, shipment_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    return Reply(200, shipment_json(order, _shipment_or_404(order, shipment_id)))


def update_shipment(call: Call, order_id: int, shipment_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    shipment = _shipment_or_404(order, shipment_id)
    body = call.json_object()
    _check_fields(order, body, creating=False)
    for key, value in body.items():
        setattr(shipment, key, Decimal(str(value)) if key == "merchant_shipping_cost" else value)
    order.modified = now()
    call.emit(call.store, "store/shipment/updated",
              {"type": "shipment", "id": shipment.id, "orderId": order.id})
    return Reply(200, shipment_json(order, shipment))


def _remove(call: Call, order: Order, shipment: Shipment) -> None:
    for line_id, _, quantity in shipment.items:
        line = order.line(line_id)
        if line is not None:
            line.quantity_shipped = max(0, line.quantity_shipped - quantity)
    order.shipments.remove(shipment)
    order.modified = now()
    call.emit(call.store, "store/shipment/deleted",
              {"type": "shipment", "id": shipment.id, "orderId": order.id})


def delete_shipment(call: Call, order_id: int, shipment_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    _remove(call, order, _shipment_or_404(order, shipment_id))
    return no_content()


def delete_shipments(call: Call, order_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    for shipment in list(order.shipments):
        _remove(call, order, shipment)
    return no_content()


ROUTES = (
    Route(("GET",), "/v2/orders/<int:order_id>/shipments", list_shipments, "orders"),
    Route(("POST",), "/v2/orders/<int:order_id>/shipments", create_shipment, "orders"),
    Route(("DELETE",), "/v2/orders/<int:order_id>/shipments", delete_shipments, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/shipments/count", count_shipments, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/shipments/<int:shipment_id>", get_shipment, "orders"),
    Route(("PUT",), "/v2/orders/<int:order_id>/shipments/<int:shipment_id>", update_shipment,
          "orders"),
    Route(("DELETE",), "/v2/orders/<int:order_id>/shipments/<int:shipment_id>", delete_shipment,
          "orders"),
)
