"""The hostile-order catalogue: odd, broken and hostile BigCommerce orders, how to make each one
in the BigCommerce sandbox, and what DropStream must do with it.

Each :class:`Case` is data: the ``create_order`` arguments of the sandbox (the same JSON its
``POST /_sandbox/stores/{hash}/orders`` route takes), the store-side edits a checkout cannot
make, what happens in the store before DropStream reads the order, the outcome DropStream must
reach, and — for the orders a person can fix — the fix and what the warehouse must receive
after it. ``test_hostile_orders.py`` runs the whole catalogue through the pipeline.

Edits (:class:`Edit`) change the sandbox's stored order directly, under its lock: they stand
for what BigCommerce shows after an order edit, a misbehaving app or a data import (a zero or
negative quantity, an empty street, a line type BigCommerce may add later), which the
sandbox's checkout refuses to create. The connector still reads them over HTTP, as BigCommerce
serves them.

Field paths name DropStream's copy of the order, as the console shows it: ``lines[i]`` is the
i-th line (BigCommerce's shipping consignments first, in address order, then downloads, then
gift certificates), ``shipping_addresses[j]`` the j-th ship-to address. An order DropStream
cannot read at all names BigCommerce's field instead (``products[i].type``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The merchant's account at the WMS sandbox, and the ship codes its shipping rules use.
WMS_ACCOUNT = "HOSTILE"
GROUND, EXPRESS = "GRND", "EXP"
FREE_SHIPPING = "Free Shipping"

#: The store's catalogue: ``add_product`` arguments (stock is given by the test).
PRODUCTS: tuple[dict[str, Any], ...] = (
    {"name": "Black tee", "sku": "TEE-BLK"},
    {"name": "Mug 11oz", "sku": "MUG-11"},
    {"name": "Red cap", "sku": "CAP-RED"},
    {"name": "Hoodie", "sku": "HOODIE", "inventory_tracking": "variant", "variants": [
        {"sku": "HOOD-S", "label": "S", "option": "Size", "inventory_level": 5},
        {"sku": "HOOD-M", "label": "M", "option": "Size", "inventory_level": 5}]},
    {"name": "E-book", "sku": "EBOOK-1", "type": "digital", "inventory_tracking": "none"},
    {"name": "Gift box", "sku": "GIFT-BOX"},          # a DropStream bundle listing
    {"name": "Old cap", "sku": "OLD-CAP"},            # renamed at the warehouse: a listing
    {"name": "Poster", "sku": None},                  # a catalog product without a SKU
    {"name": "Lower-case tee", "sku": "tee-blk"},     # differs from TEE-BLK by case only
    {"name": "Padded mug", "sku": "  MUG-11  "},      # differs from MUG-11 by spaces only
    {"name": "Cap with a NUL", "sku": "CAP-RED\x00"},
)
#: What the warehouse stocks (it refuses other SKUs: the WMS sandbox runs ``strict_skus``).
WAREHOUSE_SKUS = ("TEE-BLK", "MUG-11", "CAP-RED", "HOOD-S", "HOOD-M", "POSTER-A2")
#: The store's listings and shipping rules before anything goes wrong (REST API bodies).
LISTINGS: tuple[dict[str, Any], ...] = (
    {"store_sku": "GIFT-BOX", "components": [{"warehouse_sku": "TEE-BLK", "quantity": 1},
                                             {"warehouse_sku": "MUG-11", "quantity": 2}]},
    {"store_sku": "OLD-CAP", "warehouse_sku": "CAP-RED"},
)
SHIPPING_RULES: tuple[dict[str, Any], ...] = (
    {"store_method": FREE_SHIPPING, "warehouse_code": GROUND},
    {"store_method": "Express", "warehouse_code": EXPRESS},
)

#: Outcomes, as the order's status in DropStream ("absent": DropStream keeps no order).
FORWARDED, HELD, ERROR, SKIPPED, CANCELLED, ABSENT = (
    "at_warehouse", "on_hold", "error", "skipped", "cancelled", "absent")

Lines = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Expect:
    """Where an order must end: its status, the code (hold reason, error code or skip reason)
    and field path it shows, and what each warehouse order holds (one ``(sku, quantity)``
    tuple per consignment, in any order) — nothing at all unless forwarded."""

    outcome: str
    code: str | None = None
    field: str | None = None
    consignments: tuple[Lines, ...] = ()


def forwarded(*consignments: Sequence[tuple[str, int]]) -> Expect:
    return Expect(FORWARDED, consignments=tuple(tuple(sorted(c)) for c in consignments))


def held(code: str, path: str) -> Expect:
    return Expect(HELD, code, path)


def error(code: str, path: str) -> Expect:
    return Expect(ERROR, code, path)


def skipped(code: str) -> Expect:
    return Expect(SKIPPED, code, "lines")


@dataclass(frozen=True)
class Edit:
    """A change to the stored order in the sandbox: ``target`` is ``"line"``, ``"address"``
    or ``"order"``, ``index`` which line or address (creation order), ``values`` the fields."""

    target: str
    values: dict[str, Any]
    index: int = 0

    def apply(self, sandbox: Any, store_hash: str, order_id: int) -> None:
        with sandbox.state.lock:
            order = sandbox.state.store(store_hash).order(order_id)
            if self.target == "line":
                for name, value in self.values.items():
                    setattr(order.lines[self.index], name, value)
            elif self.target == "address":
                order.addresses[self.index].fields.update(self.values)
            else:
                for name, value in self.values.items():
                    setattr(order, name, value)
            # A changed order has a later date_modified (whole seconds), as BigCommerce's has.
            order.modified = max(time.time(), order.modified + 1.0)


def line(index: int, **values: Any) -> Edit:
    return Edit("line", values, index)


def address(index: int, **values: Any) -> Edit:
    return Edit("address", values, index)


@dataclass(frozen=True)
class Fix:
    """What a person does about the order, and what the warehouse must then receive.

    ``listing`` / ``shipping_rule``: a REST API body (``POST /api/v1/stores/{id}/listings`` or
    ``…/shipping-rules``); ``edits``: the merchant corrects the order in the store (the next
    sweep brings the change); ``store_status``: the merchant moves the order to that status in
    the store; ``reprocess``: an operator presses Reprocess (after the other steps).
    """

    then: Expect
    listing: dict[str, Any] | None = None
    shipping_rule: dict[str, Any] | None = None
    edits: tuple[Edit, ...] = ()
    store_status: int | None = None
    purge: bool = False
    reprocess: bool = False

    @property
    def kind(self) -> str:
        if self.listing:
            return "listing"
        if self.shipping_rule:
            return "shipping rule"
        if self.edits:
            return "corrected in the store"
        if self.store_status is not None:
            return f"store status {self.store_status}"
        return "deleted in the store" if self.purge else "reprocess"


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    #: ``create_order`` arguments (``lines``, ``shipping_addresses``, ``custom_products``, ...);
    #: a line ``{"product": name}`` names a catalog product by name (the sandbox takes its id).
    order: dict[str, Any]
    expect: Expect
    edits: tuple[Edit, ...] = ()
    #: What happens in the store after the order was placed but before DropStream reads it:
    #: ``("status", 5)``, ``("archive",)`` or ``("purge",)``.
    before_read: tuple[tuple[Any, ...], ...] = ()
    fix: Fix | None = None


def address_spec(**values: Any) -> dict[str, Any]:
    """A ship-to address (``create_order``'s ``shipping_addresses`` item)."""
    return {"first_name": "Ada", "last_name": "Lovelace", "street_1": "12 Analytical Row",
            "city": "London", "state": "", "zip": "N1 9GU", "country": "United Kingdom",
            "country_iso2": "GB", "phone": "+44 20 7946 0000", "email": "ada@example.test",
            "shipping_method": FREE_SHIPPING, **values}


def at(*addresses: dict[str, Any], lines: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {"shipping_addresses": list(addresses), "lines": lines, **more}


def custom(name: str, sku: str | None = None, quantity: int = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "quantity": quantity, "price": "4.00"}
    if sku is not None:
        spec["sku"] = sku
    return spec


TEE, MUG, CAP = {"sku": "TEE-BLK"}, {"sku": "MUG-11"}, {"sku": "CAP-RED"}
HOME = address_spec()
LONG = "Ł" * 300
GIFT = {"type": "giftcertificate", "name": "Gift certificate £25", "price": "25.00",
        "recipient_email": "friend@example.test"}


def by_edit(*edits: Edit, then: Expect) -> Fix:
    return Fix(then, edits=edits)


CASES: tuple[Case, ...] = (
    # -- identity: SKUs ------------------------------------------------------------------------
    Case("plain", "A good order: the baseline.", at(HOME, lines=[{**TEE, "quantity": 2}]),
         forwarded([("TEE-BLK", 2)])),
    Case("variant_by_option", "A product with options: the variant's SKU ships.",
         at(HOME, lines=[{"sku": "HOODIE", "options": {"Size": "M"}}]), forwarded([("HOOD-M", 1)])),
    Case("custom_product_without_sku", "A custom product (no catalog product, no SKU) beside a "
         "good line.", at(HOME, lines=[TEE], custom_products=[custom("Engraving")]),
         held("no_sku", "lines[1].sku"),
         fix=by_edit(line(1, sku="CAP-RED"), then=forwarded([("TEE-BLK", 1), ("CAP-RED", 1)]))),
    Case("catalog_product_without_sku", "A catalog product whose SKU was never filled in.",
         at(HOME, lines=[{"product": "Poster"}]), held("no_sku", "lines[0].sku"),
         fix=by_edit(line(0, sku="POSTER-A2"), then=forwarded([("POSTER-A2", 1)]))),
    Case("unknown_sku", "A SKU the warehouse does not stock (it refuses the order).",
         at(HOME, lines=[TEE], custom_products=[custom("Mystery box", "MYSTERY-1", 2)]),
         held("unknown_sku", "lines[1].sku"),
         fix=Fix(forwarded([("TEE-BLK", 1), ("CAP-RED", 2)]),
                 listing={"store_sku": "MYSTERY-1", "warehouse_sku": "CAP-RED"})),
    Case("sku_differs_by_case", "tee-blk is not TEE-BLK to the warehouse.",
         at(HOME, lines=[{"sku": "tee-blk"}]), held("unknown_sku", "lines[0].sku"),
         fix=Fix(forwarded([("TEE-BLK", 1)]),
                 listing={"store_sku": "tee-blk", "warehouse_sku": "TEE-BLK"})),
    Case("sku_padded_with_spaces", "Spaces around a SKU are not part of it.",
         at(HOME, lines=[{"sku": "  MUG-11  "}]), forwarded([("MUG-11", 1)])),
    Case("sku_with_nul", "A NUL byte in a SKU is dropped (PostgreSQL cannot store it).",
         at(HOME, lines=[{"sku": "CAP-RED\x00"}]), forwarded([("CAP-RED", 1)])),
    Case("sku_with_tab_inside", "A tab inside a SKU is kept: the warehouse does not know it.",
         at(HOME, lines=[], custom_products=[custom("Tabbed mug", "MUG\t11")]),
         held("unknown_sku", "lines[0].sku"),
         fix=Fix(forwarded([("MUG-11", 1)]),
                 listing={"store_sku": "MUG\t11", "warehouse_sku": "MUG-11"})),
    Case("sku_4_byte_unicode", "Emoji and accents in a SKU.",
         at(HOME, lines=[], custom_products=[custom("Tee ✓", "TÉE-✓-🎽")]),
         held("unknown_sku", "lines[0].sku"),
         fix=Fix(forwarded([("TEE-BLK", 1)]),
                 listing={"store_sku": "TÉE-✓-🎽", "warehouse_sku": "TEE-BLK"})),
    Case("sku_right_to_left", "A Hebrew SKU (right-to-left text).",
         at(HOME, lines=[], custom_products=[custom("ספל", "ספל-11")]),
         held("unknown_sku", "lines[0].sku"),
         fix=Fix(forwarded([("MUG-11", 1)]),
                 listing={"store_sku": "ספל-11", "warehouse_sku": "MUG-11"})),
    Case("sku_of_255_characters", "The longest SKU BigCommerce allows.",
         at(HOME, lines=[], custom_products=[custom("Long", "S" * 255)]),
         held("unknown_sku", "lines[0].sku"),
         fix=Fix(forwarded([("CAP-RED", 1)]),
                 listing={"store_sku": "S" * 255, "warehouse_sku": "CAP-RED"})),
    Case("sku_of_300_characters", "A SKU longer than any DropStream or a warehouse keeps: "
         "not imported half-way.",
         at(HOME, lines=[], custom_products=[custom("Too long", "L" * 300)]),
         error("import_failed", "lines[0].sku"),
         fix=by_edit(line(0, sku="MUG-11"), then=forwarded([("MUG-11", 1)]))),
    Case("renamed_sku", "A listing maps the store SKU to the warehouse's.",
         at(HOME, lines=[{"sku": "OLD-CAP", "quantity": 3}]), forwarded([("CAP-RED", 3)])),
    Case("bundle_listing", "A DropStream bundle listing ships its components.",
         at(HOME, lines=[{"sku": "GIFT-BOX", "quantity": 2}]),
         forwarded([("TEE-BLK", 2), ("MUG-11", 4)])),
    Case("bigcommerce_bundle", "A BigCommerce bundle: the parent and its components are lines.",
         at(HOME, lines=[{**TEE, "bundle": [{"sku": "MUG-11", "quantity": 2}]}]),
         forwarded([("TEE-BLK", 1), ("MUG-11", 2)])),
    Case("duplicate_lines", "The same SKU on two lines.",
         at(HOME, lines=[TEE, {**TEE, "quantity": 2}]),
         forwarded([("TEE-BLK", 1), ("TEE-BLK", 2)])),
    Case("duplicate_unknown_lines", "The same unknown SKU on two lines: one listing fixes both.",
         at(HOME, lines=[], custom_products=[custom("Dup", "DUP-X"), custom("Dup", "DUP-X", 3)]),
         held("unknown_sku", "lines[0].sku"),
         fix=Fix(forwarded([("CAP-RED", 1), ("CAP-RED", 3)]),
                 listing={"store_sku": "DUP-X", "warehouse_sku": "CAP-RED"})),
    Case("sixty_lines", "More lines than BigCommerce's default page of 50.",
         at(HOME, lines=[{"sku": ("TEE-BLK", "MUG-11", "CAP-RED")[n % 3], "quantity": n + 1}
                         for n in range(60)]),
         forwarded([(("TEE-BLK", "MUG-11", "CAP-RED")[n % 3], n + 1) for n in range(60)])),

    # -- quantities ----------------------------------------------------------------------------
    Case("quantity_zero", "A line of quantity 0.", at(HOME, lines=[TEE]),
         held("invalid_quantity", "lines[0].quantity"), edits=(line(0, quantity=0),),
         fix=by_edit(line(0, quantity=1), then=forwarded([("TEE-BLK", 1)]))),
    Case("quantity_negative", "A line of quantity -3.", at(HOME, lines=[MUG]),
         held("invalid_quantity", "lines[0].quantity"), edits=(line(0, quantity=-3),),
         fix=by_edit(line(0, quantity=3), then=forwarded([("MUG-11", 3)]))),
    Case("quantity_zero_beside_good_line", "One good line, one of quantity 0.",
         at(HOME, lines=[TEE, MUG]), held("invalid_quantity", "lines[1].quantity"),
         edits=(line(1, quantity=0),),
         fix=by_edit(line(1, quantity=2), then=forwarded([("TEE-BLK", 1), ("MUG-11", 2)]))),
    Case("quantity_over_the_warehouse_maximum", "5,000,000 units: the warehouse takes at most "
         "1,000,000 per line and refuses the order.",
         at(HOME, lines=[{**TEE, "quantity": 5_000_000}]),
         error("invalid_order", "lines[0].quantity"),
         fix=by_edit(line(0, quantity=5), then=forwarded([("TEE-BLK", 5)]))),
    Case("quantity_beyond_32_bits", "10,000,000,000 units: more than a database integer.",
         at(HOME, lines=[{**MUG, "quantity": 10_000_000_000}]),
         error("import_failed", "lines[0].quantity"),
         fix=by_edit(line(0, quantity=1), then=forwarded([("MUG-11", 1)]))),
    Case("bundle_quantity_overflows", "1,500,000,000 gift boxes: ×2 mugs each overflows.",
         at(HOME, lines=[{"sku": "GIFT-BOX", "quantity": 1_500_000_000}]),
         held("invalid_quantity", "lines[0].quantity"),
         fix=by_edit(line(0, quantity=1), then=forwarded([("TEE-BLK", 1), ("MUG-11", 2)]))),

    # -- kinds of lines ------------------------------------------------------------------------
    Case("digital_only", "Only a download: nothing to ship.",
         {"lines": [{"sku": "EBOOK-1"}]}, skipped("digital_only")),
    Case("gift_certificate_only", "Only a gift certificate: nothing to ship.",
         {"lines": [GIFT]}, skipped("gift_certificate_only")),
    Case("digital_and_gift_certificate", "A download and a gift certificate.",
         {"lines": [{"sku": "EBOOK-1"}, GIFT]}, skipped("nothing_to_ship")),
    Case("digital_beside_physical", "Only the physical line ships.",
         at(HOME, lines=[{"sku": "EBOOK-1"}, TEE]), forwarded([("TEE-BLK", 1)])),
    Case("gift_certificate_beside_physical", "Only the physical line ships.",
         at(HOME, lines=[GIFT, MUG]), forwarded([("MUG-11", 1)])),
    Case("unknown_line_type", "A line type DropStream does not know (BigCommerce may add one).",
         at(HOME, lines=[TEE]), error("import_failed", "products[0].type"),
         edits=(line(0, type="subscription"),),
         fix=by_edit(line(0, type="physical"), then=forwarded([("TEE-BLK", 1)]))),

    # -- addresses and shipping methods ---------------------------------------------------------
    Case("two_addresses", "Two ship-to addresses: two warehouse orders.",
         at(HOME, address_spec(first_name="Charles", last_name="Babbage", street_1="1 Engine St"),
            lines=[TEE, {**MUG, "address_index": 1}]),
         forwarded([("TEE-BLK", 1)], [("MUG-11", 1)])),
    Case("address_without_lines", "A third address nothing goes to.",
         at(HOME, address_spec(street_1="2 Side St"), address_spec(street_1="3 Empty St"),
            lines=[TEE, {**CAP, "address_index": 1}]),
         forwarded([("TEE-BLK", 1)], [("CAP-RED", 1)])),
    Case("unmapped_shipping_method", "A shipping method no rule maps.",
         at(address_spec(shipping_method="Pigeon Post"), lines=[TEE]),
         held("unmapped_shipping_method", "shipping_addresses[0].shipping_method"),
         fix=Fix(forwarded([("TEE-BLK", 1)]),
                 shipping_rule={"store_method": "Pigeon Post", "warehouse_code": EXPRESS})),
    Case("second_address_unmapped", "The second of two addresses has an unmapped method.",
         at(HOME, address_spec(shipping_method="Drone 🚁 Delivery"),
            lines=[TEE, {**MUG, "address_index": 1}]),
         held("unmapped_shipping_method", "shipping_addresses[1].shipping_method"),
         fix=Fix(forwarded([("TEE-BLK", 1)], [("MUG-11", 1)]),
                 shipping_rule={"store_method": "Drone 🚁 Delivery", "warehouse_code": GROUND})),
    Case("shipping_method_case_and_spaces", "Case and spacing do not matter to a rule.",
         at(address_spec(shipping_method="  free   SHIPPING "), lines=[CAP]),
         forwarded([("CAP-RED", 1)])),
    Case("missing_street", "No street.", at(address_spec(street_1=""), lines=[TEE]),
         held("invalid_address", "shipping_addresses[0].street1"),
         fix=by_edit(address(0, street_1="12 Analytical Row"), then=forwarded([("TEE-BLK", 1)]))),
    Case("missing_country", "No country.", at(address_spec(country_iso2="", country=""),
                                               lines=[TEE]),
         held("invalid_address", "shipping_addresses[0].country_code"),
         fix=by_edit(address(0, country_iso2="GB"), then=forwarded([("TEE-BLK", 1)]))),
    Case("blank_name", "A name of blanks only.",
         at(address_spec(first_name="  ", last_name="\t"), lines=[MUG]),
         held("invalid_address", "shipping_addresses[0].name"),
         fix=by_edit(address(0, first_name="Ada"), then=forwarded([("MUG-11", 1)]))),
    Case("country_not_iso", "A country code that is not two letters of ISO 3166.",
         at(address_spec(country_iso2="G1"), lines=[TEE]),
         held("invalid_address", "shipping_addresses[0].country_code"),
         fix=by_edit(address(0, country_iso2="GB"), then=forwarded([("TEE-BLK", 1)]))),
    Case("country_three_letters", "USA is not an ISO 3166 alpha-2 code: never cut to US.",
         at(address_spec(country_iso2="AUT"), lines=[TEE]),
         error("import_failed", "shipping_addresses[0].country_code"),
         fix=by_edit(address(0, country_iso2="AT"), then=forwarded([("TEE-BLK", 1)]))),
    Case("country_lower_case", "gb means GB.", at(address_spec(country_iso2="gb"), lines=[TEE]),
         forwarded([("TEE-BLK", 1)])),
    Case("street_of_300_characters", "A street longer than any warehouse takes: not cut.",
         at(address_spec(street_1=LONG), lines=[CAP]),
         error("import_failed", "shipping_addresses[0].street1"),
         fix=by_edit(address(0, street_1="12 Analytical Row"), then=forwarded([("CAP-RED", 1)]))),
    Case("name_of_255_characters", "The longest name DropStream and the warehouse keep.",
         at(address_spec(first_name="N" * 127, last_name="M" * 127), lines=[TEE]),
         forwarded([("TEE-BLK", 1)])),
    Case("physical_line_without_address", "A physical line whose address was removed.",
         at(HOME, lines=[TEE]), held("invalid_address", "lines[0].address"),
         edits=(Edit("order", {"addresses": []}),)),
    Case("line_in_no_consignment", "A line whose ship-to address is gone: in no consignment, "
         "yet never dropped from the order.", at(HOME, lines=[TEE, MUG]),
         error("import_failed", "products[1].order_address_id"),
         edits=(line(1, order_address_id=999_999),)),
    Case("empty_billing_address", "Billing details are not needed to ship.",
         at(HOME, lines=[MUG], billing_address={"first_name": "", "email": ""}),
         forwarded([("MUG-11", 1)])),

    # -- text ----------------------------------------------------------------------------------
    Case("emoji_everywhere", "4-byte UTF-8 in names, street, city and note.",
         at(address_spec(first_name="🦄 Zoë", last_name="👩‍👩‍👧", street_1="🏠 1 Main",
                         city="Zürich 🇨🇭"), lines=[TEE], customer_message="🎁 no 🧨 please"),
         forwarded([("TEE-BLK", 1)])),
    Case("right_to_left_address", "Arabic and Hebrew, with a right-to-left override mark.",
         at(address_spec(first_name="فاطمة", last_name="الزهراء", street_1="شارع الملك فهد 12",
                         city="\u202eתל אביב"), lines=[MUG]), forwarded([("MUG-11", 1)])),
    Case("combining_and_zero_width", "Combining marks and zero-width characters.",
         at(address_spec(first_name="Zoe\u0308", last_name="Ba\u200bbbage\u200d",
                         street_1="1 Ma\u0301in St\ufeff"), lines=[CAP]),
         forwarded([("CAP-RED", 1)])),
    Case("nul_bytes_in_text", "NUL bytes in the name, street, note and a product name.",
         at(address_spec(first_name="Ja\x00ne", street_1="1\x00 Main"), lines=[],
            custom_products=[custom("Mug\x00", "MUG-11")], customer_message="ring\x00bell"),
         forwarded([("MUG-11", 1)])),
    Case("control_characters", "Tabs, newlines and an escape in the street.",
         at(address_spec(street_1="1 Main\tSt\r\nFlat 2\x1b[31m"), lines=[TEE]),
         forwarded([("TEE-BLK", 1)])),
    Case("half_an_emoji", "A lone UTF-16 surrogate (half an emoji) in the note and the name.",
         at(address_spec(last_name="Lovelace\ud83e"), lines=[TEE], customer_message="\ud83d!"),
         forwarded([("TEE-BLK", 1)])),
    Case("markup_and_sql_in_text", "Markup and SQL are only text.",
         at(address_spec(first_name="<script>alert(1)</script>",
                         last_name="Robert'); DROP TABLE orders;--"), lines=[MUG],
            customer_message="<img src=x onerror=alert(1)>"), forwarded([("MUG-11", 1)])),
    Case("long_note", "A 10,000-character note (the warehouse gets the first 2,000).",
         at(HOME, lines=[TEE], customer_message="note " * 2000), forwarded([("TEE-BLK", 1)])),
    Case("long_product_name", "A 3,000-character product name.",
         at(HOME, lines=[], custom_products=[custom("Name" * 750, "CAP-RED")]),
         forwarded([("CAP-RED", 1)])),

    # -- lifecycle -----------------------------------------------------------------------------
    Case("cancelled_before_read", "Cancelled in the store before DropStream read it.",
         at(HOME, lines=[TEE]), Expect(ABSENT), before_read=(("status", 5),)),
    Case("created_cancelled", "An order that was cancelled from the start.",
         at(HOME, lines=[TEE], status_id=5), Expect(ABSENT)),
    Case("awaiting_payment", "Not paid yet (status 7): not imported.",
         at(HOME, lines=[TEE], status_id=7), Expect(ABSENT)),
    Case("incomplete_checkout", "An abandoned checkout (status 0): not imported.",
         at(HOME, lines=[TEE], status_id=0), Expect(ABSENT)),
    Case("manual_verification", "Manual Verification Required (status 12): not imported.",
         at(HOME, lines=[MUG], status_id=12), Expect(ABSENT)),
    Case("archived_before_read", "Deleted (archived) in the store before DropStream read it.",
         at(HOME, lines=[TEE]), Expect(ABSENT), before_read=(("archive",),)),
    Case("purged_before_read", "Deleted for good before DropStream read it (404).",
         at(HOME, lines=[TEE]), Expect(ABSENT), before_read=(("purge",),)),
    Case("cancelled_while_held", "Held, then cancelled by the merchant: never sent.",
         at(address_spec(shipping_method="Carrier pigeon"), lines=[TEE]),
         held("unmapped_shipping_method", "shipping_addresses[0].shipping_method"),
         fix=Fix(Expect(CANCELLED), store_status=5)),
    Case("cancelled_after_forwarding", "Sent, then cancelled: the warehouse cancels it too.",
         at(HOME, lines=[CAP]), forwarded([("CAP-RED", 1)]),
         fix=Fix(Expect(CANCELLED, consignments=((("CAP-RED", 1),),)), store_status=5)),
    Case("deleted_after_import_failed", "Unreadable, then deleted for good; Reprocess says so.",
         at(HOME, lines=[MUG]), error("import_failed", "products[0].type"),
         edits=(line(0, type="rental"),),
         fix=Fix(error("remote_not_found", "id"), purge=True, reprocess=True)),
)


def place(sandbox: Any, store_hash: str, case: Case) -> int:
    """Create ``case``'s order in the sandbox store, as its checkout and the merchant would."""
    products = {p["name"]: p["id"] for p in _products(sandbox, store_hash)}
    spec = dict(case.order)
    spec["lines"] = [_resolve(line_spec, products) for line_spec in spec.get("lines", [])]
    order_id = sandbox.create_order(store_hash, **spec)
    for edit in case.edits:
        edit.apply(sandbox, store_hash, order_id)
    for step in case.before_read:
        if step[0] == "status":
            sandbox.set_order_status(store_hash, order_id, step[1])
        elif step[0] == "archive":
            sandbox.archive_order(store_hash, order_id)
        else:
            purge(sandbox, store_hash, order_id)
    return order_id


def purge(sandbox: Any, store_hash: str, order_id: int) -> None:
    """Delete an order for good (from the control panel's archive): its id answers 404."""
    with sandbox.state.lock:
        del sandbox.state.store(store_hash).orders[order_id]


def _resolve(spec: dict[str, Any], products: dict[str, int]) -> dict[str, Any]:
    # {"product": name} picks a product by name (one without a SKU has nothing else).
    if "product" in spec:
        rest = {k: v for k, v in spec.items() if k != "product"}
        return {**rest, "product_id": products[spec["product"]]}
    return spec


def _products(sandbox: Any, store_hash: str) -> list[dict[str, Any]]:
    with sandbox.state.lock:
        store = sandbox.state.store(store_hash)
        return [{"name": p.name, "id": p.id} for p in store.products.values()]


def big_order(lines: int) -> Case:
    """An order of ``lines`` distinct SKUs (``BIG-00001``…), each ordered once; the WMS must
    stock them all (:func:`big_skus`)."""
    skus = big_skus(lines)
    return Case(f"lines_{lines}", f"{lines:,} lines, each a different product.",
                at(HOME, lines=[{"sku": sku} for sku in skus]),
                forwarded([(sku, 1) for sku in skus]))


def big_skus(lines: int) -> list[str]:
    return [f"BIG-{n:05d}" for n in range(lines)]
