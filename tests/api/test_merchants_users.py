"""Merchants and users: provider admins manage them; merchant users see only their own."""

from __future__ import annotations

from tests.api.conftest import assert_error
from tests.factories import PASSWORD
from tests.tenancy import make_tenant


def test_merchants(admin, merchant_admin, tenant):
    created = admin.post("/merchants", json={"name": "Beta goods", "contact_email": "ops@beta.test"})
    assert created.status_code == 201, created.get_json()
    merchant_id = created.get_json()["id"]
    assert len(admin.get("/merchants").get_json()["items"]) == 2
    changed = admin.patch(f"/merchants/{merchant_id}", json={"name": "Beta"})
    assert changed.get_json()["name"] == "Beta"
    # a merchant user sees only its own merchant; others are 404, never 403
    assert [m["id"] for m in merchant_admin.get("/merchants").get_json()["items"]] == [tenant.merchant.id]
    assert_error(merchant_admin.get(f"/merchants/{merchant_id}"), 404)
    assert_error(admin.post("/merchants", json={"name": ""}), 422)


def test_users(admin, client, tenant):
    other = make_tenant("other")
    created = admin.post("/users", json={"email": "New.Person@Acme.test", "role": "merchant_viewer",
                                         "merchant_id": tenant.merchant.id, "password": PASSWORD})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["email"] == "new.person@acme.test" and "password" not in body
    assert PASSWORD not in created.get_data(as_text=True)
    assert "password_hash" not in created.get_data(as_text=True)
    login = client.post("/api/v1/session", json={"email": "new.person@acme.test", "password": PASSWORD})
    assert login.status_code == 201
    assert_error(admin.post("/users", json={"email": "x@acme.test", "role": "merchant_admin"}), 422)
    error = assert_error(admin.post("/users", json={"email": "y@acme.test", "role": "merchant_admin",
                                                    "merchant_id": other.merchant.id}), 422)
    assert error["fields"] == {"merchant_id": ["No such merchant."]}
    assert_error(admin.post("/users", json={"email": "new.person@acme.test", "role": "provider_staff"}), 409)
    assert_error(admin.post("/users", json={"email": "z@acme.test", "role": "provider_staff",
                                            "password": "short"}), 422)
    emails = [u["email"] for u in admin.get("/users?role=merchant_viewer").get_json()["items"]]
    assert sorted(emails) == ["merchant_viewer@acme.test", "new.person@acme.test"]
    assert admin.get(f"/users/{body['id']}").status_code == 200
    assert_error(admin.get(f"/users/{other.users[next(iter(other.users))].id}"), 404)
    assert_error(admin.post("/users", json={"email": "u@other.test", "role": "provider_staff",
                                            "merchant_id": tenant.merchant.id}), 422)


def test_an_email_taken_at_another_provider_is_a_conflict_not_a_crash(admin, tenant):
    make_tenant("other")
    assert_error(admin.post("/users", json={"email": "provider_admin@other.test",
                                            "role": "provider_staff"}), 409, "conflict")
