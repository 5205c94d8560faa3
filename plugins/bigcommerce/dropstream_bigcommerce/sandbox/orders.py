"""Orders as a shopper's checkout makes them, and the status changes that follow.

An order is created the way a storefront checkout creates one: first at status 0 (Incomplete,
which fires ``store/order/created``), then moved to the requested status (which fires
``store/order/statusUpdated`` 0 → N and ``store/order/updated``) — the sequence the webhook
examples in bigcommerce.md §4.3 show.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from .errors import SandboxError, UnknownObject
from .formats import decimal
from .state import STATUS_LABELS, Order, OrderLine, Product, ShippingAddress, Store, Variant, now

ADDRESS_FIELDS = ("first_name", "last_name", "company", "street_1", "street_2", "city", "state",
                  "zip", "country", "country_iso2", "phone", "email")
DEFAULT_BILLING = {"first_name": "Jane", "last_name": "Doe", "company": "",
                   "street_1": "455 Main Street", "street_2": "", "city": "Austin",
                   "state": "Texas", "zip": "78751", "country": "United States",
                   "country_iso2": "US", "phone": "555-123-4567", "email": "janedoe@example.com"}
DEFAULT_SHIPPING_METHOD = "Free Shipping"
LINE_KEYS = {"product_id", "sku", "quantity", "variant_id", "options", "address_index", "bundle",
             "type", "name", "price", "recipient_email"}

Emit = Callable[[Store, str, dict[str, Any]], None]


def create_order(store: Store, emit: Emit, *, lines: Sequence[dict[str, Any]], status_id: int = 11,
                 shipping_addresses: Sequence[dict[str, Any]] | None = None,
                 billing_address: dict[str, Any] | None = None, customer_message: str = "",
                 custom_products: Sequence[dict[str, Any]] | None = None) -> Order:
    """Build and store an order; every problem raises :class:`SandboxError` naming the field."""
    check_status_id(status_id, "status_id")
    if not lines and not custom_products:
        raise SandboxError("lines: an order needs at least one line (or custom_products)")
    if not isinstance(customer_message, str):
        raise SandboxError("customer_message must be a string")
    billing = address_fields(billing_address or DEFAULT_BILLING, "billing_address")
    created = now()
    order = Order(id=store.next_id("order"), status_id=0, created=created, modified=created,
                  billing_address=billing, customer_message=customer_message,
                  cart_id=str(uuid.uuid4()), status_history=[(created, 0)])
    specs = list(lines) + [{**product, "type": "custom"} for product in custom_products or ()]
    needs_shipping = any(_is_physical(store, spec) for spec in specs)
    if shipping_addresses is None:
        shipping_addresses = [{**billing, "shipping_method": DEFAULT_SHIPPING_METHOD}] if needs_shipping else []
    for index, spec in enumerate(shipping_addresses):
        order.addresses.append(_shipping_address(store, order, spec, f"shipping_addresses[{index}]"))
    for index, spec in enumerate(specs):
        field = f"lines[{index}]" if index < len(lines) else f"custom_products[{index - len(lines)}]"
        _add_line(store, order, spec, field, billing["email"])
    store.orders[order.id] = order
    emit(store, "store/order/created", {"type": "order", "id": order.id})
    change_status(store, order, status_id, emit)
    return order


def change_status(store: Store, order: Order, status_id: int, emit: Emit) -> bool:
    """Move ``order`` to ``status_id``; fires statusUpdated and updated when it changed."""
    previous = order.status_id
    if previous == status_id:
        return False
    order.status_id = status_id
    order.modified = now()
    order.status_history.append((order.modified, status_id))
    emit(store, "store/order/statusUpdated", {"type": "order", "id": order.id, "status": {
        "previous_status_id": previous, "new_status_id": status_id}})
    emit(store, "store/order/updated", {"type": "order", "id": order.id})
    return True


def archive(store: Store, order: Order, emit: Emit) -> None:
    """``DELETE /v2/orders/{id}``: the order is archived (``is_deleted``), not removed."""
    if not order.is_deleted:
        order.is_deleted = True
        order.modified = now()
        emit(store, "store/order/archived", {"type": "order", "id": order.id})


def check_status_id(status_id: Any, field: str) -> int:
    if isinstance(status_id, bool) or not isinstance(status_id, int) or status_id not in STATUS_LABELS:
        raise SandboxError(f"{field} must be an order status id from 0 to 14, not {status_id!r}")
    return status_id


def shippable(order: Order) -> list[OrderLine]:
    """Lines a shipment can carry: physical ones (bundle parents and their components)."""
    return [line for line in order.lines if line.type == "physical"]


def fully_shipped(order: Order) -> bool:
    """Every physical line is shipped. Which lines of a bundle must ship is not documented;
    the sandbox counts a bundle as shipped when its parent line is, or when all of its
    components are, so a connector may post either."""
    for line in shippable(order):
        if line.is_bundled_product:
            continue
        if line.quantity_shipped >= line.quantity:
            continue
        components = [c for c in order.lines if c.parent_order_product_id == line.id]
        if components and all(c.quantity_shipped >= c.quantity for c in components):
            continue
        return False
    return True


def find_order(store: Store, order_id: int) -> Order:
    order = store.order(order_id)
    if order is None:
        raise UnknownObject(f"no order {order_id} in store {store.hash}")
    return order


def address_fields(spec: Any, field: str) -> dict[str, str]:
    if not isinstance(spec, dict):
        raise SandboxError(f"{field} must be an object with {', '.join(ADDRESS_FIELDS)}")
    result = {}
    for key in ADDRESS_FIELDS:
        value = spec.get(key, "")
        if not isinstance(value, str):
            raise SandboxError(f"{field}.{key} must be a string, not {value!r}")
        result[key] = value
    return result


def _shipping_address(store: Store, order: Order, spec: Any, field: str) -> ShippingAddress:
    if not isinstance(spec, dict):
        raise SandboxError(f"{field} must be an object")
    unknown = set(spec) - set(ADDRESS_FIELDS) - {"shipping_method", "base_cost"}
    if unknown:
        raise SandboxError(f"{field}: unknown field(s) {sorted(unknown)}; allowed: "
                           f"{', '.join(ADDRESS_FIELDS)}, shipping_method, base_cost")
    method = spec.get("shipping_method", DEFAULT_SHIPPING_METHOD)
    if not isinstance(method, str):
        raise SandboxError(f"{field}.shipping_method must be a string such as \"Free Shipping\"")
    try:
        cost = decimal(spec.get("base_cost", "0"), f"{field}.base_cost")
    except ValueError as error:
        raise SandboxError(str(error)) from None
    return ShippingAddress(id=store.next_id("address"), order_id=order.id,
                           fields=address_fields(spec, field), shipping_method=method,
                           base_cost=cost)


def _is_physical(store: Store, spec: Any) -> bool:
    if not isinstance(spec, dict) or spec.get("type") in ("giftcertificate", "digital"):
        return False
    if spec.get("type") == "custom":
        return True
    try:
        product, _ = _resolve(store, spec, "lines")
    except SandboxError:
        return True  # reported properly when the line itself is added
    return product.type == "physical"


def _quantity(spec: dict[str, Any], field: str) -> int:
    quantity = spec.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise SandboxError(f"{field}.quantity must be a whole number of at least 1, not {quantity!r}")
    return quantity


def _address_id(order: Order, spec: dict[str, Any], field: str) -> int:
    index = spec.get("address_index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(order.addresses):
        raise SandboxError(f"{field}.address_index must pick one of the order's "
                           f"{len(order.addresses)} shipping address(es) (0-based), not {index!r}")
    return order.addresses[index].id


def _add_line(store: Store, order: Order, spec: Any, field: str, email: str,
              parent: OrderLine | None = None) -> None:
    if not isinstance(spec, dict):
        raise SandboxError(f"{field} must be an object such as {{\"sku\": \"SKU-1\", \"quantity\": 1}}")
    unknown = set(spec) - LINE_KEYS
    if unknown:
        raise SandboxError(f"{field}: unknown field(s) {sorted(unknown)}; allowed: {sorted(LINE_KEYS)}")
    quantity = _quantity(spec, field)
    kind = spec.get("type")
    if kind in ("giftcertificate", "custom"):
        line = _free_line(store, order, spec, field, quantity, email)
    else:
        product, variant = _resolve(store, spec, field)
        physical = product.type == "physical"
        line = OrderLine(
            id=store.next_id("line"), order_id=order.id, product_id=product.id,
            variant_id=variant.id if variant else None, name=product.name,
            sku=(variant.sku if variant else product.sku), type=product.type, quantity=quantity,
            base_price=Decimal(0) if parent else (variant.price if variant and variant.price
                                                  is not None else product.price),
            order_address_id=(parent.order_address_id if parent else
                              _address_id(order, spec, field) if physical else 0),
            recipient_email="" if physical else email)
        if variant is not None:
            line.product_options = [_product_option(line.id, value) for value in variant.option_values]
    if parent is not None:
        line.parent_order_product_id = parent.id
        line.is_bundled_product = True
    order.lines.append(line)
    bundle = spec.get("bundle")
    if bundle is not None:
        if parent is not None or line.type != "physical" or not isinstance(bundle, list):
            raise SandboxError(f"{field}.bundle must be a list of component lines on a physical "
                               "catalog line (bundles do not nest)")
        for index, component in enumerate(bundle):
            _add_line(store, order, component, f"{field}.bundle[{index}]", email, parent=line)


def _free_line(store: Store, order: Order, spec: dict[str, Any], field: str, quantity: int,
               email: str) -> OrderLine:
    """A gift certificate or a custom product: no catalog product (``product_id`` 0), and a
    custom product may have no SKU at all."""
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise SandboxError(f"{field}.name is required for a custom product or gift certificate")
    sku = spec.get("sku", "")
    if not isinstance(sku, str):
        raise SandboxError(f"{field}.sku must be a string (or left out: custom products may have none)")
    try:
        price = decimal(spec.get("price", "0"), f"{field}.price")
    except ValueError as error:
        raise SandboxError(str(error)) from None
    gift = spec["type"] == "giftcertificate"
    recipient = spec.get("recipient_email", email)
    if not isinstance(recipient, str):
        raise SandboxError(f"{field}.recipient_email must be a string")
    return OrderLine(id=store.next_id("line"), order_id=order.id, product_id=0, variant_id=None,
                     name=name, sku=sku, type="giftcertificate" if gift else "physical",
                     quantity=quantity, base_price=price,
                     order_address_id=0 if gift else _address_id(order, spec, field),
                     recipient_email=recipient if gift else "")


def _resolve(store: Store, spec: dict[str, Any], field: str) -> tuple[Product, Variant | None]:
    if "sku" in spec:
        sku = spec["sku"]
        found = store.variant_by_sku(sku) if isinstance(sku, str) else None
        if found is not None:
            return found
        product = next((p for p in store.products.values() if sku and p.sku == sku), None)
        if product is None:
            raise SandboxError(f"{field}.sku: no product or variant with SKU {sku!r} in store "
                               f"{store.hash}; add it with add_product first")
        return product, _pick_variant(product, spec, field)
    product_id = spec.get("product_id")
    product = store.products.get(product_id) if isinstance(product_id, int) else None
    if product is None:
        raise SandboxError(f"{field}: give an existing product_id or sku (no product "
                           f"{product_id!r} in store {store.hash})")
    return product, _pick_variant(product, spec, field)


def _pick_variant(product: Product, spec: dict[str, Any], field: str) -> Variant | None:
    if "variant_id" in spec:
        variant = next((v for v in product.variants if v.id == spec["variant_id"]), None)
        if variant is None:
            raise SandboxError(f"{field}.variant_id {spec['variant_id']!r} is not a variant of "
                               f"product {product.id}")
        return variant
    if "options" in spec:
        wanted = spec["options"]
        for variant in product.variants:
            labels = {v["option_display_name"]: v["label"] for v in variant.option_values}
            if isinstance(wanted, dict) and labels and labels == wanted:
                return variant
        raise SandboxError(f"{field}.options {wanted!r} match no variant of product {product.id}")
    if product.base_variant is not None or not product.variants:
        return product.base_variant
    raise SandboxError(f"{field}: product {product.id} has variants; pick one with variant_id, "
                       "options or the variant's sku")


def _product_option(line_id: int, value: dict[str, Any]) -> dict[str, Any]:
    name, label = value["option_display_name"], value["label"]
    return {"id": line_id * 10 + value["option_id"] % 10, "option_id": value["option_id"],
            "order_product_id": line_id, "product_option_id": value["option_id"] + 100,
            "display_name": name, "display_name_customer": name, "display_name_merchant": name,
            "display_value": label, "display_value_customer": label,
            "display_value_merchant": label, "value": str(value["id"]),
            "type": "Multiple choice", "name": name, "display_style": "Rectangle"}
