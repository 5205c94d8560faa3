"""Shipments: validated as BigCommerce does, and they move the order to (Partially) Shipped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import SandboxStore, StoreClient, new_store


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(rate_limits=False) as sandbox:
        yield sandbox


@pytest.fixture
def store(sandbox: BigCommerceSandbox) -> SandboxStore:
    store = new_store(sandbox)
    for sku in ("TEE", "MUG"):
        sandbox.add_product(store.hash, name=sku, sku=sku, inventory_level=20)
    sandbox.add_product(store.hash, name="E-book", sku="EBOOK", type="digital")
    return store


@pytest.fixture
def api(store: SandboxStore) -> Iterator[StoreClient]:
    with store.client() as client:
        yield client


def _order(store: SandboxStore, api: StoreClient, **kwargs: Any) -> tuple[int, int, dict[str, int]]:
    order_id = store.sandbox.create_order(store.hash, **kwargs)
    address_id = api.get(f"/v2/orders/{order_id}/shipping_addresses").json()[0]["id"]
    lines = {line["sku"]: line["id"] for line in api.get(f"/v2/orders/{order_id}/products").json()}
    return order_id, address_id, lines


def test_partial_then_full_shipment_moves_status_3_then_2(store: SandboxStore,
                                                          api: StoreClient) -> None:
    order_id, address_id, lines = _order(store, api, lines=[{"sku": "TEE", "quantity": 2},
                                                            {"sku": "MUG", "quantity": 1}])
    assert api.get(f"/v2/orders/{order_id}/shipments").status_code == 204

    first = api.post(f"/v2/orders/{order_id}/shipments", json={
        "order_address_id": address_id, "tracking_number": "1Z999AA10123456784",
        "shipping_provider": "ups", "tracking_carrier": "", "shipping_method": "UPS Ground",
        "comments": "From WH-1", "items": [{"order_product_id": lines["TEE"], "quantity": 1}]})

    assert first.status_code == 201
    shipment = first.json()
    assert shipment["order_id"] == order_id and shipment["order_address_id"] == address_id
    assert shipment["items"] == [{"order_product_id": lines["TEE"], "product_id": 111,
                                  "quantity": 1}]
    assert shipment["generated_tracking_link"].endswith("1Z999AA10123456784")
    assert shipment["tracking_link"] == ""
    assert shipment["shipping_provider_display_name"] == "UPS"
    assert shipment["date_created"].endswith("+0000")
    order = api.get(f"/v2/orders/{order_id}").json()
    assert (order["status_id"], order["items_shipped"], order["date_shipped"]) == (3, 1, "")

    rest = api.post(f"/v2/orders/{order_id}/shipments", json={
        "order_address_id": address_id, "tracking_number": "9400100000000000000000",
        "shipping_provider": "usps",
        "items": [{"order_product_id": lines["TEE"], "quantity": 1},
                  {"order_product_id": lines["MUG"], "quantity": 1}]})

    assert rest.status_code == 201
    order = api.get(f"/v2/orders/{order_id}").json()
    assert order["status_id"] == 2 and order["status"] == "Shipped"
    assert order["items_shipped"] == 3 and order["date_shipped"] != ""
    products = api.get(f"/v2/orders/{order_id}/products").json()
    assert [line["quantity_shipped"] for line in products] == [2, 1]
    assert api.get(f"/v2/orders/{order_id}/shipments/count").json() == {"count": 2}
    assert len(api.get(f"/v2/orders/{order_id}/shipments").json()) == 2


@pytest.mark.parametrize("change, message", [
    ({"order_address_id": None}, "order_address_id"),
    ({"order_address_id": 1}, "order_address_id"),
    ({"items": []}, "items"),
    ({"items": [{"order_product_id": 111, "quantity": 1}]}, "order_product_id"),
    ({"items": "TEE"}, "items"),
    ({"tracking_number": "X" * 51}, "tracking_number"),
    ({"shipping_provider": "dhl-express"}, "shipping_provider"),
    ({"tracking_link": "https://t.example/" + "x" * 500}, "tracking_link"),
    ({"id": 5}, "'id'"),
])
def test_invalid_shipments_are_refused_and_change_nothing(
        store: SandboxStore, api: StoreClient, change: dict[str, Any], message: str) -> None:
    order_id, address_id, lines = _order(store, api, lines=[{"sku": "TEE", "quantity": 1}])
    body = {"order_address_id": address_id, "tracking_number": "1Z",
            "shipping_provider": "ups",
            "items": [{"order_product_id": lines["TEE"], "quantity": 1}], **change}

    response = api.post(f"/v2/orders/{order_id}/shipments", json=body)

    assert response.status_code == 400
    assert message in response.json()[0]["message"]
    assert api.get(f"/v2/orders/{order_id}/shipments").status_code == 204
    assert api.get(f"/v2/orders/{order_id}").json()["status_id"] == 11


def test_shipping_more_than_is_left_is_refused(store: SandboxStore, api: StoreClient) -> None:
    order_id, address_id, lines = _order(store, api, lines=[{"sku": "TEE", "quantity": 2}])
    item = {"order_product_id": lines["TEE"], "quantity": 2}
    assert api.post(f"/v2/orders/{order_id}/shipments",
                    json={"order_address_id": address_id, "items": [item]}).status_code == 201

    again = api.post(f"/v2/orders/{order_id}/shipments",
                     json={"order_address_id": address_id, "items": [item]})

    assert again.status_code == 400 and "left to ship (0)" in again.json()[0]["message"]


def test_custom_carriers_and_links(store: SandboxStore, api: StoreClient) -> None:
    order_id, address_id, lines = _order(store, api, lines=[{"sku": "TEE", "quantity": 3}])
    item = [{"order_product_id": lines["TEE"], "quantity": 1}]

    custom = api.post(f"/v2/orders/{order_id}/shipments", json={
        "order_address_id": address_id, "tracking_number": "JD0002", "shipping_provider": "",
        "tracking_carrier": "dhl", "items": item}).json()
    third_party = api.post(f"/v2/orders/{order_id}/shipments", json={
        "order_address_id": address_id, "tracking_number": "C1", "shipping_provider": "carrier_42",
        "items": item}).json()
    own_link = api.post(f"/v2/orders/{order_id}/shipments", json={
        "order_address_id": address_id, "tracking_number": "L1",
        "tracking_link": "https://track.example/L1", "items": item}).json()

    assert custom["generated_tracking_link"] == "https://track.aftership.com/dhl/JD0002"
    assert third_party["shipping_provider"] == "carrier_42"
    assert own_link["tracking_link"] == "https://track.example/L1"
    assert own_link["generated_tracking_link"] == ""


def test_digital_lines_cannot_be_shipped_and_a_digital_only_order_has_no_address(
        store: SandboxStore, api: StoreClient) -> None:
    digital_only = store.sandbox.create_order(store.hash, lines=[{"sku": "EBOOK"}])
    assert api.get(f"/v2/orders/{digital_only}/shipping_addresses").status_code == 204
    assert api.get(f"/v2/orders/{digital_only}").json()["order_is_digital"] is True

    order_id, address_id, lines = _order(store, api, lines=[{"sku": "TEE"}, {"sku": "EBOOK"}])
    response = api.post(f"/v2/orders/{order_id}/shipments", json={
        "order_address_id": address_id,
        "items": [{"order_product_id": lines["EBOOK"], "quantity": 1}]})

    assert response.status_code == 400 and "digital" in response.json()[0]["message"]


def test_a_bundle_is_shipped_by_its_parent_or_by_all_its_components(
        store: SandboxStore, api: StoreClient) -> None:
    bundle = [{"sku": "MUG", "quantity": 2}]
    by_parent, address, lines = _order(store, api, lines=[{"sku": "TEE", "bundle": bundle}])
    api.post(f"/v2/orders/{by_parent}/shipments", json={
        "order_address_id": address, "items": [{"order_product_id": lines["TEE"], "quantity": 1}]})
    by_parts, address, lines = _order(store, api, lines=[{"sku": "TEE", "bundle": bundle}])
    api.post(f"/v2/orders/{by_parts}/shipments", json={
        "order_address_id": address, "items": [{"order_product_id": lines["MUG"], "quantity": 2}]})

    assert store.sandbox.get_order(store.hash, by_parent)["status_id"] == 2
    assert store.sandbox.get_order(store.hash, by_parts)["status_id"] == 2


def test_shipments_can_be_read_updated_and_deleted_without_unshipping_the_order(
        store: SandboxStore, api: StoreClient) -> None:
    order_id, address_id, lines = _order(store, api, lines=[{"sku": "TEE"}])
    created = api.post(f"/v2/orders/{order_id}/shipments", json={
        "order_address_id": address_id, "tracking_number": "OLD", "shipping_provider": "fedex",
        "items": [{"order_product_id": lines["TEE"], "quantity": 1}]}).json()
    path = f"/v2/orders/{order_id}/shipments/{created['id']}"

    updated = api.put(path, json={"tracking_number": "NEW"})
    no_items = api.put(path, json={"items": []})

    assert updated.status_code == 200 and updated.json()["tracking_number"] == "NEW"
    assert api.get(path).json()["tracking_number"] == "NEW"
    assert no_items.status_code == 400
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert api.get(f"/v2/orders/{order_id}").json()["status_id"] == 2
    assert api.get(f"/v2/orders/{order_id}/products").json()[0]["quantity_shipped"] == 0
