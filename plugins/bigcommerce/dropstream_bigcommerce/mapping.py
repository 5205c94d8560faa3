"""BigCommerce order JSON → DropStream's canonical :class:`OrderData` (pure functions, no I/O).

The order comes from ``GET /v2/orders/{id}`` with
``include=consignments.line_items&consignment_structure=object``:
its shipping consignments carry the address, the shipping method and the order products going
there; digital and gift-certificate products sit in their own consignments. When lines are not
embedded (an older store, or a list read without includes) the caller passes the order products
and shipping addresses it read separately.

Anything malformed raises :class:`MappingError` naming the field (``products[2].quantity: …``,
the path the console shows), so the order is kept as unreadable (with its payload) instead of
being lost or half-imported. ``products[i]`` counts the order's products as the order is read:
shipping consignments first, in address order, then downloads and gift certificates (the order
DropStream's copy keeps its lines in).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from dropstream.connectors.types import Address, Destination, LineKind, OrderData, OrderLine
from dropstream_bigcommerce.schemas import CANCELLED

#: An optional minus and digits: what a whole number sent as text may look like.
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,30}")

KINDS = {
    "physical": LineKind.PHYSICAL,
    "digital": LineKind.DIGITAL,
    "giftcertificate": LineKind.GIFT_CERTIFICATE,
    "gift_certificate": LineKind.GIFT_CERTIFICATE,
}


class MappingError(ValueError):
    """The store's data cannot be read into an order. ``field`` is the path of the field
    (``products[2].quantity``); the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def parse_date(value: Any, field: str) -> datetime:
    """An RFC-2822 date (what BigCommerce sends) or ISO 8601, as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise MappingError(field, f"missing or not a date: {_shown(value)}")
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise MappingError(field, f"not a date: {_shown(value)}") from None
    if parsed.tzinfo is None:  # RFC 2822's "-0000" means "UTC, origin unknown"
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # the year 9999 west of UTC, or 1 east of it
        raise MappingError(field, f"not a date DropStream can keep: {_shown(value)}") from None


def rfc2822(moment: datetime) -> str:
    """Format for BigCommerce's date filters (``Tue, 05 Mar 2019 21:40:11 +0000``)."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def money(value: Any, field: str) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise MappingError(field, f"not an amount: {_shown(value)}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise MappingError(field, f"not an amount: {_shown(value)}") from None
    if not amount.is_finite():
        raise MappingError(field, f"not an amount: {_shown(value)}")
    return amount


