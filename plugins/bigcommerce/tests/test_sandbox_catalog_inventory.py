"""Catalog V3 lookups and Inventory V3 adjustments, with the documented 422s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import SandboxStore, StoreClient, new_store

ABSOLUTE = "/v3/inventory/adjustments/absolute"
RELATIVE = "/v3/inventory/adjustments/relative"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(rate_limits=False) as sandbox:
        yield sandbox


@pytest.fixture
def store(sandbox: BigCommerceSandbox) -> SandboxStore:
    return new_store(sandbox)


@pytest.fixture
def catalog(store: SandboxStore) -> dict[str, dict[str, Any]]:
    add = store.sandbox.add_product
    return {
        "tee": add(store.hash, name="Tee", sku="TEE", price="12.50", inventory_level=7),
        "fresh": add(store.hash, name="Fresh", sku="FRESH"),  # never had stock
        "poster": add(store.hash, name="Poster", sku="POSTER", inventory_tracking="none"),
        "hoodie": add(store.hash, name="Hoodie", sku="HOODIE", inventory_tracking="variant",
                      variants=[{"sku": "HOOD-S", "label": "S", "option": "Size",
                                 "inventory_level": 2},
                                {"sku": "HOOD-M", "label": "M", "option": "Size",
                                 "inventory_level": 3}]),
    }


@pytest.fixture
def api(store: SandboxStore) -> Iterator[StoreClient]:
    with store.client() as client:
        yield client


def test_products_by_sku_with_variants_and_base_variant(catalog: dict[str, Any],
                                                       api: StoreClient) -> None:
    simple = api.get("/v3/catalog/products", params={"sku": "TEE", "include": "variants"}).json()
    several = api.get("/v3/catalog/products", params={"sku:in": "TEE,HOODIE"}).json()
    trimmed = api.get("/v3/catalog/products", params={
        "id:in": str(catalog["tee"]["id"]), "include_fields": "sku,inventory_tracking"}).json()

    (tee,) = simple["data"]
    assert tee["price"] == 12.5 and tee["inventory_level"] == 7
    assert tee["inventory_tracking"] == "product"
    (base,) = tee["variants"]
    assert tee["base_variant_id"] == base["id"] and base["sku_id"] is None
    assert base["option_values"] == [] and base["sku"] == "TEE"
    assert [p["sku"] for p in several["data"]] == ["TEE", "HOODIE"]
    hoodie = several["data"][1]
    assert hoodie["base_variant_id"] is None and hoodie["inventory_level"] == 5
    assert trimmed["data"] == [{"id": catalog["tee"]["id"], "sku": "TEE",
                                "inventory_tracking": "product"}]
    assert simple["meta"]["pagination"] == {"total": 1, "count": 1, "per_page": 50,
                                            "current_page": 1, "total_pages": 1,
                                            "links": {"current": "?sku=TEE&include=variants&page=1&limit=50"}}


def test_variants_resolve_any_sku_to_product_and_variant_ids(catalog: dict[str, Any],
                                                            api: StoreClient) -> None:
    medium = api.get("/v3/catalog/variants", params={"sku": "HOOD-M"}).json()["data"]
    simple = api.get("/v3/catalog/variants", params={"sku": "TEE"}).json()["data"]
    by_product = api.get("/v3/catalog/variants", params={
        "product_id:in": str(catalog["hoodie"]["id"])}).json()["data"]

    assert [(v["product_id"], v["id"], v["inventory_level"]) for v in medium] == [
        (catalog["hoodie"]["id"], catalog["hoodie"]["variants"][1]["id"], 3)]
    assert medium[0]["option_values"][0]["label"] == "M"
    assert [(v["product_id"], v["id"]) for v in simple] == [
        (catalog["tee"]["id"], catalog["tee"]["base_variant_id"])]
    assert [v["sku"] for v in by_product] == ["HOOD-S", "HOOD-M"]


def test_v3_lists_page_and_refuse_more_than_250(store: SandboxStore, api: StoreClient) -> None:
    for number in range(5):
        store.sandbox.add_product(store.hash, name=f"P{number}", sku=f"P{number}")

    second = api.get("/v3/catalog/products", params={"limit": 2, "page": 2}).json()
    too_many = api.get("/v3/catalog/products", params={"limit": 251})

    assert [p["sku"] for p in second["data"]] == ["P2", "P3"]
    pagination = second["meta"]["pagination"]
    assert (pagination["total"], pagination["total_pages"], pagination["count"]) == (5, 3, 2)
    assert pagination["links"]["next"] == "?limit=2&page=3"
    assert too_many.status_code == 413 and too_many.json()["status"] == 413


def test_absolute_adjustments_set_the_catalog_level_at_location_1(
        store: SandboxStore, catalog: dict[str, Any], api: StoreClient) -> None:
    hoodie = catalog["hoodie"]
    response = api.put(ABSOLUTE, json={"reason": "WMS sync", "items": [
        {"location_id": 1, "product_id": catalog["tee"]["id"], "quantity": 40},
        {"location_id": 1, "sku": "HOOD-S", "quantity": 11},
        {"location_id": 1, "variant_id": hoodie["variants"][1]["id"], "quantity": 0}]})

    assert response.status_code == 200 and len(response.json()["transaction_id"]) == 36
    assert store.sandbox.inventory_level(store.hash, "TEE") == 40
    assert store.sandbox.inventory_level(store.hash, "HOOD-S") == 11
    assert store.sandbox.inventory_level(store.hash, "HOOD-M") == 0
    product = api.get(f"/v3/catalog/products/{hoodie['id']}").json()["data"]
    assert product["inventory_level"] == 11
    items = api.get("/v3/inventory/items", params={"sku:in": "HOOD-S"}).json()["data"]
    assert items[0]["identity"]["variant_id"] == hoodie["variants"][0]["id"]
    assert items[0]["locations"][0]["total_inventory_onhand"] == 11
    assert items[0]["locations"][0]["location_id"] == 1


def test_relative_adjustments_add_to_an_item_that_had_an_absolute_one(
        store: SandboxStore, catalog: dict[str, Any], api: StoreClient) -> None:
    response = api.post(RELATIVE, json={"items": [
        {"location_id": 1, "product_id": catalog["tee"]["id"], "quantity": -2}]})
    assert response.status_code == 200
    assert store.sandbox.inventory_level(store.hash, "TEE") == 5


@pytest.mark.parametrize("item, title", [
    ({"variant_id": "tee-base", "quantity": 1},
     "[Item with variant_id {tee_base} is tracked by product, please update stock by product id]"),
    ({"sku": "TEE", "quantity": 1},
     "[Item with sku TEE is tracked by product, please update stock by product id]"),
    ({"product_id": "hoodie", "quantity": 1},
     "[Item with product_id {hoodie} is tracked by variant, please update stock by variant id or sku]"),
    ({"sku": "NOPE", "quantity": 1}, "Items with identity: [sku NOPE] not found"),
])
def test_an_identity_that_does_not_match_the_tracking_is_422(
        store: SandboxStore, catalog: dict[str, Any], api: StoreClient, item: dict[str, Any],
        title: str) -> None:
    ids = {"tee-base": catalog["tee"]["base_variant_id"], "hoodie": catalog["hoodie"]["id"]}
    item = {key: ids.get(value, value) if isinstance(value, str) else value
            for key, value in item.items()}
    expected = title.format(tee_base=ids["tee-base"], hoodie=ids["hoodie"])

    response = api.put(ABSOLUTE, json={"items": [
        {"location_id": 1, "sku": "HOOD-S", "quantity": 99}, {"location_id": 1, **item}]})

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == expected
    assert store.sandbox.inventory_level(store.hash, "HOOD-S") == 2  # all or nothing


def test_relative_before_any_absolute_adjustment_is_422(catalog: dict[str, Any],
                                                        api: StoreClient) -> None:
    response = api.post(RELATIVE, json={"items": [
        {"location_id": 1, "product_id": catalog["fresh"]["id"], "quantity": 3}]})
    assert response.status_code == 422
    assert response.json()["title"] == (f"Items with identity: [product_id {catalog['fresh']['id']}]"
                                        " requires absolute adjustment before relative")


@pytest.mark.parametrize("items, status, field", [
    ([], 422, "items"),
    ([{"location_id": 1, "sku": "HOOD-S", "product_id": 1, "quantity": 1}], 422, "items.0"),
    ([{"location_id": 1, "sku": "HOOD-S"}], 422, "items.0.quantity"),
    ([{"sku": "HOOD-S", "quantity": 1}], 422, "items.0.location_id"),
    ([{"location_id": 7, "sku": "HOOD-S", "quantity": 1}], 422, "items.0.location_id"),
    ([{"location_id": 1, "sku": "HOOD-S", "quantity": -1}], 422, "items.0.quantity"),
    ([{"location_id": 1, "sku": "HOOD-S", "quantity": 2_147_483_648}], 422, "items.0.quantity"),
    ([{"location_id": 1, "sku": "HOOD-S", "quantity": 1}] * 2001, 413, None),
])
def test_malformed_adjustments_are_refused_naming_the_field(
        store: SandboxStore, catalog: dict[str, Any], api: StoreClient,
        items: list[dict[str, Any]], status: int, field: str | None) -> None:
    response = api.put(ABSOLUTE, json={"items": items})
    assert response.status_code == status
    if field is not None:
        assert field in response.json()["errors"]
    assert store.sandbox.inventory_level(store.hash, "HOOD-S") == 2


def test_2000_items_is_within_the_limit(store: SandboxStore, catalog: dict[str, Any],
                                        api: StoreClient) -> None:
    items = [{"location_id": 1, "sku": "HOOD-S", "quantity": n} for n in range(2000)]
    assert api.put(ABSOLUTE, json={"items": items}).status_code == 200
    assert store.sandbox.inventory_level(store.hash, "HOOD-S") == 1999


def test_untracked_items_are_accepted_and_counted(store: SandboxStore, catalog: dict[str, Any],
                                                  api: StoreClient) -> None:
    response = api.put(ABSOLUTE, json={"items": [
        {"location_id": 1, "product_id": catalog["poster"]["id"], "quantity": 12}]})

    assert response.status_code == 200
    assert store.sandbox.stats(store.hash)["untracked_inventory_writes"] == 1


def test_locations_and_location_items(store: SandboxStore, catalog: dict[str, Any],
                                      api: StoreClient) -> None:
    locations = api.get("/v3/inventory/locations").json()["data"]
    at_one = api.get("/v3/inventory/locations/1/items", params={"sku:in": "TEE"}).json()["data"]
    missing = api.get("/v3/inventory/locations/9/items")

    assert [(loc["id"], loc["enabled"], loc["type_id"]) for loc in locations] == [(1, True, "PHYSICAL")]
    assert at_one == [{"identity": {"sku": "TEE", "variant_id": catalog["tee"]["base_variant_id"],
                                    "product_id": catalog["tee"]["id"]},
                       "available_to_sell": 7, "total_inventory_onhand": 7,
                       "settings": {"safety_stock": 0, "is_in_stock": True, "warning_level": 0,
                                    "bin_picking_number": ""}}]
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
