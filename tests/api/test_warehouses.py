"""Warehouses: connector validation, write-only credentials, ship methods, deletion."""

from __future__ import annotations

from dropstream.extensions import db
from dropstream.stores.credentials import read_credentials, write_credentials
from dropstream.stores.models import Warehouse
from dropstream.testing.reference import warehouse_sandbox
from tests.api.conftest import assert_error

SECRET = "wms-secret-token-7f3a9c"


def test_create_seals_credentials_and_never_returns_them(admin):
    response = admin.post("/warehouses", json={
        "name": "East", "connector_id": "reference-wms", "settings": {"sandbox": "east"},
        "credentials": {"token": SECRET}})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["credentials_set"] is True and body["settings"] == {"sandbox": "east"}
    assert SECRET not in response.get_data(as_text=True)
    warehouse = db.session.get(Warehouse, body["id"])
    assert SECRET not in (warehouse.credentials_ciphertext or "")
    assert read_credentials(warehouse) == {"token": SECRET}
    for path in ("/warehouses", f"/warehouses/{body['id']}"):
        raw = admin.get(path).get_data(as_text=True)
        assert SECRET not in raw and "credentials_set" in raw
    patched = admin.patch(f"/warehouses/{body['id']}", json={"credentials": {"token": SECRET + "2"}})
    assert patched.status_code == 200 and SECRET not in patched.get_data(as_text=True)


def test_connector_must_be_a_registered_warehouse_connector(admin):
    for connector_id in ("nope", "reference-store"):
        error = assert_error(admin.post("/warehouses", json={
            "name": "W", "connector_id": connector_id, "settings": {"sandbox": "x"}}), 422)
        assert "connector_id" in error["fields"]


def test_settings_are_validated_by_the_connector_schema(admin, tenant):
    error = assert_error(admin.post("/warehouses", json={
        "name": "W", "connector_id": "reference-wms", "settings": {}}), 422, "validation_error")
    assert "settings.sandbox" in error["fields"]
    error = assert_error(admin.patch(f"/warehouses/{tenant.warehouse.id}",
                                     json={"settings": {"sandbox": ""}}), 422)
    assert "settings.sandbox" in error["fields"]
    # settings merge over the stored ones
    response = admin.patch(f"/warehouses/{tenant.warehouse.id}", json={"settings": {}, "name": "N"})
    assert response.status_code == 200 and response.get_json()["settings"] == {"sandbox": "default"}


def test_ship_methods_ask_the_connector(staff, tenant, merchant_admin):
    write_credentials(tenant.warehouse, {"token": "wms-token"})
    db.session.commit()
    response = staff.get(f"/warehouses/{tenant.warehouse.id}/ship-methods")
    assert response.status_code == 200, response.get_json()
    assert [m["code"] for m in response.get_json()["items"]] == ["GRND", "EXP"]
    assert merchant_admin.get(f"/warehouses/{tenant.warehouse.id}/ship-methods").status_code == 200
    warehouse_sandbox("default").token = "rotated"
    error = assert_error(staff.get(f"/warehouses/{tenant.warehouse.id}/ship-methods"), 502)
    assert "wms-token" not in error["message"]


def test_staff_manage_merchants_read(staff, merchant_admin, tenant):
    created = staff.post("/warehouses", json={"name": "W2", "connector_id": "reference-wms",
                                              "settings": {"sandbox": "w2"}})
    assert created.status_code == 201
    assert merchant_admin.get(f"/warehouses/{created.get_json()['id']}").status_code == 200
    assert_error(merchant_admin.delete(f"/warehouses/{created.get_json()['id']}"), 403)
    assert staff.delete(f"/warehouses/{created.get_json()['id']}").status_code == 204
    assert_error(staff.get(f"/warehouses/{created.get_json()['id']}"), 404)


def test_a_warehouse_in_use_cannot_be_deleted(admin, tenant):
    assert_error(admin.delete(f"/warehouses/{tenant.warehouse.id}"), 409, "in_use")


def test_rejected_credentials_are_not_echoed(admin, caplog):
    response = admin.post("/warehouses", json={
        "name": "W", "connector_id": "reference-wms", "settings": {"sandbox": "x"},
        "credentials": {"token": 12345, "api_secret": SECRET}})
    error = assert_error(response, 422, "validation_error")
    assert {"credentials.token", "credentials.api_secret"} <= set(error["fields"])
    assert SECRET not in response.get_data(as_text=True)
    assert SECRET not in caplog.text
