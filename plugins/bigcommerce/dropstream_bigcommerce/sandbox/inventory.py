"""Inventory V3 and Locations V3 (inventory.v3.yml, locations.v3.yml, bigcommerce.md §3.3).

Adjustments take at most 2,000 items, each with ``location_id``, ``quantity`` and exactly one of
``sku``/``variant_id``/``product_id``. An item tracked by product is addressed by
``product_id``; a variant of a product tracked by variant by ``variant_id`` or ``sku``; the
wrong one is 422 with the documented titles, as is a relative adjustment on an item that never
had an absolute one. Nothing in a batch is saved unless all of it is valid. Writes apply at once
(the real API is asynchronous and may show the old value for a moment).

Items whose product has inventory tracking ``none`` are accepted (200) and their level stored,
with no effect on sale: the spec documents no error for them, and the Catalog API describes the
level as only "taking effect" when tracked. They are counted in the store's
``untracked_inventory_writes`` (see ``BigCommerceSandbox.stats``) so a test can tell whether a
connector skipped them.
"""

from __future__ import annotations

import uuid
from typing import Any

from .catalog import DEFAULT_LOCATION
from .errors import ApiError
from .formats import iso8601, v3_page
from .routing import Call, Reply, Route
from .state import MAX_INVENTORY, Product, Store, Variant, now

MAX_ITEMS = 2000
IDENTITIES = ("sku", "variant_id", "product_id")


def location_json(store: Store) -> dict[str, Any]:
    hours = {day: {"open": True, "opening": "09:00", "closing": "17:00"}
             for day in ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
                         "saturday")}
    return {"id": DEFAULT_LOCATION, "code": "BC-LOCATION-1", "label": "Default location",
            "description": "The store's default shipping origin", "managed_by_external_source":
            False, "type_id": "PHYSICAL", "enabled": True, "operating_hours": hours,
            "time_zone": "Etc/UTC", "created_at": iso8601(store.created),
            "updated_at": iso8601(store.created),
            "address": {"address1": "455 Main Street", "address2": "", "city": "Austin",
                        "state": "TX", "zip": "78751", "email": "warehouse@example.com",
                        "phone": "555-123-4567", "geo_coordinates": {"latitude": 30.3,
                                                                     "longitude": -97.7},
                        "country_code": "US"},
            "storefront_visibility": True, "special_hours": []}


Target = tuple[Product, Variant | None]


def _invalid(errors: dict[str, str]) -> ApiError:
    return ApiError(422, "Payload contains invalid fields", errors=errors)


def _target(store: Store, item: dict[str, Any], index: int) -> tuple[Target, str]:
    """The item an adjustment line addresses, and its identity as the titles print it."""
    given = [key for key in IDENTITIES if key in item]
    if len(given) != 1:
        raise _invalid({f"items.{index}": "give exactly one of sku, variant_id or product_id"})
    key = given[0]
    value = item[key]
    identity = f"{key} {value}"
    if key == "sku":
        found = store.variant_by_sku(value) if isinstance(value, str) and value else None
        if found is None:
            raise ApiError(422, f"Items with identity: [{identity}] not found", errors={})
        product, variant = found
    elif key == "variant_id":
        found = store.variant(value) if isinstance(value, int) else None
        if found is None:
            raise ApiError(422, f"Items with identity: [{identity}] not found", errors={})
        product, variant = found
    else:
        product = store.products.get(value) if isinstance(value, int) else None  # type: ignore[assignment]
        if product is None:
            raise ApiError(422, f"Items with identity: [{identity}] not found", errors={})
        if product.inventory_tracking == "variant":
            raise ApiError(422, f"[Item with {identity} is tracked by variant, please update "
                           "stock by variant id or sku]", errors={})
        return (product, None), identity
    if product.inventory_tracking == "product":
        raise ApiError(422, f"[Item with {identity} is tracked by product, please update stock "
                       "by product id]", errors={})
    if product.inventory_tracking == "none" and variant.sku_id is None:
        return (product, None), identity  # a simple untracked product keeps one level
    return (product, variant), identity


def _levels(target: Target) -> dict[int, int]:
    product, variant = target
    return variant.inventory if variant is not None else product.inventory


