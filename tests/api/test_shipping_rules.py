"""Shipping rules: CRUD, one default per store, one rule per method (ignoring case/spacing)."""

from __future__ import annotations

from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem
from tests.api.conftest import assert_error


def test_crud_and_default_rule(merchant_admin, tenant):
    base = f"/stores/{tenant.store.id}/shipping-rules"
    ground = merchant_admin.post(base, json={"store_method": "  Free   Shipping ", "warehouse_code": "GRND"})
    assert ground.status_code == 201, ground.get_json()
    assert ground.get_json()["store_method"] == "Free Shipping"
    assert db.session.scalars(db.select(OutboxItem).where(OutboxItem.kind == "store.rescan_holds")).first()
    error = assert_error(merchant_admin.post(base, json={"store_method": "free shipping", "warehouse_code": "X"}), 409)
    assert "store_method" in error["fields"]

    default = merchant_admin.post(base, json={"is_default": True, "warehouse_code": "STD"})
    assert default.status_code == 201 and default.get_json()["store_method"] == ""
    error = assert_error(merchant_admin.post(base, json={"is_default": True, "warehouse_code": "STD2"}), 409)
    assert "is_default" in error["fields"]
    assert "store_method" in assert_error(merchant_admin.post(base, json={"warehouse_code": "X"}), 422)["fields"]

    items = merchant_admin.get(base).get_json()["items"]
    assert [r["is_default"] for r in items] == [True, False]
    rule_url = f"{base}/{ground.get_json()['id']}"
    changed = merchant_admin.patch(rule_url, json={"warehouse_code": "EXP"})
    assert changed.status_code == 200 and changed.get_json()["warehouse_code"] == "EXP"
    assert_error(merchant_admin.patch(rule_url, json={"is_default": True}), 409)
    assert merchant_admin.delete(rule_url).status_code == 204
    assert_error(merchant_admin.get(rule_url), 404)


def test_rule_validation(admin, tenant):
    base = f"/stores/{tenant.store.id}/shipping-rules"
    error = assert_error(admin.post(base, json={"store_method": "x" * 256, "warehouse_code": ""}), 422)
    assert {"store_method", "warehouse_code"} <= set(error["fields"])
