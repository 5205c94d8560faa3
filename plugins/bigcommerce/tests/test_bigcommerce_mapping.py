"""BigCommerce order JSON → canonical orders, without HTTP: recorded-shape orders (as
``GET /v2/orders/{id}?include=consignments.line_items&consignment_structure=object`` returns
them) go through the pure mapping functions. Also the settings and credentials schemas, and
the carrier table."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from marshmallow import ValidationError

from dropstream.connectors.types import LineKind
from dropstream_bigcommerce import carriers
from dropstream_bigcommerce.mapping import (
    MappingError,
    embedded_consignments,
    order_data,
    parse_date,
    rfc2822,
)
from dropstream_bigcommerce.schemas import BigCommerceCredentials, BigCommerceSettings


def product(line_id: int, address_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": line_id,
        "order_id": 120,
        "product_id": 77,
        "variant_id": 301,
        "order_address_id": address_id,
        "name": f"Item {line_id}",
        "sku": f"SKU-{line_id}",
        "type": "physical",
        "quantity": 1,
        "quantity_shipped": 0,
        "base_price": "10.0000",
        "price_ex_tax": "10.0000",
        "price_inc_tax": "11.0000",
        "product_options": [],
        "parent_order_product_id": None,
        "is_bundled_product": False,
        **fields,
    }


def consignment(
    address_id: int, method: str, lines: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    return {
        "id": address_id,
        "first_name": "Zoë",
        "last_name": "Ødegård",
        "company": "",
        "street_1": "12 Rue de l'Église",
        "street_2": "Bât. 2",
        "city": "Zürich",
        "state": "ZH",
        "zip": "8001",
        "country": "Switzerland",
        "country_iso2": "CH",
        "phone": "+41 44 000 00 00",
        "email": "zoe@example.test",
        "shipping_method": method,
        "line_items": lines,
        "items_total": 1,
        "items_shipped": 0,
        "base_cost": 5.1,
        **fields,
    }


def bc_order(**fields: Any) -> dict[str, Any]:
    """An order with two ship-to addresses, a bundle, options, a custom product without a SKU,
    a digital download and a gift certificate."""
    return {
        "id": 120,
        "status_id": 11,
        "status": "Awaiting Fulfillment",
        "date_created": "Tue, 05 Mar 2019 21:40:11 +0000",
        "date_modified": "Wed, 06 Mar 2019 08:00:00 +0100",
        "currency_code": "EUR",
        "default_currency_code": "EUR",
        "customer_message": "Bitte klingeln 🔔 — 二階",
        "billing_address": {
            "first_name": "Zoë",
            "last_name": "Ødegård",
            "street_1": "1 Main",
            "city": "Zürich",
            "zip": "8001",
            "country_iso2": "ch",
            "email": "zoe@example.test",
        },
        "consignments": {
            "pickups": [],
            "shipping": [
                consignment(
                    10,
                    "Free Shipping",
                    [
                        product(
                            1,
                            10,
                            quantity=2,
                            product_options=[
                                {"id": 5, "display_name": "Größe", "display_value": "M"},
                                {"id": 6, "display_name": "Colour", "display_value": "Blue"},
                            ],
                        ),
                        product(2, 10, sku="BUNDLE", name="Gift box"),
                        product(
                            3,
                            10,
                            sku="BOX-PART",
                            parent_order_product_id=2,
                            is_bundled_product=True,
                            base_price="0.0000",
                            price_ex_tax="0.0000",
                        ),
                        product(
                            4, 10, sku="", product_id=0, variant_id=0, name="Engraving (custom)"
                        ),
                    ],
                ),
                consignment(11, "UPS® Ground", [product(5, 11, quantity=3, price_ex_tax="3.3333")]),
            ],
            "downloads": [
                {
                    "recipient_email": "zoe@example.test",
                    "line_items": [product(6, 0, type="digital", sku="EBOOK")],
                }
            ],
            "email": {
                "gift_certificates": [
                    {
                        "recipient_email": "friend@example.test",
                        "line_items": [
                            product(
                                7,
                                0,
                                type="giftcertificate",
                                sku="",
                                name="Gift certificate $25",
                                price_ex_tax="25.0000",
                            )
                        ],
                    }
                ]
            },
        },
        **fields,
    }


def test_a_whole_order_maps_with_every_kind_of_line_and_both_addresses() -> None:
    order = order_data(bc_order())

    assert (order.external_id, order.number, order.status_code, order.cancelled) == (
        "120",
        "120",
        "11",
        False,
    )
    assert order.placed_at == datetime(2019, 3, 5, 21, 40, 11, tzinfo=UTC)
    assert order.updated_at == datetime(2019, 3, 6, 7, 0, 0, tzinfo=UTC)  # +0100 read as UTC
    assert order.currency == "EUR" and order.note == "Bitte klingeln 🔔 — 二階"
    assert order.customer_email == "zoe@example.test"
    assert order.billing_address is not None and order.billing_address.country_code == "CH"

    assert [(d.external_id, d.shipping_method) for d in order.destinations] == [
        ("10", "Free Shipping"),
        ("11", "UPS® Ground"),
    ]
    first = order.destinations[0].address
    assert (first.name, first.street1, first.city, first.country_code) == (
        "Zoë Ødegård",
        "12 Rue de l'Église",
        "Zürich",
        "CH",
    )

    lines = {line.external_id: line for line in order.lines}
    assert lines["1"].options == (("Größe", "M"), ("Colour", "Blue")) and lines["1"].quantity == 2
    assert lines["3"].parent_external_id == "2" and lines["2"].parent_external_id is None
    assert lines["4"].sku is None  # a custom product: the core holds the order (no_sku)
    assert lines["5"].destination_id == "11" and lines["1"].destination_id == "10"
    assert lines["5"].unit_price == Decimal("3.3333") and isinstance(lines["5"].unit_price, Decimal)
    assert lines["6"].kind is LineKind.DIGITAL and lines["6"].destination_id is None
    assert lines["7"].kind is LineKind.GIFT_CERTIFICATE and not lines["7"].kind.ships
    assert order.raw["id"] == 120


def test_the_legacy_array_structure_maps_the_same() -> None:
    legacy = bc_order()
    legacy["consignments"] = [legacy["consignments"]]
    assert order_data(legacy) == order_data(bc_order())


def test_lines_given_as_links_are_not_taken_for_embedded_products() -> None:
    linked = bc_order()
    for group in linked["consignments"]["shipping"]:
        group["line_items"] = [
            {
                "url": "https://api.bigcommerce.com/stores/x/v2/orders/120/products/1",
                "resource": "/orders/120/products/1",
            }
        ]
    assert embedded_consignments(linked) is None
    assert (
        embedded_consignments(
            {"consignments": {"url": "…", "resource": "/orders/120/consignments"}}
        )
        is None
    )
    with pytest.raises(MappingError, match="products were not read"):
        order_data(linked)


def test_products_read_separately_map_with_their_addresses() -> None:
    order = bc_order(consignments=None)
    addresses = [{**consignment(10, "Free Shipping", []), "order_id": 120}]
    products = [product(1, 10, quantity=4), product(6, 0, type="digital")]

    data = order_data(order, products=products, shipping_addresses=addresses)

    assert [(l.external_id, l.quantity, l.destination_id, l.kind) for l in data.lines] == [
        ("1", 4, "10", LineKind.PHYSICAL),
        ("6", 1, None, LineKind.DIGITAL),
    ]
    assert [d.external_id for d in data.destinations] == ["10"]


def test_a_cancelled_order_needs_no_products() -> None:
    data = order_data(bc_order(status_id=5, consignments=None))
    assert data.cancelled and data.lines == ()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: o.pop("id"), "id"),
        (lambda o: o.update(date_created="yesterday"), "date_created"),
        (lambda o: o.update(date_modified=None), "date_modified"),
        (lambda o: o.update(status_id="eleven"), "status_id"),
        (
            lambda o: o["consignments"]["shipping"][0]["line_items"][0].update(quantity="two"),
            "products[0].quantity",
        ),
        (
            lambda o: o["consignments"]["shipping"][0]["line_items"][0].update(quantity=1.5),
            "products[0].quantity",
        ),
        (
            lambda o: o["consignments"]["shipping"][0]["line_items"][0].update(type="subscription"),
            "products[0].type",
        ),
        (
            lambda o: o["consignments"]["shipping"][0]["line_items"][0].update(
                price_ex_tax="12,50"
            ),
            "products[0].price_ex_tax",
        ),
        (
            lambda o: o["consignments"]["shipping"][0]["line_items"][0].update(order_address_id=99),
            "products[0].order_address_id",
        ),
        (lambda o: o["consignments"]["shipping"][1].update(id="x"), "consignments.shipping[1].id"),
        (
            lambda o: o["consignments"]["shipping"][0]["line_items"][1].update(product_options="M"),
            "products[1].product_options",
        ),
    ],
)
def test_malformed_data_is_refused_naming_the_field(change: Any, field: str) -> None:
    order = copy.deepcopy(bc_order())
    change(order)
    with pytest.raises(MappingError, match=f"^{re.escape(field)}: ") as refused:
        order_data(order)
    assert refused.value.field == field  # the path first, as the order's error shows it


def test_dates_in_both_documented_forms_and_back() -> None:
    assert parse_date("Thu, 20 Apr 2017 11:32:00 -0400", "d") == datetime(
        2017, 4, 20, 15, 32, tzinfo=UTC
    )
    assert parse_date("2017-04-20T11:32:00.000-04:00", "d") == datetime(
        2017, 4, 20, 15, 32, tzinfo=UTC
    )
    assert parse_date("Thu, 20 Apr 2017 11:32:00 -0000", "d").tzinfo is UTC
    assert (
        rfc2822(datetime(2019, 3, 5, 21, 40, 11, tzinfo=UTC)) == "Tue, 05 Mar 2019 21:40:11 +0000"
    )
    with pytest.raises(MappingError, match="placed"):
        parse_date("", "placed")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("UPS", ("ups", "ups")),
        ("U.P.S.", ("ups", "ups")),
        ("fedex", ("fedex", "fedex")),
        ("USPS", ("usps", "usps")),
        ("DHL Express", ("", "dhl")),
        ("Royal Mail", ("royalmail", "royal-mail")),
        ("Pigeon Post", ("", "")),
        ("", ("", "")),
    ],
)
def test_carrier_codes_become_a_provider_and_a_tracking_carrier(
    code: str, expected: tuple[str, str]
) -> None:
    assert carriers.resolve(code) == expected


def test_the_store_can_map_its_warehouse_carriers() -> None:
    overrides = {"WH-UPS2": "ups", "DHL": "carrier_12", "FEDEX": ""}
    assert carriers.resolve("wh-ups2", overrides) == ("ups", "ups")
    assert carriers.resolve("dhl", overrides) == ("carrier_12", "dhl")
    assert carriers.resolve("FedEx", overrides) == ("", "fedex")


def test_settings_have_defaults_and_name_the_bad_field() -> None:
    loaded = BigCommerceSettings().load({})
    assert (loaded["monitored_status_id"], loaded["sent_status_id"], loaded["location_id"]) == (
        11,
        9,
        1,
    )
    assert loaded["api_base_url"] == "https://api.bigcommerce.com"
    # The console's status picker sends the id as text.
    assert (
        BigCommerceSettings().load({"monitored_status_id": "12", "sent_status_id": None})[
            "monitored_status_id"
        ]
        == 12
    )
    with pytest.raises(ValidationError) as refused:
        BigCommerceSettings().load(
            {
                "api_base_url": "ftp://x",
                "carrier_map": {"UPS": "pigeon"},
                "monitored_status_id": 5000,
                "backfill_from": "2024-01-01T00:00:00",
            }
        )
    assert set(refused.value.messages) == {
        "api_base_url",
        "carrier_map",
        "monitored_status_id",
        "backfill_from",
    }
    assert "pigeon" in str(refused.value.messages["carrier_map"])


def test_credentials_are_write_only_normalised_and_checked() -> None:
    schema = BigCommerceCredentials()
    loaded = schema.load(
        {
            "store_hash": " ABC123de ",
            "client_id": "id ",
            "client_secret": "s",
            "access_token": " t ",
        }
    )
    assert loaded == {
        "store_hash": "abc123de",
        "client_id": "id",
        "client_secret": "s",
        "access_token": "t",
    }
    assert schema.dump(loaded) == {}
    with pytest.raises(ValidationError) as refused:
        schema.load({"store_hash": "stores/abc/v3", "client_id": "", "access_token": "t"})
    messages = refused.value.messages
    assert "between /stores/ and /v3/" not in str(messages.get("client_id"))
    assert "API path" in str(messages["store_hash"]) and "client_secret" in messages