def integer(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise MappingError(field, f"not a whole number: {_shown(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    raise MappingError(field, f"not a whole number: {_shown(value)}")


def _shown(value: Any) -> str:
    """A value as an error message quotes it: short (the console shows it on one line)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def address(data: Any, field: str) -> Address:
    if not isinstance(data, dict):
        raise MappingError(field, "not an address object")
    name = " ".join(
        part
        for part in (text(data.get("first_name")).strip(), text(data.get("last_name")).strip())
        if part
    )
    return Address(
        name=name,
        company=text(data.get("company")),
        street1=text(data.get("street_1")),
        street2=text(data.get("street_2")),
        city=text(data.get("city")),
        state=text(data.get("state")),
        postal_code=text(data.get("zip")),
        country_code=text(data.get("country_iso2")).upper(),
        phone=text(data.get("phone")),
        email=text(data.get("email")),
    )


def embedded_consignments(order: dict[str, Any]) -> dict[str, Any] | None:
    """The order's consignments with their order products embedded, or None when they were not
    included (then the products must be read separately)."""
    consignments = order.get("consignments")
    if isinstance(consignments, list):  # the legacy array structure: one object inside
        consignments = consignments[0] if len(consignments) == 1 else None
    if not isinstance(consignments, dict) or not any(
        isinstance(consignments.get(kind), list) for kind in ("shipping", "pickups", "downloads")
    ):
        return None  # absent, or a resource link ({url, resource})
    groups = _consignment_groups(consignments)
    for _kind, _group, items in groups:
        if not isinstance(items, list) or any(
            not isinstance(i, dict) or "id" not in i for i in items
        ):
            return None  # resource links ({url, resource}), not order products
    return consignments


def embeds_every_line(order: dict[str, Any], consignments: dict[str, Any]) -> bool:
    """Whether the consignments hold every unit the order counts (``items_total``), so that a
    line in no consignment cannot be lost without a word. True when the order does not say."""
    total = order.get("items_total")
    if isinstance(total, bool) or not isinstance(total, (int, float)):
        return True
    units = 0
    for _kind, _group, items in _consignment_groups(consignments):
        for item in items:
            if item.get("is_bundled_product") is True:
                continue  # a bundle's components are not counted apart from their parent
            quantity = item.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                return True  # malformed: the mapping says so, naming the field
            units += quantity
    return units == total


def _consignment_groups(consignments: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    groups: list[tuple[str, dict[str, Any], Any]] = []
    for kind in ("shipping", "pickups", "downloads"):
        for group in _list(consignments.get(kind)):
            if isinstance(group, dict):
                groups.append((kind, group, group.get("line_items") or []))
    email = consignments.get("email")
    for group in _list(email.get("gift_certificates") if isinstance(email, dict) else None):
        if isinstance(group, dict):
            groups.append(("gift_certificates", group, group.get("line_items") or []))
    return groups


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def order_data(
    order: dict[str, Any],
    *,
    products: Sequence[dict[str, Any]] | None = None,
    shipping_addresses: Sequence[dict[str, Any]] | None = None,
) -> OrderData:
    """Map one order. ``products``/``shipping_addresses`` are needed unless the order embeds its
    consignments with their line items (see :func:`embedded_consignments`).

    :raises MappingError: a required field is missing or malformed.
    """
    if not isinstance(order, dict):
        raise MappingError("order", "not a JSON object")
    order_id = integer(order.get("id"), "id")
    status_id = integer(order.get("status_id"), "status_id")
    consignments = embedded_consignments(order)
    destinations: list[Destination] = []
    line_items: list[tuple[dict[str, Any], str | None]] = []  # (order product, consignment id)
    if consignments is not None:
        for index, (kind, group, items) in enumerate(_consignment_groups(consignments)):
            consignment_id = None
            if kind == "shipping":
                consignment_id = str(integer(group.get("id"), f"consignments.shipping[{index}].id"))
                destinations.append(
                    Destination(
                        consignment_id,
                        address(group, "consignment"),
                        text(group.get("shipping_method")),
                    )
                )
            line_items += [(item, consignment_id) for item in items]
    elif products is not None:
        for index, shipping in enumerate(shipping_addresses or []):
            where = f"shipping_addresses[{index}]"
            if not isinstance(shipping, dict):
                raise MappingError(where, "not an object")
            destinations.append(
                Destination(
                    str(integer(shipping.get("id"), f"{where}.id")),
                    address(shipping, where),
                    text(shipping.get("shipping_method")),
                )
            )
        line_items = [(item, None) for item in products]
        if not line_items and status_id != CANCELLED:
            raise MappingError("products", "BigCommerce listed no products for the order")
    elif status_id != CANCELLED:
        raise MappingError("products", "the order's products were not read")
    lines = tuple(
        _line(item, consignment_id, index, len(destinations))
        for index, (item, consignment_id) in enumerate(line_items)
    )
    _check_destinations(lines, destinations)
    billing = address(order.get("billing_address") or {}, "billing_address")
    return OrderData(
        external_id=str(order_id),
        number=str(order_id),
        status_code=str(status_id),
        placed_at=parse_date(order.get("date_created"), "date_created"),
        updated_at=parse_date(order.get("date_modified"), "date_modified"),
        lines=lines,
        destinations=tuple(destinations),
        billing_address=billing,
        customer_email=billing.email,
        currency=text(order.get("default_currency_code") or order.get("currency_code")),
        note=text(order.get("customer_message")),
        cancelled=status_id == CANCELLED,
        raw=order,
    )


def _line(item: Any, consignment_id: str | None, index: int, destinations: int) -> OrderLine:
    where = f"products[{index}]"
    if not isinstance(item, dict):
        raise MappingError(where, "not an object")
    kind_name = text(item.get("type") or "physical").lower()
    if kind_name not in KINDS:
        raise MappingError(
            f"{where}.type", f"{_shown(kind_name)} is not physical, digital or giftcertificate"
        )
    kind = KINDS[kind_name]
    destination = consignment_id
    address_id = item.get("order_address_id")
    if kind is LineKind.PHYSICAL and address_id not in (None, 0, "0", ""):
        destination = str(integer(address_id, f"{where}.order_address_id"))
    parent = item.get("parent_order_product_id")
    sku = text(item.get("sku")).strip() or None  # custom products have none: the core holds them
    return OrderLine(
        external_id=str(integer(item.get("id"), f"{where}.id")),
        sku=sku,
        name=text(item.get("name") or item.get("name_customer")),
        quantity=integer(item.get("quantity"), f"{where}.quantity"),
        unit_price=money(item.get("price_ex_tax", item.get("base_price")), f"{where}.price_ex_tax"),
        kind=kind,
        destination_id=destination if kind is LineKind.PHYSICAL else None,
        options=tuple(_options(item.get("product_options"), where)),
        parent_external_id=str(integer(parent, f"{where}.parent_order_product_id"))
        if parent not in (None, 0, "0", "")
        else None,
    )


def _options(options: Any, where: str) -> Iterable[tuple[str, str]]:
    if options in (None, ""):
        return []
    if not isinstance(options, list):
        raise MappingError(f"{where}.product_options", "not a list")
    return [
        (
            text(o.get("display_name") or o.get("name")),
            text(o.get("display_value") or o.get("value")),
        )
        for o in options
        if isinstance(o, dict)
    ]


def _check_destinations(lines: Sequence[OrderLine], destinations: Sequence[Destination]) -> None:
    known = {d.external_id for d in destinations}
    for index, line in enumerate(lines):
        if line.destination_id is not None and known and line.destination_id not in known:
            raise MappingError(
                f"products[{index}].order_address_id",
                f"{line.destination_id} names no shipping address of the order",
            )
