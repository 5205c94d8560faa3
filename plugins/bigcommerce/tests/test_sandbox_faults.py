"""Injected faults fail the way real networks and gateways do, and only as often as asked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from dropstream_bigcommerce.sandbox import BigCommerceSandbox, SandboxError
from dropstream_bigcommerce.sandbox.testing import SandboxStore, StoreClient, new_store


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(rate_limits=False, seed=3) as sandbox:
        yield sandbox


@pytest.fixture
def store(sandbox: BigCommerceSandbox) -> Iterator[SandboxStore]:
    store = new_store(sandbox)
    sandbox.add_product(store.hash, name="Tee", sku="TEE", inventory_level=5)
    yield store
    sandbox.clear_faults()


@pytest.fixture
def api(store: SandboxStore) -> Iterator[StoreClient]:
    with store.client() as client:
        yield client


@pytest.mark.parametrize("kind, title", [("500", "Internal Server Error"), ("502", "Bad Gateway"),
                                         ("503", "Service Unavailable"),
                                         ("504", "Gateway Timeout")])
def test_server_errors_come_once_in_each_version_shape(sandbox: BigCommerceSandbox,
                                                       store: SandboxStore, api: StoreClient,
                                                       kind: str, title: str) -> None:
    sandbox.inject(kind, store_hash=store.hash, count=2, retry_after=7)

    v2, v3, healthy = api.get("/v2/orders"), api.get("/v3/catalog/products"), api.get("/v2/orders")

    assert v2.status_code == int(kind) and v2.json() == [{"status": int(kind), "message": title}]
    assert v3.status_code == int(kind) and v3.json()["title"] == title
    assert v2.headers["Retry-After"] == "7"
    assert healthy.status_code == 204


def test_an_injected_429_has_no_quota_headers(sandbox: BigCommerceSandbox, store: SandboxStore,
                                              api: StoreClient) -> None:
    sandbox.inject("429", store_hash=store.hash)
    response = api.get("/v2/orders")
    assert response.status_code == 429 and "X-Rate-Limit-Requests-Left" not in response.headers
    assert sandbox.stats(store.hash)["responses_429"] == 0  # not a quota refusal


def test_a_reset_drops_the_connection_and_does_not_apply_the_request(
        sandbox: BigCommerceSandbox, store: SandboxStore, api: StoreClient) -> None:
    order_id = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])
    sandbox.inject("reset", store_hash=store.hash, method="PUT")

    with pytest.raises(requests.ConnectionError):
        api.put(f"/v2/orders/{order_id}", json={"status_id": 9})

    assert sandbox.get_order(store.hash, order_id)["status_id"] == 11
    assert sandbox.call_log(store.hash)[-1]["fault"] == "reset"


def test_reset_after_applies_the_request_but_loses_the_answer(
        sandbox: BigCommerceSandbox, store: SandboxStore, api: StoreClient) -> None:
    order_id = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])
    sandbox.inject("reset_after", store_hash=store.hash, path_contains="/shipments")
    address = api.get(f"/v2/orders/{order_id}/shipping_addresses").json()[0]["id"]
    line = api.get(f"/v2/orders/{order_id}/products").json()[0]["id"]

    with pytest.raises(requests.ConnectionError):
        api.post(f"/v2/orders/{order_id}/shipments", json={
            "order_address_id": address, "items": [{"order_product_id": line, "quantity": 1}]})

    assert len(api.get(f"/v2/orders/{order_id}/shipments").json()) == 1
    assert sandbox.get_order(store.hash, order_id)["status_id"] == 2


def test_a_slow_answer_outlasts_the_client_read_timeout(sandbox: BigCommerceSandbox,
                                                        store: SandboxStore, api: StoreClient) -> None:
    sandbox.inject("slow", store_hash=store.hash, delay=0.6)
    with pytest.raises(requests.ReadTimeout):
        api.get("/v2/orders", timeout=(2, 0.2))
    assert api.get("/v2/orders", timeout=(2, 0.2)).status_code == 204


def test_truncated_and_html_answers_are_not_json(sandbox: BigCommerceSandbox, store: SandboxStore,
                                                 api: StoreClient) -> None:
    order_id = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])
    sandbox.inject("truncated", store_hash=store.hash)
    truncated = api.get(f"/v2/orders/{order_id}")
    sandbox.inject("html", store_hash=store.hash)
    html = api.get(f"/v2/orders/{order_id}")

    assert truncated.status_code == 200
    full = api.get(f"/v2/orders/{order_id}").content
    assert truncated.content == full[: len(full) // 2]
    with pytest.raises(requests.JSONDecodeError):
        truncated.json()
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert html.text.startswith("<!DOCTYPE html>")


def test_faults_match_store_path_and_method_only(sandbox: BigCommerceSandbox, store: SandboxStore,
                                                 api: StoreClient) -> None:
    other = new_store(sandbox)
    sandbox.inject("503", store_hash=store.hash, path_contains="/v3/catalog", count=1)
    with other.client() as other_api:
        assert other_api.get("/v3/catalog/products").status_code == 200
    assert api.get("/v2/orders").status_code == 204
    assert api.get("/v3/catalog/products").status_code == 503
    assert api.get("/v3/catalog/products").status_code == 200


def test_a_401_fault_looks_like_a_revoked_token(sandbox: BigCommerceSandbox, store: SandboxStore,
                                                api: StoreClient) -> None:
    sandbox.inject("401", store_hash=store.hash)
    response = api.get("/v3/catalog/products")
    assert response.status_code == 401 and response.json()["title"].startswith("Unauthorized")


def test_probability_faults_are_seeded_and_bounded_by_duration(store: SandboxStore,
                                                               api: StoreClient) -> None:
    def run(seed: int) -> list[int]:
        with BigCommerceSandbox(rate_limits=False, seed=seed) as sandbox:
            target = new_store(sandbox)
            sandbox.inject("500", count=None, probability=0.3, duration=30)
            with target.client() as client:
                return [client.get("/v2/time").status_code for _ in range(40)]

    first, again = run(11), run(11)
    assert first == again
    assert 3 <= first.count(500) <= 25 and set(first) == {200, 500}


@pytest.mark.parametrize("kwargs", [{"kind": "teapot"}, {"kind": "500", "count": 0},
                                    {"kind": "500", "probability": 1.5},
                                    {"kind": "500", "count": None}])
def test_bad_fault_arguments_are_refused(sandbox: BigCommerceSandbox, kwargs: dict) -> None:
    with pytest.raises(SandboxError):
        sandbox.inject(**kwargs)
