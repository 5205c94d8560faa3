"""Catalog V3: products and variants (products_catalog.v3.yml, product-variants_catalog.v3.yml).

A simple product has one *base variant* (same SKU, ``sku_id`` null, no option values) and
``base_variant_id`` set; a product with options has only its option variants and
``base_variant_id`` null. ``inventory_level`` reads the default location (1) only: the
product's own level when tracking is ``product`` (or ``none``), the sum of its variants' when
tracking is ``variant``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import ApiError, SandboxError
from .formats import decimal, iso8601, v3_page
from .routing import Call, Reply, Route
from .state import MAX_INVENTORY, Product, Store, Variant, now

TRACKING = ("none", "product", "variant")
DEFAULT_LOCATION = 1


def product_level(product: Product, location_id: int = DEFAULT_LOCATION) -> int:
    if product.inventory_tracking == "variant":
        return sum(variant.inventory.get(location_id, 0) for variant in product.variants)
    return product.inventory.get(location_id, 0)


def variant_level(product: Product, variant: Variant, location_id: int = DEFAULT_LOCATION) -> int:
    if product.inventory_tracking == "variant":
        return variant.inventory.get(location_id, 0)
    return product.inventory.get(location_id, 0) if variant.sku_id is None else 0


def _level(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INVENTORY:
        raise SandboxError(f"{field} must be a whole number from 0 to {MAX_INVENTORY}, not {value!r}")
    return value


def add_product(store: Store, *, name: str, sku: str | None = None, price: Any = "10.00",
                inventory_tracking: str = "product", inventory_level: int = 0,
                variants: Sequence[dict[str, Any]] | None = None, type: str = "physical"
                ) -> Product:
    """Create a product (with its base variant, or with ``variants``: each ``{"sku",
    "inventory_level", "label"[, "option", "price"]}``, ``option`` naming the option, default
    "Option"). An item created with stock counts as having had an absolute adjustment."""
    if not isinstance(name, str) or not name.strip():
        raise SandboxError("name is required: the product's name")
    if sku is not None and not isinstance(sku, str):
        raise SandboxError("sku must be a string, or None for a product without a SKU")
    if inventory_tracking not in TRACKING:
        raise SandboxError(f"inventory_tracking must be one of {TRACKING}, not {inventory_tracking!r}")
    if type not in ("physical", "digital"):
        raise SandboxError(f"type must be 'physical' or 'digital', not {type!r}")
    try:
        amount = decimal(price, "price")
    except ValueError as error:
        raise SandboxError(str(error)) from None
    level = _level(inventory_level, "inventory_level")
    skus = [sku or ""] + [str(v.get("sku", "")) for v in variants or () if isinstance(v, dict)]
    for candidate in filter(None, skus):
        if store.variant_by_sku(candidate) or skus.count(candidate) > 1 or any(
                p.sku == candidate for p in store.products.values()):
            raise SandboxError(f"sku {candidate!r} is already used in store {store.hash}: SKUs are unique")
    created = now()
    product = Product(id=store.next_id("product"), name=name, type=type, sku=sku or "",
                      price=amount, inventory_tracking=inventory_tracking, created=created,
                      modified=created, inventory={DEFAULT_LOCATION: level}, seeded=level > 0)
    if variants:
        if not isinstance(variants, (list, tuple)):
            raise SandboxError("variants must be a list of {sku, inventory_level, label}")
        options: dict[str, int] = {}
        for index, spec in enumerate(variants):
            product.variants.append(_variant(store, product, spec, f"variants[{index}]", options))
    else:
        product.variants.append(Variant(id=store.next_id("variant"), product_id=product.id,
                                        sku=product.sku, sku_id=None, option_values=[]))
    store.add_product(product)
    return product


def _variant(store: Store, product: Product, spec: Any, field: str, options: dict[str, int]
             ) -> Variant:
    if not isinstance(spec, dict):
        raise SandboxError(f"{field} must be an object with sku, inventory_level and label")
    unknown = set(spec) - {"sku", "inventory_level", "label", "option", "price"}
    if unknown:
        raise SandboxError(f"{field}: unknown field(s) {sorted(unknown)}")
    sku, label, option = spec.get("sku", ""), spec.get("label"), spec.get("option", "Option")
    if not isinstance(sku, str) or not isinstance(option, str):
        raise SandboxError(f"{field}.sku and {field}.option must be strings")
    if not isinstance(label, str) or not label:
        raise SandboxError(f"{field}.label is required: the option value, such as \"Red\"")
    option_id = options.setdefault(option, 200 + product.id % 100 * 10 + len(options))
    level = _level(spec.get("inventory_level", 0), f"{field}.inventory_level")
    try:
        price = decimal(spec["price"], f"{field}.price") if "price" in spec else None
    except ValueError as error:
        raise SandboxError(str(error)) from None
    return Variant(id=store.next_id("variant"), product_id=product.id, sku=sku,
                   sku_id=store.next_id("sku"), price=price,
                   option_values=[{"id": store.next_id("option_value"), "label": label,
                                   "option_id": option_id, "option_display_name": option}],
                   inventory={DEFAULT_LOCATION: level}, seeded=level > 0)


def variant_json(product: Product, variant: Variant) -> dict[str, Any]:
    price = float(variant.price if variant.price is not None else product.price)
    return {"id": variant.id, "product_id": product.id, "sku": variant.sku,
            "sku_id": variant.sku_id,
            "price": float(variant.price) if variant.price is not None else None,
            "calculated_price": price, "sale_price": None, "retail_price": None,
            "map_price": None, "weight": None, "calculated_weight": 1.0, "width": None,
            "height": None, "depth": None, "is_free_shipping": False,
            "fixed_cost_shipping_price": None, "purchasing_disabled": False,
            "purchasing_disabled_message": "", "image_url": "", "cost_price": None, "upc": "",
            "mpn": "", "gtin": "", "inventory_level": variant_level(product, variant),
            "inventory_warning_level": 0, "bin_picking_number": "",
            "option_values": [dict(value) for value in variant.option_values]}


def product_json(product: Product, with_variants: bool = False) -> dict[str, Any]:
    base = product.base_variant
    body: dict[str, Any] = {
        "id": product.id, "name": product.name, "type": product.type, "sku": product.sku,
        "description": "", "weight": 1.0, "width": 0.0, "depth": 0.0, "height": 0.0,
        "price": float(product.price), "cost_price": 0.0, "retail_price": 0.0,
        "sale_price": 0.0, "map_price": 0.0, "tax_class_id": 0, "product_tax_code": "",
        "calculated_price": float(product.price), "categories": [], "brand_id": 0,
        "option_set_id": None, "option_set_display": "right",
        "inventory_level": product_level(product), "inventory_warning_level": 0,
        "inventory_tracking": product.inventory_tracking, "reviews_rating_sum": 0,
        "reviews_count": 0, "total_sold": 0, "fixed_cost_shipping_price": 0.0,
        "is_free_shipping": False, "is_visible": True, "is_featured": False,
        "related_products": [-1], "warranty": "", "bin_picking_number": "", "layout_file": "",
        "upc": "", "mpn": "", "gtin": "", "date_last_imported": None, "search_keywords": "",
        "availability": "available", "availability_description": "", "condition": "New",
        "is_condition_shown": False, "order_quantity_minimum": 0, "order_quantity_maximum": 0,
        "page_title": "", "meta_keywords": [], "meta_description": "",
        "date_created": iso8601(product.created), "date_modified": iso8601(product.modified),
        "view_count": 0, "preorder_release_date": None, "preorder_message": "",
        "is_preorder_only": False, "is_price_hidden": False, "price_hidden_label": "",
        "custom_url": {"url": f"/products/{product.id}/", "is_customized": False},
        "base_variant_id": base.id if base else None, "open_graph_type": "product",
    }
    if with_variants:
        body["variants"] = [variant_json(product, variant) for variant in product.variants]
    return body


def _fields(call: Call, body: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    """``include_fields`` keeps the id (and ``keep``) plus the fields named; ``exclude_fields``
    drops the fields named (never the id)."""
    include = call.str_list_arg("include_fields")
    exclude = call.str_list_arg("exclude_fields") or set()
    if include is not None:
        body = {key: value for key, value in body.items()
                if key in include or key == "id" or key in keep}
    return {key: value for key, value in body.items() if key == "id" or key not in exclude}


def list_products(call: Call) -> Reply:
    page, limit = call.paging()
    ids = call.int_list_arg("id:in")
    product_id = call.int_arg("id")
    sku, skus = call.args.get("sku"), call.str_list_arg("sku:in")
    name = call.args.get("name")
    products = [p for p in sorted(call.store.products.values(), key=lambda p: p.id)
                if (ids is None or p.id in ids) and (product_id is None or p.id == product_id)
                and (sku is None or p.sku == sku) and (skus is None or p.sku in skus)
                and (name is None or p.name == name)]
    with_variants = "variants" in (call.str_list_arg("include") or set())
    data = [_fields(call, product_json(p, with_variants), ("variants",)) for p in products]
    return Reply(200, v3_page(data, page, limit, call.query()))


def get_product(call: Call, product_id: int) -> Reply:
    product = call.store.products.get(product_id)
    if product is None:
        raise ApiError(404, "The requested product was not found.")
    with_variants = "variants" in (call.str_list_arg("include") or set())
    return Reply(200, {"data": _fields(call, product_json(product, with_variants), ("variants",)),
                       "meta": {}})


def _variant_rows(call: Call, products: list[Product]) -> Reply:
    page, limit = call.paging()
    variant_id = call.int_arg("id")
    sku, skus, upc = call.args.get("sku"), call.str_list_arg("sku:in"), call.args.get("upc")
    product_ids = call.int_list_arg("product_id:in")
    rows = [_fields(call, variant_json(product, variant), ())
            for product in products for variant in product.variants
            if (variant_id is None or variant.id == variant_id)
            and (sku is None or variant.sku == sku) and (skus is None or variant.sku in skus)
            and (upc is None or upc == "") and (product_ids is None or product.id in product_ids)]
    return Reply(200, v3_page(rows, page, limit, call.query()))


def list_variants(call: Call) -> Reply:
    return _variant_rows(call, sorted(call.store.products.values(), key=lambda p: p.id))


def list_product_variants(call: Call, product_id: int) -> Reply:
    product = call.store.products.get(product_id)
    if product is None:
        raise ApiError(404, "The requested product was not found.")
    return _variant_rows(call, [product])


ROUTES = (
    Route(("GET",), "/v3/catalog/products", list_products, "products"),
    Route(("GET",), "/v3/catalog/products/<int:product_id>", get_product, "products"),
    Route(("GET",), "/v3/catalog/products/<int:product_id>/variants", list_product_variants,
          "products"),
    Route(("GET",), "/v3/catalog/variants", list_variants, "products"),
)
