"""Stores: creation through the connector schemas, channels, and the store actions."""

from __future__ import annotations

from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem
from dropstream.stores.credentials import read_credentials, write_credentials
from dropstream.stores.models import Store, StoreState
from tests.api.conftest import assert_error
from tests.factories import WarehouseFactory
from tests.tenancy import make_tenant

SECRET = "store-secret-token-51c0de"


def new_store(tenant, **overrides):
    body = {"name": "Shop", "connector_id": "reference-store", "merchant_id": tenant.merchant.id,
            "settings": {"sandbox": "shop"}, "credentials": {"token": SECRET},
            "warehouse_id": tenant.warehouse.id, "warehouse_account": {"customer_code": "C1"},
            "external_id": "shop-1"}
    body.update(overrides)
    return body


def test_create_store_with_channels(admin, tenant):
    response = admin.post("/stores", json=new_store(tenant))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert SECRET not in response.get_data(as_text=True)
    assert body["state"] == "setting_up" and body["credentials_set"] is True
    assert body["settings"] == {"sandbox": "shop", "monitored_status": "awaiting_fulfillment",
                                "sent_status": "awaiting_shipment"}
    assert body["warehouse_account"] == {"customer_code": "C1"}
    channels = {c["channel"]: c for c in body["channels"]}
    assert set(channels) == {"orders", "shipments", "inventory"}
    assert channels["orders"]["interval_seconds"] == 300 and channels["inventory"]["interval_seconds"] == 3600
    assert all(c["supported"] and c["enabled"] and not c["paused"] for c in channels.values())
    assert read_credentials(db.session.get(Store, body["id"])) == {"token": SECRET}
    assert SECRET not in admin.get(f"/stores/{body['id']}").get_data(as_text=True)


def test_merchant_admin_creates_for_its_own_merchant_without_a_warehouse(merchant_admin, tenant):
    body = new_store(tenant)
    del body["merchant_id"]
    # The warehouse account decides whose stock and shipments the WMS reports: provider only.
    error = assert_error(merchant_admin.post("/stores", json=body), 403, "forbidden")
    assert "warehouse_id" in error["fields"]
    del body["warehouse_id"], body["warehouse_account"]
    response = merchant_admin.post("/stores", json=body)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["merchant_id"] == tenant.merchant.id and created["warehouse_id"] is None
    for change in ({"warehouse_id": tenant.warehouse.id}, {"warehouse_account": {"customer_code": "X"}}):
        assert_error(merchant_admin.patch(f"/stores/{created['id']}", json=change), 403)


def test_provider_users_must_name_the_merchant(admin, tenant):
    body = new_store(tenant)
    del body["merchant_id"]
    assert "merchant_id" in assert_error(admin.post("/stores", json=body), 422)["fields"]


def test_every_bad_field_is_named(admin, tenant):
    error = assert_error(admin.post("/stores", json=new_store(
        tenant, settings={"sandbox": ""}, credentials={"token": ""},
        warehouse_account={"customer_code": 5})), 422, "validation_error")
    assert {"settings.sandbox", "credentials.token", "warehouse_account.customer_code"} <= set(error["fields"])
    error = assert_error(admin.post("/stores", json=new_store(tenant, connector_id="reference-wms")), 422)
    assert "connector_id" in error["fields"]


def test_warehouse_of_another_provider_is_no_such_warehouse(admin, tenant):
    other = make_tenant("other")
    error = assert_error(admin.post("/stores", json=new_store(tenant, warehouse_id=other.warehouse.id)), 422)
    assert error["fields"] == {"warehouse_id": ["No such warehouse."]}
    missing = assert_error(admin.post("/stores", json=new_store(tenant, warehouse_id=999999)), 422)
    assert missing["fields"] == error["fields"]  # foreign and missing read the same
    error = assert_error(admin.post("/stores", json=new_store(tenant, merchant_id=other.merchant.id)), 422)
    assert error["fields"] == {"merchant_id": ["No such merchant."]}


def test_external_id_is_unique(admin, tenant):
    assert admin.post("/stores", json=new_store(tenant)).status_code == 201
    error = assert_error(admin.post("/stores", json=new_store(tenant, name="Again")), 409, "conflict")
    assert "external_id" in error["fields"]


