"""Orders V2 routes: orders, their products, shipping addresses and consignments, statuses.

Lists are bare JSON arrays paged by ``page``/``limit`` (default 50, at most 250) and an empty
page is ``204 No Content`` (bigcommerce.md §2.1, §5.2). ``PUT /v2/orders/{id}`` writes only
``status_id``, ``staff_notes``, ``customer_message`` and ``external_order_id`` here; any other
field is refused with the message BigCommerce gives for read-only fields.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import NOT_FOUND_V2, ApiError, SandboxError
from .formats import parse_date
from .order_json import address_json, consignments_json, line_json, order_json
from .orders import archive, change_status, check_status_id
from .routing import Call, Reply, Route, no_content
from .state import ORDER_STATUSES, Order, now

WRITABLE = {"status_id", "staff_notes", "customer_message", "external_order_id"}
SORT_KEYS: dict[str, Callable[[Order], Any]] = {
    "id": lambda order: order.id,
    "customer_id": lambda order: 0,
    "date_created": lambda order: int(order.created),
    "date_modified": lambda order: int(order.modified),
    "status_id": lambda order: order.status_id,
    "channel_id": lambda order: 1,
    "external_id": lambda order: "",
}


def get_order_or_404(call: Call, order_id: int) -> Order:
    order = call.store.order(order_id)
    if order is None:
        raise ApiError(404, NOT_FOUND_V2)
    return order


def v2_list(call: Call, items: list[Any], *, default_limit: int = 50) -> Reply:
    page, limit = call.paging(default_limit=default_limit, max_limit=250)
    chunk = items[(page - 1) * limit: page * limit]
    return Reply(200, chunk) if chunk else no_content()


def _includes(call: Call) -> tuple[frozenset[str], bool]:
    include = frozenset(part.strip() for part in call.args.get("include", "").split(",") if part.strip())
    return include, call.args.get("consignment_structure") == "object"


def _date_arg(call: Call, name: str) -> float | None:
    raw = call.args.get(name)
    if not raw:
        return None
    try:
        return parse_date(raw)
    except ValueError:
        raise ApiError(400, f"The query parameter '{name}' must be an RFC-2822 date (Thu, 20 Apr "
                       f"2017 11:32:00 -0400) or an ISO-8601 date (2017-04-20T11:32:00.000-04:00), "
                       f"not {raw!r}.") from None


def _total_arg(call: Call, name: str) -> Decimal | None:
    raw = call.args.get(name)
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise ApiError(400, f"The query parameter '{name}' must be a number such as 12.50.") from None


def filtered_orders(call: Call) -> list[Order]:
    """The store's orders matching the V2 filters (archived orders are left out)."""
    conditions: list[Callable[[Order], bool]] = [lambda order: not order.is_deleted]
    for name, test in (("min_id", lambda order, v: order.id >= v),
                       ("max_id", lambda order, v: order.id <= v),
                       ("status_id", lambda order, v: order.status_id == v)):
        value = call.int_arg(name)
        if value is not None:
            conditions.append(lambda order, t=test, v=value: t(order, v))
    # Dates are compared at the second: the API keeps and shows them to the second.
    for name, date_test in (("min_date_created", lambda order, b: int(order.created) >= b),
                            ("max_date_created", lambda order, b: int(order.created) <= b),
                            ("min_date_modified", lambda order, b: int(order.modified) >= b),
                            ("max_date_modified", lambda order, b: int(order.modified) <= b)):
        bound = _date_arg(call, name)
        if bound is not None:
            conditions.append(lambda order, t=date_test, b=bound: t(order, b))
    email = call.args.get("email")
    if email:
        conditions.append(lambda order: order.billing_address.get("email") == email)
    for name, value_of in (("cart_id", lambda o: o.cart_id),
                           ("external_order_id", lambda o: o.external_order_id)):
        wanted = call.args.get(name)
        if wanted:
            conditions.append(lambda order, f=value_of, w=wanted: f(order) == w)
    for name, is_min in (("min_total", True), ("max_total", False)):
        bound_total = _total_arg(call, name)
        if bound_total is not None:
            conditions.append(lambda order, b=bound_total, m=is_min: (
                _total(order) >= b if m else _total(order) <= b))
    for name, fixed in (("customer_id", 0), ("channel_id", 1)):
        value = call.int_arg(name)
        if value is not None and value != fixed:
            conditions.append(lambda order: False)
    return [order for order in call.store.orders.values() if all(c(order) for c in conditions)]


def _total(order: Order) -> Decimal:
    items = sum((line.base_price * line.quantity for line in order.lines
                 if not line.is_bundled_product), Decimal(0))
    return items + sum((address.base_cost for address in order.addresses), Decimal(0))


def _sorted(call: Call, orders: list[Order]) -> list[Order]:
    raw = call.args.get("sort", "id:asc")
    field, _, direction = raw.partition(":")
    direction = direction or "asc"
    if field not in SORT_KEYS or direction not in ("asc", "desc"):
        raise ApiError(400, f"The query parameter 'sort' must be one of {', '.join(SORT_KEYS)} "
                       f"with an optional :asc or :desc, such as date_modified:asc; not {raw!r}.")
    orders = sorted(orders, key=lambda order: order.id)
    return sorted(orders, key=SORT_KEYS[field], reverse=direction == "desc")


