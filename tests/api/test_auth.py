"""Who may call the API: API keys, browser sessions with CSRF, and roles."""

from __future__ import annotations

from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.tenants.models import ApiKey, Role
from tests.api.conftest import PREFIX, As, assert_error
from tests.factories import PASSWORD


def test_no_credentials_is_401_with_challenge(client, tenant):
    response = client.get(f"{PREFIX}/stores")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_malformed_and_revoked_keys_are_401(client, tenant):
    for header in ("Bearer ds_not-a-real-key-at-all-0000000000000", "Bearer ", "Basic abc",
                   "Bearer " + "x" * 5000, "Bearer ds_0123456789\x00abcdefghijklmnopqrstuvwxyz",
                   "Bearer ds_0123456789ééééééééééééééééééééééééé"):
        assert_error(client.get(f"{PREFIX}/stores", headers={"Authorization": header}), 401)
    key = db.session.scalars(db.select(ApiKey)).first()
    key.revoked_at = utcnow()
    db.session.commit()
    owner = next(role for role, user in tenant.users.items() if user.id == key.user_id)
    assert_error(client.get(f"{PREFIX}/stores", headers=tenant.headers(owner)), 401)


def test_deactivated_user_key_is_401(client, tenant):
    tenant.users[Role.PROVIDER_STAFF].is_active = False
    db.session.commit()
    assert_error(client.get(f"{PREFIX}/stores", headers=tenant.headers(Role.PROVIDER_STAFF)), 401)


def test_api_key_use_is_stamped(admin, tenant):
    assert admin.get("/stores").status_code == 200
    key = db.session.scalars(db.select(ApiKey).where(
        ApiKey.user_id == tenant.users[Role.PROVIDER_ADMIN].id)).one()
    assert key.last_used_at is not None


def test_whoami_with_key(admin, tenant):
    body = admin.get("/session").get_json()
    assert body["user"]["email"] == tenant.users[Role.PROVIDER_ADMIN].email
    assert body["via"] == "api_key" and body["csrf_token"] is None
    assert "password" not in str(body)


def test_browser_session_needs_csrf_for_unsafe_methods(client, tenant):
    email = tenant.users[Role.MERCHANT_ADMIN].email
    assert_error(client.post(f"{PREFIX}/session", json={"email": email, "password": "wrong password!"}),
                 401, "invalid_credentials")
    response = client.post(f"{PREFIX}/session", json={"email": email.upper(), "password": PASSWORD})
    assert response.status_code == 201, response.get_json()
    token = response.get_json()["csrf_token"]
    assert PASSWORD not in response.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    assert client.get(f"{PREFIX}/stores").status_code == 200
    store_url = f"{PREFIX}/stores/{tenant.store.id}"
    assert_error(client.patch(store_url, json={"name": "Renamed"}), 403, "csrf_failed")
    assert_error(client.patch(store_url, json={"name": "Renamed"}, headers={"X-CSRF-Token": "nope"}),
                 403, "csrf_failed")
    response = client.patch(store_url, json={"name": "Renamed"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 200 and response.get_json()["name"] == "Renamed"
    assert client.get(f"{PREFIX}/session").get_json()["csrf_token"] == token

    assert client.delete(f"{PREFIX}/session", headers={"X-CSRF-Token": token}).status_code == 204
    assert_error(client.get(f"{PREFIX}/stores"), 401)


def test_password_change_ends_sessions(client, tenant):
    user = tenant.users[Role.PROVIDER_STAFF]
    client.post(f"{PREFIX}/session", json={"email": user.email, "password": PASSWORD})
    assert client.get(f"{PREFIX}/stores").status_code == 200
    user.password_hash = "pbkdf2:sha256:1000$changed$" + "0" * 64
    db.session.commit()
    assert_error(client.get(f"{PREFIX}/stores"), 401)


def test_login_validation(client, tenant):
    error = assert_error(client.post(f"{PREFIX}/session", json={"email": "a@b.test"}), 422,
                         "validation_error")
    assert "password" in error["fields"]


def test_viewer_reads_but_cannot_write(viewer, tenant):
    assert viewer.get(f"/stores/{tenant.store.id}").status_code == 200
    assert viewer.get("/orders").status_code == 200
    assert_error(viewer.patch(f"/stores/{tenant.store.id}", json={"name": "x"}), 403, "forbidden")
    assert_error(viewer.post(f"/stores/{tenant.store.id}/listings",
                             json={"store_sku": "A", "warehouse_sku": "B"}), 403)
    assert_error(viewer.post("/orders/bulk", json={"action": "hold", "ids": [1]}), 403)
    assert viewer.delete("/session").status_code == 204  # signing out is always allowed


def test_merchant_user_cannot_see_another_merchants_store(client, tenant):
    from tests.factories import MerchantFactory, StoreFactory

    neighbour = MerchantFactory(provider_id=tenant.provider.id)
    store = StoreFactory(provider_id=tenant.provider.id, merchant_id=neighbour.id,
                         warehouse_id=tenant.warehouse.id)
    db.session.commit()
    for role in (Role.MERCHANT_ADMIN, Role.MERCHANT_VIEWER):
        user = As(client, tenant, role)
        assert_error(user.get(f"/stores/{store.id}"), 404, "not_found")
        assert store.id not in [s["id"] for s in user.get("/stores").get_json()["items"]]
    assert As(client, tenant, Role.PROVIDER_STAFF).get(f"/stores/{store.id}").status_code == 200


def test_merchant_users_cannot_manage_merchants_or_users(client, tenant):
    for role in (Role.MERCHANT_ADMIN, Role.PROVIDER_STAFF):
        user = As(client, tenant, role)
        assert_error(user.post("/merchants", json={"name": "New"}), 403)
        assert_error(user.patch(f"/merchants/{tenant.merchant.id}", json={"name": "New"}), 403)
        assert_error(user.get("/users"), 403)
        assert_error(user.post("/users", json={"email": "n@x.test", "role": "provider_staff"}), 403)
    merchant_admin = As(client, tenant, Role.MERCHANT_ADMIN)
    assert_error(merchant_admin.post("/warehouses", json={
        "name": "W", "connector_id": "reference-wms", "settings": {"sandbox": "x"}}), 403)
    assert_error(merchant_admin.post("/alerts/1/resolve"), 403)