def _adjust(call: Call, relative: bool) -> Reply:
    body = call.json_object()
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise _invalid({"items": "items is required: a list of {location_id, quantity, and one "
                                 "of sku, variant_id or product_id}"})
    if len(items) > MAX_ITEMS:
        raise ApiError(413, "The request payload is too large. The maximum items allowed in the "
                       f"array is {MAX_ITEMS}")
    if "reason" in body and not isinstance(body["reason"], str):
        raise _invalid({"reason": "reason must be a string"})
    planned: dict[int, tuple[Target, dict[int, int]]] = {}  # id(target levels) → new levels
    unseeded: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _invalid({f"items.{index}": "each item must be an object"})
        location, quantity = item.get("location_id"), item.get("quantity")
        if isinstance(location, bool) or not isinstance(location, int):
            raise _invalid({f"items.{index}.location_id": "location_id is required (an integer; "
                                                          "1 is the default location)"})
        if location != DEFAULT_LOCATION:
            raise _invalid({f"items.{index}.location_id": f"location {location} does not exist"})
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise _invalid({f"items.{index}.quantity": "quantity is required: an integer"})
        if not relative and quantity < 0:
            raise _invalid({f"items.{index}.quantity": "an absolute quantity cannot be negative"})
        target, identity = _target(call.store, item, index)
        levels = _levels(target)
        _, new = planned.setdefault(id(levels), (target, dict(levels)))
        seeded = (target[1] or target[0]).seeded
        if relative and not seeded:
            unseeded.append(identity)
        value = new.get(location, 0) + quantity if relative else quantity
        if not 0 <= value <= MAX_INVENTORY:
            raise _invalid({f"items.{index}.quantity": f"the level of {identity} would be "
                            f"{value}; it must stay from 0 to {MAX_INVENTORY}, nothing was saved"})
        new[location] = value
    if unseeded:
        raise ApiError(422, f"Items with identity: [{', '.join(unseeded)}] requires absolute "
                       "adjustment before relative", errors={})
    for product in {id(t[0]): t[0] for t, _ in planned.values() if t[1] is not None}.values():
        total = sum(planned.get(id(v.inventory), (None, v.inventory))[1].get(DEFAULT_LOCATION, 0)
                    for v in product.variants)
        if total > MAX_INVENTORY:
            raise _invalid({"items": f"product {product.id} would hold {total} at location "
                                     f"{DEFAULT_LOCATION}, variants included; the maximum is "
                                     f"{MAX_INVENTORY}, nothing was saved"})
    for (product, variant), new in planned.values():
        _levels((product, variant)).update(new)
        (variant or product).seeded = True
        product.modified = now()
        if product.inventory_tracking == "none":
            call.store.untracked_inventory_writes += 1
    return Reply(200, {"transaction_id": str(uuid.uuid4())})


def absolute(call: Call) -> Reply:
    return _adjust(call, relative=False)


def relative(call: Call) -> Reply:
    return _adjust(call, relative=True)


def _items(store: Store) -> list[tuple[Product, Variant | None, dict[str, Any]]]:
    rows = []
    for product in sorted(store.products.values(), key=lambda p: p.id):
        if product.inventory_tracking == "variant":
            for variant in product.variants:
                rows.append((product, variant, {"sku": variant.sku, "variant_id": variant.id,
                                                "product_id": product.id,
                                                "sku_id": variant.sku_id}))
        else:
            base = product.base_variant
            rows.append((product, None, {"sku": product.sku, "variant_id": base.id if base else None,
                                         "product_id": product.id, "sku_id": None}))
    return rows


def _filtered_items(call: Call) -> list[tuple[Product, Variant | None, dict[str, Any]]]:
    skus = call.str_list_arg("sku:in")
    variant_ids = call.int_list_arg("variant_id:in")
    product_ids = call.int_list_arg("product_id:in")
    return [row for row in _items(call.store)
            if (skus is None or row[2]["sku"] in skus)
            and (variant_ids is None or row[2]["variant_id"] in variant_ids)
            and (product_ids is None or row[2]["product_id"] in product_ids)]


def _stock(product: Product, variant: Variant | None) -> int:
    return (variant.inventory if variant is not None else product.inventory).get(DEFAULT_LOCATION, 0)


SETTINGS = {"safety_stock": 0, "is_in_stock": True, "warning_level": 0, "bin_picking_number": ""}


def list_items(call: Call) -> Reply:
    page, limit = call.paging(max_limit=1000)
    locations = call.int_list_arg("location_id:in")
    codes = call.str_list_arg("location_code:in")
    show = (locations is None or DEFAULT_LOCATION in locations) and (codes is None or
                                                                      "BC-LOCATION-1" in codes)
    data = [{"identity": identity, "locations": [{
        "location_id": DEFAULT_LOCATION, "location_code": "BC-LOCATION-1",
        "location_name": "Default location", "available_to_sell": _stock(product, variant),
        "total_inventory_onhand": _stock(product, variant), "location_enabled": True,
        "settings": dict(SETTINGS)}] if show else []}
        for product, variant, identity in _filtered_items(call)]
    return Reply(200, v3_page(data, page, limit, call.query()))


def list_location_items(call: Call, location_id: int) -> Reply:
    if location_id != DEFAULT_LOCATION:
        raise ApiError(404, f"Location with id {location_id} was not found")
    page, limit = call.paging(max_limit=1000)
    data = [{"identity": {key: identity[key] for key in ("sku", "variant_id", "product_id")},
             "available_to_sell": _stock(product, variant),
             "total_inventory_onhand": _stock(product, variant), "settings": dict(SETTINGS)}
            for product, variant, identity in _filtered_items(call)]
    return Reply(200, v3_page(data, page, limit, call.query()))


def list_locations(call: Call) -> Reply:
    page, limit = call.paging(max_limit=1000)
    ids = call.int_list_arg("location_id:in")
    codes = call.str_list_arg("location_code:in")
    data = [location_json(call.store)]
    if (ids is not None and DEFAULT_LOCATION not in ids) or (codes is not None and
                                                           "BC-LOCATION-1" not in codes):
        data = []
    return Reply(200, v3_page(data, page, limit, call.query()))


ROUTES = (
    Route(("PUT",), "/v3/inventory/adjustments/absolute", absolute, "inventory"),
    Route(("POST",), "/v3/inventory/adjustments/relative", relative, "inventory"),
    Route(("GET",), "/v3/inventory/items", list_items, "inventory"),
    Route(("GET",), "/v3/inventory/locations/<int:location_id>/items", list_location_items,
          "inventory"),
    Route(("GET",), "/v3/inventory/locations", list_locations, "locations"),
)