def list_orders(call: Call) -> Reply:
    include, as_object = _includes(call)
    url = call.api_url
    orders = _sorted(call, filtered_orders(call))
    page, limit = call.paging()
    chunk = orders[(page - 1) * limit: page * limit]
    if not chunk:
        return no_content()
    return Reply(200, [order_json(call.store, order, url, include, as_object) for order in chunk])


def count_orders(call: Call) -> Reply:
    orders = filtered_orders(call)
    statuses = [{"id": status_id, "name": label, "system_label": label,
                 "custom_label": call.store.custom_labels[status_id],
                 "system_description": description,
                 "count": sum(1 for order in orders if order.status_id == status_id),
                 "sort_order": sort_order}
                for status_id, label, description, sort_order in ORDER_STATUSES]
    statuses.sort(key=lambda status: status["sort_order"])
    return Reply(200, {"statuses": statuses, "count": len(orders)})


def get_order(call: Call, order_id: int) -> Reply:
    include, as_object = _includes(call)
    order = get_order_or_404(call, order_id)
    return Reply(200, order_json(call.store, order, call.api_url, include, as_object))


def update_order(call: Call, order_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    body = call.json_object()
    for key in body:
        if key not in WRITABLE:
            raise ApiError(400, f"The field '{key}' cannot be written to. Please remove it from "
                           "your request before trying again.")
    if "status_id" in body:
        try:
            check_status_id(body["status_id"], "status_id")
        except SandboxError as error:
            raise ApiError(400, f"The field 'status_id' is invalid: {error}.") from None
    for key in WRITABLE - {"status_id"}:
        if key in body and not isinstance(body[key], str):
            raise ApiError(400, f"The field '{key}' is invalid: it must be a string.")
    changed = False
    for key in WRITABLE - {"status_id"}:
        if key in body and getattr(order, key) != body[key]:
            setattr(order, key, body[key])
            changed = True
    if "status_id" in body and change_status(call.store, order, body["status_id"], call.emit):
        changed = False  # change_status already moved date_modified and fired updated
    elif changed:
        order.modified = now()
        call.emit(call.store, "store/order/updated", {"type": "order", "id": order.id})
    return Reply(200, order_json(call.store, order, call.api_url))


def archive_order(call: Call, order_id: int) -> Reply:
    archive(call.store, get_order_or_404(call, order_id), call.emit)
    return no_content()


def list_order_products(call: Call, order_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    return v2_list(call, [line_json(line) for line in order.lines])


def get_order_product(call: Call, order_id: int, line_id: int) -> Reply:
    line = get_order_or_404(call, order_id).line(line_id)
    if line is None:
        raise ApiError(404, NOT_FOUND_V2)
    return Reply(200, line_json(line))


def list_shipping_addresses(call: Call, order_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    return v2_list(call, [address_json(order, address, call.api_url) for address in order.addresses])


def get_shipping_address(call: Call, order_id: int, address_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    address = order.address(address_id)
    if address is None:
        raise ApiError(404, NOT_FOUND_V2)
    return Reply(200, address_json(order, address, call.api_url))


def get_consignments(call: Call, order_id: int) -> Reply:
    order = get_order_or_404(call, order_id)
    with_lines = "consignments.line_items" in _includes(call)[0]
    return Reply(200, consignments_json(order, call.api_url, with_lines))


def no_quotes(call: Call, order_id: int, address_id: int) -> Reply:
    """Orders placed by API or control panel have no stored quotes: 204 (bigcommerce.md §2.4)."""
    get_order_or_404(call, order_id)
    return no_content()


def no_coupons(call: Call, order_id: int) -> Reply:
    get_order_or_404(call, order_id)
    return no_content()


def _status_json(call: Call, status: tuple[int, str, str, int]) -> dict[str, Any]:
    status_id, label, description, sort_order = status
    return {"id": status_id, "name": label, "system_label": label,
            "custom_label": call.store.custom_labels[status_id],
            "system_description": description, "order": sort_order}


def list_statuses(call: Call) -> Reply:
    return Reply(200, [_status_json(call, status) for status in ORDER_STATUSES])


def get_status(call: Call, status_id: int) -> Reply:
    for status in ORDER_STATUSES:
        if status[0] == status_id:
            return Reply(200, _status_json(call, status))
    raise ApiError(404, NOT_FOUND_V2)


ROUTES = (
    Route(("GET",), "/v2/orders", list_orders, "orders"),
    Route(("GET",), "/v2/orders/count", count_orders, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>", get_order, "orders"),
    Route(("PUT",), "/v2/orders/<int:order_id>", update_order, "orders"),
    Route(("DELETE",), "/v2/orders/<int:order_id>", archive_order, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/products", list_order_products, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/products/<int:line_id>", get_order_product, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/shipping_addresses", list_shipping_addresses,
          "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/shipping_addresses/<int:address_id>",
          get_shipping_address, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/shipping_addresses/<int:address_id>/shipping_quotes",
          no_quotes, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/consignments", get_consignments, "orders"),
    Route(("GET",), "/v2/orders/<int:order_id>/coupons", no_coupons, "orders"),
    Route(("GET",), "/v2/order_statuses", list_statuses, "orders"),
    Route(("GET",), "/v2/order_statuses/<int:status_id>", get_status, "orders"),
)