def test_update_store(staff, tenant):
    second = WarehouseFactory(provider_id=tenant.provider.id, settings={"sandbox": "b"})
    db.session.commit()
    url = f"/stores/{tenant.store.id}"
    response = staff.patch(url, json={
        "name": "Renamed", "warehouse_id": second.id, "warehouse_account": {"customer_code": "Z"},
        "settings": {"sent_status": ""}, "credentials": {"token": SECRET}, "safety_buffer": 3})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["name"], body["warehouse_id"], body["safety_buffer"]) == ("Renamed", second.id, 3)
    assert body["settings"]["sandbox"] == "default" and body["settings"]["sent_status"] == ""
    assert body["credentials_set"] and SECRET not in response.get_data(as_text=True)
    unlinked = staff.patch(url, json={"warehouse_id": None}).get_json()
    assert unlinked["warehouse_id"] is None and unlinked["warehouse_account"] == {}
    assert not any(c["supported"] for c in unlinked["channels"])
    assert all("warehouse" in c["unsupported_reason"] for c in unlinked["channels"])


def test_setup_checks(admin, tenant):
    write_credentials(tenant.store, {"token": "wrong"})
    db.session.commit()
    response = admin.post(f"/stores/{tenant.store.id}/setup-checks")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["passed"] is False
    failing = [c for c in body["checks"] if not c["passed"]]
    assert failing and all(c["fix"] for c in failing)
    assert "wrong" not in response.get_data(as_text=True)


def test_channel_switches_and_run_now(merchant_admin, tenant):
    base = f"/stores/{tenant.store.id}/channels"
    response = merchant_admin.patch(f"{base}/inventory", json={"interval_seconds": 900, "paused": True})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["interval_seconds"], response.get_json()["paused"]) == (900, True)
    assert_error(merchant_admin.patch(f"{base}/inventory", json={"interval_seconds": 5}), 422)
    assert_error(merchant_admin.post(f"{base}/inventory/run", json={}), 409)
    merchant_admin.patch(f"{base}/inventory", json={"paused": False})
    response = merchant_admin.post(f"{base}/inventory/run", json={"full": True})
    assert response.status_code == 202, response.get_json()
    assert db.session.scalars(db.select(OutboxItem).where(OutboxItem.kind == "channel.run")).first()
    assert merchant_admin.post(f"{base}/orders/run").status_code == 202  # body optional


def test_pause_and_resume(staff, tenant):
    response = staff.post(f"/stores/{tenant.store.id}/pause", json={"reason": "Holiday"})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["state"], response.get_json()["state_reason"]) == ("paused", "Holiday")
    response = staff.post(f"/stores/{tenant.store.id}/resume")
    assert response.get_json()["state"] == "active"
    default_reason = staff.post(f"/stores/{tenant.store.id}/pause").get_json()["state_reason"]
    assert tenant.users[next(iter(tenant.users))].email.split("@")[1] in default_reason


def test_delete_only_when_not_active(admin, tenant):
    url = f"/stores/{tenant.store.id}"
    assert_error(admin.delete(url), 409, "store_active")
    admin.post(f"{url}/pause")
    assert admin.delete(url).status_code == 204
    assert_error(admin.get(url), 404)


def test_list_filters(admin, tenant):
    assert admin.post("/stores", json=new_store(tenant)).status_code == 201
    page = admin.get("/stores?state=setting_up").get_json()
    assert [s["name"] for s in page["items"]] == ["Shop"]
    assert page["pagination"] == {"page": 1, "per_page": 50, "total": 1, "pages": 1}
    assert admin.get("/stores?per_page=1&page=2").get_json()["pagination"]["total"] == 2
    assert db.session.get(Store, tenant.store.id).state is StoreState.ACTIVE


def test_an_uninstalled_connector_or_unreadable_credentials_are_explained(admin, tenant):
    store = db.session.get(Store, tenant.store.id)
    store.connector_id = "gone-plugin"
    store.credentials_ciphertext = "not-a-fernet-token"
    db.session.commit()
    body = admin.get(f"/stores/{store.id}").get_json()
    assert not any(c["supported"] for c in body["channels"])
    assert "not installed" in body["channels"][0]["unsupported_reason"]
    assert_error(admin.post(f"/stores/{store.id}/setup-checks"), 409, "connector_missing")
    assert_error(admin.post(f"/stores/{store.id}/channels/orders/run"), 409, "not_supported")
    assert admin.patch(f"/stores/{store.id}", json={"name": "Still renamable"}).status_code == 200
    assert "connector_id" in assert_error(admin.patch(f"/stores/{store.id}", json={"settings": {}}), 422)["fields"]
    store = db.session.get(Store, tenant.store.id)
    store.connector_id = "reference-store"
    db.session.commit()
    assert_error(admin.post(f"/stores/{store.id}/setup-checks"), 409, "credentials_unreadable")


def test_blank_external_ids_do_not_collide(admin, tenant):
    for name in ("One", "Two"):
        response = admin.post("/stores", json=new_store(tenant, name=name, external_id=" "))
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["external_id"] is None
    assert admin.patch(f"/stores/{tenant.store.id}", json={"external_id": ""}).get_json()["external_id"] is None
