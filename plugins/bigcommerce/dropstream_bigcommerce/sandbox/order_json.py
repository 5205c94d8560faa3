"""Orders V2 as JSON: the order, its products, shipping addresses, consignments and shipments.

Field names, types and examples follow orders.v2.oas2.yml: money as four-decimal strings,
RFC-2822 UTC dates, sub-resources as ``{url, resource}`` links unless ``include`` asks for
consignments. With ``include=consignments`` (and ``consignments.line_items``) and
``consignment_structure=object``, ``consignments`` is the ``orderConsignment_Get`` object:
``{pickups, shipping, downloads, email: {gift_certificates}}``. A shipping consignment's ``id``
is the shipping address id (the ``order_address_id`` a shipment needs).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .formats import money, rfc2822
from .orders import ADDRESS_FIELDS
from .state import STATUS_LABELS, Order, OrderLine, Shipment, ShippingAddress, Store

Url = Callable[[str], str]
ZERO = money(0)
SHIPPING_PROVIDER_NAMES = {"auspost": "Australia Post", "canadapost": "Canada Post",
                           "endicia": "Endicia", "usps": "USPS", "fedex": "FedEx", "ups": "UPS",
                           "upsready": "UPS Ready", "upsonline": "UPS Online",
                           "shipperhq": "ShipperHQ", "royalmail": "Royal Mail", "": ""}


def link(url: Url, resource: str) -> dict[str, str]:
    return {"url": url(resource), "resource": resource}


def order_json(store: Store, order: Order, url: Url, include: frozenset[str] = frozenset(),
               consignment_object: bool = False) -> dict[str, Any]:
    top = [line for line in order.lines if not line.is_bundled_product]
    subtotal = sum((line.base_price * line.quantity for line in top), Decimal(0))
    shipping = sum((address.base_cost for address in order.addresses), Decimal(0))
    body: dict[str, Any] = {
        "id": order.id, "customer_id": 0,
        "date_created": rfc2822(order.created), "date_modified": rfc2822(order.modified),
        "date_shipped": rfc2822(order.shipped),
        "status_id": order.status_id, "status": STATUS_LABELS[order.status_id],
        "custom_status": store.custom_labels[order.status_id],
        "subtotal_ex_tax": money(subtotal), "subtotal_inc_tax": money(subtotal),
        "subtotal_tax": ZERO, "base_shipping_cost": money(shipping),
        "shipping_cost_ex_tax": money(shipping), "shipping_cost_inc_tax": money(shipping),
        "shipping_cost_tax": ZERO, "shipping_cost_tax_class_id": 2,
        "base_handling_cost": ZERO, "handling_cost_ex_tax": ZERO, "handling_cost_inc_tax": ZERO,
        "handling_cost_tax": ZERO, "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": ZERO, "wrapping_cost_ex_tax": ZERO, "wrapping_cost_inc_tax": ZERO,
        "wrapping_cost_tax": ZERO, "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": money(subtotal + shipping), "total_inc_tax": money(subtotal + shipping),
        "total_tax": ZERO, "is_tax_inclusive_pricing": False,
        "items_total": sum(line.quantity for line in top),
        "items_shipped": sum(line.quantity_shipped for line in top),
        "payment_method": "Test Payment Gateway", "payment_provider_id": "",
        "payment_status": "captured", "refunded_amount": ZERO,
        "order_is_digital": all(line.type != "physical" for line in order.lines),
        "store_credit_amount": ZERO, "gift_certificate_amount": ZERO,
        "ip_address": "127.0.0.1", "ip_address_v6": "", "geoip_country": "United States",
        "geoip_country_iso2": "US", "currency_id": 1, "currency_code": "USD",
        "currency_exchange_rate": "1.0000000000", "default_currency_id": 1,
        "default_currency_code": "USD", "store_default_currency_code": "USD",
        "store_default_to_transactional_exchange_rate": "1.0000000000",
        "staff_notes": order.staff_notes, "customer_message": order.customer_message,
        "discount_amount": ZERO, "coupon_discount": ZERO,
        "shipping_address_count": len(order.addresses), "ebay_order_id": "0",
        "cart_id": order.cart_id,
        "billing_address": {**order.billing_address, "form_fields": []},
        "is_email_opt_in": False, "credit_card_type": None, "order_source": "www",
        "channel_id": 1, "external_source": None, "external_id": None,
        "external_merchant_id": None, "external_order_id": order.external_order_id,
        "tax_provider_id": "BasicTaxProvider", "customer_locale": "en",
        "is_deleted": order.is_deleted,
        "products": link(url, f"/orders/{order.id}/products"),
        "shipping_addresses": link(url, f"/orders/{order.id}/shipping_addresses"),
        "coupons": link(url, f"/orders/{order.id}/coupons"),
    }
    if include & {"consignments", "consignments.line_items"}:
        consignments = consignments_json(order, url, "consignments.line_items" in include)
        # Without consignment_structure=object the docs describe a legacy (array) structure;
        # the sandbox wraps the same object in a one-element list for it.
        body["consignments"] = consignments if consignment_object else [consignments]
    else:
        body["consignments"] = link(url, f"/orders/{order.id}/consignments")
    if "fees" in include:
        body["fees"] = []
    return body


def line_json(line: OrderLine) -> dict[str, Any]:
    total = line.base_price * line.quantity
    return {
        "id": line.id, "order_id": line.order_id, "product_id": line.product_id,
        "variant_id": line.variant_id or 0, "order_pickup_method_id": 0,
        "order_address_id": line.order_address_id, "name": line.name,
        "name_customer": line.name, "name_merchant": line.name, "sku": line.sku, "upc": "",
        "type": line.type, "base_price": money(line.base_price),
        "price_ex_tax": money(line.base_price), "price_inc_tax": money(line.base_price),
        "price_tax": ZERO, "base_total": money(total), "total_ex_tax": money(total),
        "total_inc_tax": money(total), "total_tax": ZERO, "weight": "1.0000",
        "width": "0.0000", "height": "0.0000", "depth": "0.0000", "quantity": line.quantity,
        "base_cost_price": ZERO, "cost_price_inc_tax": ZERO, "cost_price_ex_tax": ZERO,
        "cost_price_tax": ZERO, "is_refunded": False, "quantity_refunded": 0,
        "refund_amount": ZERO, "return_id": 0, "wrapping_id": 0, "wrapping_name": "",
        "base_wrapping_cost": ZERO, "wrapping_cost_ex_tax": ZERO, "wrapping_cost_inc_tax": ZERO,
        "wrapping_cost_tax": ZERO, "wrapping_message": "",
        "quantity_shipped": line.quantity_shipped, "event_name": None, "event_date": None,
        "fixed_shipping_cost": ZERO, "ebay_item_id": "", "ebay_transaction_id": "",
        "option_set_id": None, "parent_order_product_id": line.parent_order_product_id,
        "is_bundled_product": line.is_bundled_product, "bin_picking_number": "",
        "external_id": None, "brand": "", "applied_discounts": [],
        "product_options": line.product_options, "configurable_fields": [],
        "gift_certificate_id": None, "discounted_total_inc_tax": money(total),
    }


def address_json(order: Order, address: ShippingAddress, url: Url) -> dict[str, Any]:
    lines = [line for line in order.lines
             if line.order_address_id == address.id and not line.is_bundled_product]
    cost = money(address.base_cost)
    return {
        "id": address.id, "order_id": order.id, **address.fields,
        "items_total": sum(line.quantity for line in lines),
        "items_shipped": sum(line.quantity_shipped for line in lines),
        "shipping_method": address.shipping_method, "base_cost": cost, "cost_ex_tax": cost,
        "cost_inc_tax": cost, "cost_tax": ZERO, "cost_tax_class_id": 2,
        "base_handling_cost": ZERO, "handling_cost_ex_tax": ZERO, "handling_cost_inc_tax": ZERO,
        "handling_cost_tax": ZERO, "handling_cost_tax_class_id": 2, "shipping_zone_id": 1,
        "shipping_zone_name": "United States", "form_fields": [],
        "shipping_quotes": link(url, f"/orders/{order.id}/shipping_addresses/{address.id}"
                                     f"/shipping_quotes"),
    }


def consignments_json(order: Order, url: Url, with_lines: bool) -> dict[str, Any]:
    def items(lines: list[OrderLine]) -> list[dict[str, Any]]:
        if with_lines:
            return [line_json(line) for line in lines]
        return [link(url, f"/orders/{order.id}/products/{line.id}") for line in lines]

    shipping = []
    for address in order.addresses:
        entry = address_json(order, address, url)
        entry.pop("order_id")
        entry["line_items"] = items([l for l in order.lines if l.order_address_id == address.id])
        entry["shipping_quotes"] = link(url, f"/orders/{order.id}/consignments/shipping/"
                                             f"{address.id}/shipping_quotes")
        # The consignment object lists these cost fields as numbers, not strings.
        for key in ("base_cost", "cost_ex_tax", "cost_inc_tax", "cost_tax", "base_handling_cost",
                    "handling_cost_ex_tax", "handling_cost_inc_tax", "handling_cost_tax"):
            entry[key] = float(entry[key])
        shipping.append(entry)
    downloads = _by_recipient(order, "digital", items)
    gifts = _by_recipient(order, "giftcertificate", items)
    return {"pickups": [], "shipping": shipping, "downloads": downloads,
            "email": {"gift_certificates": gifts}}


def _by_recipient(order: Order, kind: str, items: Callable[[list[OrderLine]], list[Any]]
                  ) -> list[dict[str, Any]]:
    groups: dict[str, list[OrderLine]] = {}
    for line in order.lines:
        if line.type == kind:
            groups.setdefault(line.recipient_email, []).append(line)
    return [{"recipient_email": email, "line_items": items(lines)} for email, lines in groups.items()]


def shipment_json(order: Order, shipment: Shipment) -> dict[str, Any]:
    address = order.address(shipment.order_address_id)
    shipping_address = {key: (address.fields[key] if address else "") for key in ADDRESS_FIELDS}
    return {
        "id": shipment.id, "order_id": order.id, "customer_id": 0,
        "order_address_id": shipment.order_address_id,
        "date_created": rfc2822(shipment.created), "tracking_number": shipment.tracking_number,
        "merchant_shipping_cost": money(shipment.merchant_shipping_cost),
        "shipping_method": shipment.shipping_method,
        "shipping_provider": shipment.shipping_provider,
        "tracking_carrier": shipment.tracking_carrier, "tracking_link": shipment.tracking_link,
        "comments": shipment.comments, "billing_address": dict(order.billing_address),
        "shipping_address": shipping_address,
        "items": [{"order_product_id": line_id, "product_id": product_id, "quantity": quantity}
                  for line_id, product_id, quantity in shipment.items],
        "shipping_provider_display_name": SHIPPING_PROVIDER_NAMES.get(
            shipment.shipping_provider, shipment.shipping_provider),
        "generated_tracking_link": generated_tracking_link(shipment),
    }


TRACKING_URLS = {
    "ups": "https://www.ups.com/track?tracknum={number}",
    "upsready": "https://www.ups.com/track?tracknum={number}",
    "upsonline": "https://www.ups.com/track?tracknum={number}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    "endicia": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={number}",
    "auspost": "https://auspost.com.au/mypost/track/#/details/{number}",
    "canadapost": "https://www.canadapost-postescanada.ca/track-reperage/en#/details/{number}",
    "royalmail": "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
}


def generated_tracking_link(shipment: Shipment) -> str:
    """Provider + number, or carrier + number, give a link (an AfterShip one when the provider
    is not natively integrated); a custom ``tracking_link`` leaves this empty."""
    number = shipment.tracking_number
    if not number or shipment.tracking_link:
        return ""
    if shipment.shipping_provider in TRACKING_URLS:
        return TRACKING_URLS[shipment.shipping_provider].format(number=number)
    carrier = shipment.tracking_carrier or shipment.shipping_provider
    return f"https://track.aftership.com/{carrier}/{number}" if carrier else ""
