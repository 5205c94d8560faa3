"""Webhooks: managed per client, really delivered, retried on BigCommerce's schedule."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.delivery import RETRY_SCHEDULE
from dropstream_bigcommerce.sandbox.receiver import WebhookReceiver
from dropstream_bigcommerce.sandbox.testing import SandboxStore, StoreClient, new_store

SCALE = 0.000002  # the whole 48 h schedule takes about a third of a second


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(rate_limits=False, webhook_retry_scale=SCALE) as sandbox:
        yield sandbox


@pytest.fixture
def store(sandbox: BigCommerceSandbox) -> SandboxStore:
    store = new_store(sandbox)
    sandbox.add_product(store.hash, name="Tee", sku="TEE", inventory_level=5)
    return store


@pytest.fixture
def api(store: SandboxStore) -> Iterator[StoreClient]:
    with store.client() as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def _hook(api: StoreClient, scope: str, destination: str, **extra: object) -> dict:
    response = api.post("/v3/hooks", json={"scope": scope, "destination": destination, **extra})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_hooks_are_wrapped_and_belong_to_the_calling_client(
        sandbox: BigCommerceSandbox, store: SandboxStore, api: StoreClient) -> None:
    created = api.post("/v3/hooks", json={"scope": "store/order/created",
                                          "destination": "https://app.example/webhooks",
                                          "headers": {"X-Secret": "s3"}})
    other_client = sandbox.create_api_account(store.hash)

    assert created.status_code == 200
    body = created.json()
    assert body["meta"] == {} and body["data"]["is_active"] is True
    hook = body["data"]
    assert hook["client_id"] == store.credentials["client_id"] and hook["store_hash"] == store.hash
    assert hook["headers"] == {"X-Secret": "s3"} and isinstance(hook["created_at"], int)
    with store.client(other_client["access_token"]) as other:
        assert other.get("/v3/hooks").json()["data"] == []
        assert other.get(f"/v3/hooks/{hook['id']}").status_code == 404
        assert other.delete(f"/v3/hooks/{hook['id']}").status_code == 404
    listed = api.get("/v3/hooks").json()
    assert [h["id"] for h in listed["data"]] == [hook["id"]]
    assert listed["meta"]["pagination"]["total"] == 1


@pytest.mark.parametrize("body, field", [
    ({"destination": "https://app.example/w"}, "scope"),
    ({"scope": "store/order/created"}, "destination"),
    ({"scope": "store/order/paid", "destination": "https://app.example/w"}, "scope"),
    ({"scope": "store/order/created", "destination": "https://app.example:8443/w"}, "destination"),
    ({"scope": "store/order/created", "destination": "http://app.example/w"}, "destination"),
    ({"scope": "store/order/created", "destination": "https://app.example/w",
      "headers": {"X-Count": 3}}, "headers"),
])
def test_invalid_hooks_are_422_naming_the_field(api: StoreClient, body: dict, field: str) -> None:
    response = api.post("/v3/hooks", json=body)
    assert response.status_code == 422
    assert response.json()["title"] == "JSON data is missing or invalid"
    assert field in response.json()["errors"]


def test_one_hook_per_scope_and_destination(api: StoreClient) -> None:
    _hook(api, "store/order/created", "https://app.example/w")
    again = api.post("/v3/hooks", json={"scope": "store/order/created",
                                        "destination": "https://app.example/w"})
    assert again.status_code == 422 and "destination" in again.json()["errors"]
    assert api.post("/v3/hooks", json={"scope": "store/order/updated",
                                       "destination": "https://app.example/w"}).status_code == 200


def test_update_reactivates_and_delete_returns_the_hook(sandbox: BigCommerceSandbox,
                                                       store: SandboxStore, api: StoreClient) -> None:
    hook = _hook(api, "store/order/created", "https://app.example/w")
    assert sandbox.deactivate_hooks(store.hash) == 1
    assert api.get(f"/v3/hooks/{hook['id']}").json()["data"]["is_active"] is False
    assert api.get("/v3/hooks", params={"is_active": "false"}).json()["data"][0]["id"] == hook["id"]

    updated = api.put(f"/v3/hooks/{hook['id']}", json={"is_active": True})
    deleted = api.delete(f"/v3/hooks/{hook['id']}")

    assert updated.status_code == 200 and updated.json()["data"]["is_active"] is True
    assert deleted.status_code == 200 and deleted.json()["data"]["id"] == hook["id"]
    assert api.get(f"/v3/hooks/{hook['id']}").json()["title"] == f"Webhook with id [{hook['id']}] not found"


def test_a_checkout_order_is_announced_with_thin_signed_payloads(
        sandbox: BigCommerceSandbox, store: SandboxStore, api: StoreClient,
        receiver: WebhookReceiver) -> None:
    for scope in ("store/order/created", "store/order/statusUpdated", "store/order/updated"):
        _hook(api, scope, receiver.url, headers={"X-Tenant-Token": "per-tenant-secret"})

    order_id = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])

    assert receiver.wait_for(3)
    by_scope = {request["json"]["scope"]: request for request in receiver.received}
    created = by_scope["store/order/created"]["json"]
    assert created["data"] == {"type": "order", "id": order_id}
    assert created["producer"] == f"stores/{store.hash}"
    assert created["store_id"] == str(api.get("/v2/store").json()["store_id"])
    assert isinstance(created["created_at"], int)
    assert created["hash"] == hashlib.sha1(
        json.dumps(created["data"], separators=(",", ":")).encode()).hexdigest()
    status = by_scope["store/order/statusUpdated"]["json"]["data"]
    assert status == {"type": "order", "id": order_id,
                      "status": {"previous_status_id": 0, "new_status_id": 11}}
    for request in receiver.received:
        headers = request["headers"]
        assert headers["X-Tenant-Token"] == "per-tenant-secret"
        assert headers["Content-Type"] == "application/json"
        signed = f"{headers['Webhook-Id']}.{headers['Webhook-Timestamp']}.".encode() + request["body"]
        expected = base64.b64encode(hmac.new(store.credentials["client_secret"].encode(), signed,
                                             hashlib.sha256).digest()).decode()
        assert headers["Webhook-Signature"] == f"v1,{expected}"


def test_status_changes_and_shipments_are_announced(
        sandbox: BigCommerceSandbox, store: SandboxStore, api: StoreClient,
        receiver: WebhookReceiver) -> None:
    order_id = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])
    _hook(api, "store/order/*", receiver.url)
    _hook(api, "store/shipment/created", receiver.url)

    sandbox.set_order_status(store.hash, order_id, 9)
    address = api.get(f"/v2/orders/{order_id}/shipping_addresses").json()[0]["id"]
    line = api.get(f"/v2/orders/{order_id}/products").json()[0]["id"]
    shipment = api.post(f"/v2/orders/{order_id}/shipments", json={
        "order_address_id": address, "items": [{"order_product_id": line, "quantity": 1}]}).json()

    assert receiver.wait_for(5) and sandbox.wait_for_webhooks()
    events = [(r["json"]["scope"], r["json"]["data"]) for r in receiver.received]
    assert ("store/order/statusUpdated", {"type": "order", "id": order_id, "status": {
        "previous_status_id": 11, "new_status_id": 9}}) in events
    assert ("store/shipment/created", {"type": "shipment", "id": shipment["id"],
                                       "orderId": order_id}) in events
    assert ("store/order/statusUpdated", {"type": "order", "id": order_id, "status": {
        "previous_status_id": 9, "new_status_id": 2}}) in events
    assert sum(scope == "store/order/updated" for scope, _ in events) == 2


def test_failed_deliveries_follow_the_retry_schedule_then_the_hook_is_deactivated(
        sandbox: BigCommerceSandbox, store: SandboxStore, api: StoreClient,
        receiver: WebhookReceiver) -> None:
    receiver.status = 503
    hook = _hook(api, "store/order/created", receiver.url)

    sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])

    assert sandbox.wait_for_webhooks(timeout=10)
    (delivery,) = sandbox.webhook_deliveries(store.hash)
    assert delivery["state"] == "failed"
    assert len(delivery["attempts"]) == 1 + len(RETRY_SCHEDULE)
    assert len(receiver.received) == 1 + len(RETRY_SCHEDULE)
    assert len({r["headers"]["Webhook-Id"] for r in receiver.received}) == 1  # same message
    gaps = [later["time"] - earlier["time"]
            for earlier, later in zip(delivery["attempts"], delivery["attempts"][1:], strict=False)]
    assert gaps[-1] >= RETRY_SCHEDULE[-1] * SCALE
    assert api.get(f"/v3/hooks/{hook['id']}").json()["data"]["is_active"] is False

    sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])  # an inactive hook gets nothing
    assert sandbox.wait_for_webhooks()
    assert len(receiver.received) == 1 + len(RETRY_SCHEDULE)


def test_a_receiver_that_recovers_gets_the_event_on_a_retry(
        sandbox: BigCommerceSandbox, store: SandboxStore, api: StoreClient,
        receiver: WebhookReceiver) -> None:
    _hook(api, "store/order/created", receiver.url)
    sandbox.inject("webhooks_fail", store_hash=store.hash, count=2)

    order_id = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])

    assert receiver.wait_for(1) and sandbox.wait_for_webhooks()
    (delivery,) = sandbox.webhook_deliveries(store.hash)
    assert delivery["state"] == "delivered" and len(delivery["attempts"]) == 3
    assert [r["json"]["data"]["id"] for r in receiver.received] == [order_id]


def test_dropped_webhooks_are_never_sent(sandbox: BigCommerceSandbox, store: SandboxStore,
                                         api: StoreClient, receiver: WebhookReceiver) -> None:
    _hook(api, "store/order/created", receiver.url)
    sandbox.inject("drop_webhooks", store_hash=store.hash, count=1)

    dropped = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])
    sent = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])

    assert receiver.wait_for(1) and sandbox.wait_for_webhooks()
    assert [r["json"]["data"]["id"] for r in receiver.received] == [sent]
    states = {d["payload"]["data"]["id"]: d["state"] for d in sandbox.webhook_deliveries(store.hash)}
    assert states == {dropped: "dropped", sent: "delivered"}
