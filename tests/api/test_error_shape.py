"""Every failure under /api has the same envelope, and bad input is never a 500
(datasette's ``test_error_shape``, across endpoints)."""

from __future__ import annotations

import json

import pytest

from dropstream.tenants.models import Role
from tests.api.conftest import PREFIX, As, assert_error

S = "{store}"  # replaced by the tenant's store id

BAD_REQUESTS = [
    # (method, path, request kwargs, status, code, field expected in "fields")
    ("GET", "/nowhere", {}, 404, "not_found", None),
    ("GET", "/stores/999999", {}, 404, "not_found", None),
    ("GET", "/stores/99999999999999999999999", {}, 404, "not_found", None),
    ("GET", "/stores/2147483648", {}, 404, "not_found", None),
    ("GET", "/stores/0", {}, 404, "not_found", None),
    ("GET", "/stores/-1", {}, 404, "not_found", None),
    ("GET", "/stores/abc", {}, 404, "not_found", None),
    ("GET", "/stores/1.5", {}, 404, "not_found", None),
    ("GET", f"/stores/{S}/channels/bogus/run", {}, 404, "not_found", None),
    ("PUT", f"/stores/{S}", {"json": {}}, 405, "method_not_allowed", None),
    ("DELETE", "/orders", {}, 405, "method_not_allowed", None),
    ("POST", "/stores", {"data": "{not json", "content_type": "application/json"}, 400, "bad_request", None),
    ("POST", "/stores", {"data": b"\xff\xfe", "content_type": "application/json"}, 400, "bad_request", None),
    ("POST", "/stores", {"data": '{"name": NaN}', "content_type": "application/json"}, 400, "bad_request", None),
    ("POST", "/stores", {"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, 400, "bad_request", None),
    ("POST", "/stores", {"json": []}, 422, "validation_error", "_schema"),
    ("POST", "/stores", {"json": "a string"}, 422, "validation_error", "_schema"),
    ("POST", "/stores", {"json": {}}, 422, "validation_error", "name"),
    ("POST", "/stores", {"json": {"name": 5, "connector_id": ["x"]}}, 422, "validation_error", "connector_id"),
    ("POST", "/stores", {"json": {"name": "x" * 201, "connector_id": "reference-store"}}, 422, "validation_error", "name"),
    ("POST", "/stores", {"json": {"name": "a\x00b", "connector_id": "reference-store"}}, 422, "validation_error", "name"),
    ("POST", "/stores", {"json": {"name": "s", "connector_id": "reference-store", "settings": {"sandbox": "x\x00"}}}, 422, "validation_error", "settings.sandbox"),
    ("POST", "/stores", {"json": {"name": "s", "connector_id": "reference-store", "warehouse_id": 10**30}}, 422, "validation_error", "warehouse_id"),
    ("POST", "/stores", {"json": {"name": "s", "connector_id": "reference-store", "warehouse_id": 1.5}}, 422, "validation_error", "warehouse_id"),
    ("POST", "/stores", {"data": '{"name": "s", "connector_id": "reference-store", "safety_buffer": 1e400}', "content_type": "application/json"}, 422, "validation_error", "safety_buffer"),
    ("POST", "/stores", {"json": {"name": "s", "connector_id": "reference-store", "settings": "nope"}}, 422, "validation_error", "settings"),
    ("POST", "/stores", {"json": {"name": "s", "connector_id": "reference-store", "extra": 1}}, 422, "validation_error", "extra"),
    ("GET", "/orders?page=0", {}, 422, "validation_error", "page"),
    ("GET", "/orders?per_page=100000", {}, 422, "validation_error", "per_page"),
    ("GET", "/orders?page=99999999999999999999", {}, 422, "validation_error", "page"),
    ("GET", "/orders?store_id=99999999999999999999", {}, 422, "validation_error", "store_id"),
    ("GET", "/orders?store_id=abc", {}, 422, "validation_error", "store_id"),
    ("GET", "/orders?status=nonsense", {}, 422, "validation_error", "status.0"),
    ("GET", "/orders?placed_from=yesterday", {}, 422, "validation_error", "placed_from"),
    ("GET", "/orders?placed_to=9999-12-31", {}, 200, None, None),
    ("GET", "/orders?placed_from=0001-01-01T00:00:00%2B14:00", {}, 422, "validation_error", "placed_from"),
    ("GET", "/orders?q=%00", {}, 422, "validation_error", "q"),
    ("GET", "/orders?q=" + "x" * 201, {}, 422, "validation_error", "q"),
    ("POST", "/orders/bulk", {"json": {"action": "explode", "ids": [1]}}, 422, "validation_error", "action"),
    ("POST", "/orders/bulk", {"json": {"action": "hold", "ids": ["1", None]}}, 422, "validation_error", "ids.0"),
    ("POST", "/orders/bulk", {"json": {"action": "hold", "ids": list(range(1, 1000))}}, 422, "validation_error", "ids"),
    ("POST", "/orders/bulk", {"json": {"action": "hold", "ids": [2**31]}}, 422, "validation_error", "ids.0"),
    ("POST", f"/stores/{S}/listings", {"json": {"store_sku": "A", "components": [{"warehouse_sku": "B", "quantity": 0}]}}, 422, "validation_error", "components.0.quantity"),
    ("PATCH", f"/stores/{S}/channels/orders", {"json": {"interval_seconds": "soon"}}, 422, "validation_error", "interval_seconds"),
    ("POST", f"/stores/{S}/listings/import", {"data": b"\xff\xfe\x00", "content_type": "text/csv"}, 422, "validation_error", "file"),
    ("POST", "/merchants", {"json": {"name": "M", "contact_email": "not-an-email"}}, 422, "validation_error", "contact_email"),
]


@pytest.mark.parametrize("method,path,kwargs,status,code,field", BAD_REQUESTS,
                         ids=[f"{m} {p[:50]}" for m, p, *_ in BAD_REQUESTS])
def test_error_shape(admin, tenant, method, path, kwargs, status, code, field):
    response = admin.request(method, path.replace(S, str(tenant.store.id)), **kwargs)
    if status == 200:
        assert response.status_code == 200, response.get_json()
        return
    error = assert_error(response, status, code)
    if field is not None:
        assert field in error.get("fields", {}), error


def test_body_too_large_is_413(admin, app):
    app.config["API_MAX_BODY_BYTES"] = 1000
    response = admin.post("/stores", data=json.dumps({"name": "x" * 2000}),
                          content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_unexpected_exception_is_a_bare_500(app, tenant):
    def boom():  # stands in for any bug in a view
        raise RuntimeError("secret internals: postgresql://user:hunter2@db")

    app.add_url_rule(f"{PREFIX}/_boom", "boom", boom)
    response = As(app.test_client(), tenant).get("/_boom")
    error = assert_error(response, 500, "internal_error")
    assert "hunter2" not in response.get_data(as_text=True)
    assert "RuntimeError" not in error["message"]


def test_routing_errors_outside_the_api_are_left_alone(client):
    response = client.get("/not-the-api")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_validation_error_names_nested_connector_fields(admin):
    response = admin.post("/warehouses", json={"name": "W", "connector_id": "reference-wms",
                                               "settings": {"sandbox": "", "surprise": 1},
                                               "credentials": {}})
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {"settings.sandbox", "settings.surprise", "credentials.token"}


def test_every_role_gets_the_envelope_for_forbidden(client, tenant):
    error = assert_error(As(client, tenant, Role.MERCHANT_VIEWER).post("/merchants", json={"name": "x"}), 403)
    assert error["code"] == "forbidden"
