"""The sandbox serves Orders V2 as BigCommerce does: paging with 204, filters, the shapes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from dropstream_bigcommerce.sandbox import BigCommerceSandbox, SandboxError
from dropstream_bigcommerce.sandbox.testing import SandboxStore, StoreClient, new_store

MINUS_4 = timezone(timedelta(hours=-4))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(rate_limits=False) as sandbox:
        yield sandbox


@pytest.fixture
def store(sandbox: BigCommerceSandbox) -> SandboxStore:
    store = new_store(sandbox)
    sandbox.add_product(store.hash, name="Tee", sku="TEE", price="12.50", inventory_level=50)
    sandbox.add_product(store.hash, name="Mug", sku="MUG", inventory_level=50)
    return store


@pytest.fixture
def api(store: SandboxStore) -> Iterator[StoreClient]:
    with store.client() as client:
        yield client


def test_order_list_pages_with_a_short_last_page_then_204(store: SandboxStore, api: StoreClient) -> None:
    ids = [store.sandbox.create_order(store.hash, lines=[{"sku": "TEE", "quantity": 1}])
           for _ in range(5)]

    first = api.get("/v2/orders", params={"limit": 2, "page": 1})
    last = api.get("/v2/orders", params={"limit": 2, "page": 3})
    beyond = api.get("/v2/orders", params={"limit": 2, "page": 4})

    assert first.status_code == 200 and first.headers["Content-Type"] == "application/json"
    assert [order["id"] for order in first.json()] == ids[:2]
    assert [order["id"] for order in last.json()] == ids[4:]
    assert beyond.status_code == 204 and beyond.content == b""


def test_an_empty_store_lists_no_orders_with_204(api: StoreClient) -> None:
    response = api.get("/v2/orders")
    assert response.status_code == 204 and response.content == b""


def test_limit_over_250_is_refused(api: StoreClient) -> None:
    assert api.get("/v2/orders", params={"limit": 250}).status_code == 204
    response = api.get("/v2/orders", params={"limit": 251})
    assert response.status_code == 413
    assert response.json()[0]["status"] == 413 and "250" in response.json()[0]["message"]


def test_orders_filter_by_status_id_and_min_id(store: SandboxStore, api: StoreClient) -> None:
    waiting = store.sandbox.create_order(store.hash, lines=[{"sku": "TEE"}], status_id=11)
    pending = store.sandbox.create_order(store.hash, lines=[{"sku": "TEE"}], status_id=1)
    later = store.sandbox.create_order(store.hash, lines=[{"sku": "MUG"}], status_id=11)

    assert [o["id"] for o in api.get("/v2/orders", params={"status_id": 11}).json()] == [waiting, later]
    assert [o["id"] for o in api.get("/v2/orders", params={"min_id": pending}).json()] == [pending, later]
    count = api.get("/v2/orders/count", params={"status_id": 11}).json()
    assert count["count"] == 2
    assert {s["id"]: s["count"] for s in count["statuses"]}[11] == 2


def test_a_put_moves_date_modified_which_filters_and_sorts_in_both_formats(
        store: SandboxStore, api: StoreClient) -> None:
    changed = store.sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])
    untouched = store.sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])
    before = api.get(f"/v2/orders/{changed}").json()
    created = parsedate_to_datetime(before["date_modified"])
    while datetime.now(UTC) < created + timedelta(seconds=1):  # the API keeps whole seconds
        time.sleep(0.02)

    after = api.put(f"/v2/orders/{changed}", json={"status_id": 9})

    assert after.status_code == 200
    assert after.json()["status_id"] == 9 and after.json()["status"] == "Awaiting Shipment"
    assert after.json()["subtotal_ex_tax"] == before["subtotal_ex_tax"]
    modified = parsedate_to_datetime(after.json()["date_modified"])
    assert modified > created
    for bound in (format_datetime(modified.astimezone(MINUS_4)),
                  modified.astimezone(MINUS_4).isoformat(timespec="milliseconds")):
        newer = api.get("/v2/orders", params={"min_date_modified": bound}).json()
        older = api.get("/v2/orders", params={"max_date_modified": bound}).json()
        assert [o["id"] for o in newer] == [changed]
        assert sorted(o["id"] for o in older) == [changed, untouched]
    before_change = format_datetime(created)
    assert [o["id"] for o in api.get("/v2/orders", params={
        "max_date_modified": before_change}).json()] == [untouched]
    ascending = api.get("/v2/orders", params={"sort": "date_modified:asc"}).json()
    descending = api.get("/v2/orders", params={"sort": "date_modified:desc"}).json()
    assert [o["id"] for o in ascending] == [untouched, changed]
    assert [o["id"] for o in descending] == [changed, untouched]


def test_bad_filters_name_the_parameter(api: StoreClient) -> None:
    for params, name in (({"min_date_modified": "yesterday"}, "min_date_modified"),
                         ({"sort": "colour"}, "sort"), ({"status_id": "eleven"}, "status_id")):
        response = api.get("/v2/orders", params=params)
        assert response.status_code == 400
        assert name in response.json()[0]["message"]


def test_order_fields_have_the_documented_types(store: SandboxStore, api: StoreClient) -> None:
    order_id = store.sandbox.create_order(store.hash, lines=[{"sku": "TEE", "quantity": 2}],
                                          customer_message="Leave at the door")
    order = api.get(f"/v2/orders/{order_id}").json()

    assert order["id"] == order_id and order["status_id"] == 11
    assert order["status"] == "Awaiting Fulfillment"
    assert order["subtotal_ex_tax"] == "25.0000" and order["total_inc_tax"] == "25.0000"
    assert order["date_created"].endswith("+0000")
    assert parsedate_to_datetime(order["date_created"]).tzinfo is not None
    assert order["customer_message"] == "Leave at the door"
    assert order["items_total"] == 2 and order["items_shipped"] == 0
    assert order["billing_address"]["email"] == "janedoe@example.com"
    assert order["products"]["resource"] == f"/orders/{order_id}/products"
    assert order["products"]["url"] == store.url(f"/v2/orders/{order_id}/products")
    assert order["consignments"]["resource"] == f"/orders/{order_id}/consignments"
    assert "customer" not in order


def test_include_consignments_object_carries_addresses_methods_and_lines(
        store: SandboxStore, api: StoreClient) -> None:
    sandbox = store.sandbox
    sandbox.add_product(store.hash, name="E-book", sku="EBOOK", type="digital",
                        inventory_tracking="none")
    sandbox.add_product(store.hash, name="Gift box", sku="BOX", inventory_level=5)
    no_sku = sandbox.add_product(store.hash, name="No SKU", sku=None, inventory_level=5)["id"]
    home = {"first_name": "Jane", "street_1": "1 Home St", "zip": "78751",
            "shipping_method": "Free Shipping"}
    office = {"first_name": "Ann", "street_1": "9 Work Ave", "zip": "10001",
              "shipping_method": "Express Overnight", "base_cost": "15.00"}
    order_id = sandbox.create_order(
        store.hash, shipping_addresses=[home, office],
        lines=[{"sku": "TEE", "quantity": 2},
               {"sku": "BOX", "quantity": 1, "address_index": 1,
                "bundle": [{"sku": "MUG", "quantity": 2}, {"sku": "TEE", "quantity": 1}]},
               {"sku": "EBOOK", "quantity": 1},
               {"type": "giftcertificate", "name": "$25 Gift Certificate", "price": "25.00",
                "recipient_email": "friend@example.com"},
               {"product_id": no_sku, "quantity": 1}],
        custom_products=[{"name": "Engraving", "quantity": 1, "price": "5.00"}])

    order = api.get(f"/v2/orders/{order_id}", params={
        "include": "consignments,consignments.line_items",
        "consignment_structure": "object"}).json()
    consignments = order["consignments"]

    assert set(consignments) == {"pickups", "shipping", "downloads", "email"}
    first, second = consignments["shipping"]
    assert first["shipping_method"] == "Free Shipping" and first["street_1"] == "1 Home St"
    assert second["shipping_method"] == "Express Overnight" and second["base_cost"] == 15.0
    assert [(line["sku"], line["quantity"]) for line in first["line_items"]] == [
        ("TEE", 2), ("", 1), ("", 1)]  # the product without a SKU, the custom product
    assert first["line_items"][2]["product_id"] == 0  # custom product
    parent, *components = second["line_items"]
    assert parent["sku"] == "BOX" and not parent["is_bundled_product"]
    assert [(c["sku"], c["parent_order_product_id"], c["is_bundled_product"])
            for c in components] == [("MUG", parent["id"], True), ("TEE", parent["id"], True)]
    assert all(line["order_address_id"] == second["id"] for line in second["line_items"])
    (download,) = consignments["downloads"]
    assert [line["type"] for line in download["line_items"]] == ["digital"]
    (gift,) = consignments["email"]["gift_certificates"]
    assert gift["recipient_email"] == "friend@example.com"
    assert gift["line_items"][0]["type"] == "giftcertificate"
    assert order["shipping_address_count"] == 2 and order["order_is_digital"] is False

    links = api.get(f"/v2/orders/{order_id}", params={
        "include": "consignments", "consignment_structure": "object"}).json()["consignments"]
    assert links["shipping"][0]["line_items"][0]["resource"].startswith(f"/orders/{order_id}/products/")


def test_order_products_are_paged_50_by_default(store: SandboxStore, api: StoreClient) -> None:
    skus = [f"P{number}" for number in range(55)]
    for sku in skus:
        store.sandbox.add_product(store.hash, name=sku, sku=sku, inventory_level=1)
    order_id = store.sandbox.create_order(store.hash, lines=[{"sku": sku} for sku in skus])

    first = api.get(f"/v2/orders/{order_id}/products")
    second = api.get(f"/v2/orders/{order_id}/products", params={"page": 2})
    third = api.get(f"/v2/orders/{order_id}/products", params={"page": 3})

    assert len(first.json()) == 50 and len(second.json()) == 5 and third.status_code == 204
    line = first.json()[0]
    assert line["base_price"] == "10.0000" and isinstance(line["quantity"], int)
    assert line["order_address_id"] == api.get(
        f"/v2/orders/{order_id}/shipping_addresses").json()[0]["id"]


def test_variant_lines_carry_variant_id_and_options(store: SandboxStore, api: StoreClient) -> None:
    product = store.sandbox.add_product(
        store.hash, name="Hoodie", inventory_tracking="variant",
        variants=[{"sku": "HOOD-S", "label": "S", "option": "Size", "inventory_level": 3},
                  {"sku": "HOOD-M", "label": "M", "option": "Size", "inventory_level": 3}])
    order_id = store.sandbox.create_order(store.hash, lines=[
        {"product_id": product["id"], "options": {"Size": "M"}}, {"sku": "HOOD-S"}])

    medium, small = api.get(f"/v2/orders/{order_id}/products").json()

    assert (medium["sku"], medium["variant_id"]) == ("HOOD-M", product["variants"][1]["id"])
    assert medium["product_options"][0]["display_name"] == "Size"
    assert medium["product_options"][0]["display_value"] == "M"
    assert small["sku"] == "HOOD-S"


def test_put_refuses_read_only_fields_and_bad_statuses(store: SandboxStore, api: StoreClient) -> None:
    order_id = store.sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])

    read_only = api.put(f"/v2/orders/{order_id}", json={"items_total": 3})
    bad_status = api.put(f"/v2/orders/{order_id}", json={"status_id": 99})
    not_json = api.put(f"/v2/orders/{order_id}", data="status_id=9",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    missing = api.put("/v2/orders/999999", json={"status_id": 9})

    assert read_only.status_code == 400 and "'items_total'" in read_only.json()[0]["message"]
    assert bad_status.status_code == 400 and "status_id" in bad_status.json()[0]["message"]
    assert not_json.status_code == 415
    assert missing.status_code == 404
    assert missing.json() == [{"status": 404, "message": "The requested resource was not found."}]
    assert store.sandbox.get_order(store.hash, order_id)["status_id"] == 11


def test_order_statuses_list_all_15_with_a_renamed_custom_label(store: SandboxStore,
                                                                 api: StoreClient) -> None:
    store.sandbox.rename_status(store.hash, 11, "Ready to pick")
    order_id = store.sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])

    statuses = api.get("/v2/order_statuses").json()
    order = api.get(f"/v2/orders/{order_id}").json()

    assert [s["id"] for s in statuses] == list(range(15))
    eleven = statuses[11]
    assert (eleven["system_label"], eleven["custom_label"]) == ("Awaiting Fulfillment", "Ready to pick")
    assert (order["status"], order["custom_status"]) == ("Awaiting Fulfillment", "Ready to pick")


def test_archived_orders_leave_the_list_but_remain_readable(store: SandboxStore,
                                                            api: StoreClient) -> None:
    order_id = store.sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])

    assert api.delete(f"/v2/orders/{order_id}").status_code == 204

    assert api.get("/v2/orders").status_code == 204
    assert api.get(f"/v2/orders/{order_id}").json()["is_deleted"] is True


@pytest.mark.parametrize("lines, field", [
    ([], "lines"),
    ([{"sku": "NOPE"}], "lines[0].sku"),
    ([{"sku": "TEE", "quantity": 0}], "lines[0].quantity"),
    ([{"sku": "TEE", "address_index": 3}], "lines[0].address_index"),
    ([{"sku": "TEE", "colour": "red"}], "lines[0]"),
])
def test_create_order_names_the_bad_field(store: SandboxStore, lines: list, field: str) -> None:
    with pytest.raises(SandboxError, match=rf"^{re.escape(field)}[: ]"):
        store.sandbox.create_order(store.hash, lines=lines)
