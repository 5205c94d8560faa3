"""Shipments, stock levels and inventory items, alerts."""

from __future__ import annotations

from tests.api.conftest import assert_error
from tests.api.data import populate


def test_shipments(merchant_admin, tenant):
    data = populate(tenant)
    page = merchant_admin.get(f"/shipments?order_id={data.ids['order_id']}").get_json()
    assert [s["id"] for s in page["items"]] == [data.ids["shipment_id"]]
    assert merchant_admin.get("/shipments?state=posted").get_json()["items"] == []
    shipment = merchant_admin.get(f"/shipments/{data.ids['shipment_id']}").get_json()
    assert shipment["lines"] == [{"line_reference": "1", "sku": "WH-1", "quantity": 1}]
    assert_error(merchant_admin.get("/shipments?state=lost"), 422)


def test_stock_levels_and_inventory_items(viewer, tenant):
    populate(tenant)
    base = f"/stores/{tenant.store.id}"
    levels = viewer.get(f"{base}/stock-levels?sku=wh").get_json()["items"]
    assert [(l["warehouse_sku"], l["quantity"]) for l in levels] == [("WH-1", 7)]
    assert viewer.get(f"{base}/stock-levels?sku=nothing").get_json()["items"] == []
    items = viewer.get(f"{base}/inventory-items?sku=SKU").get_json()["items"]
    assert [(i["store_sku"], i["available"], i["state"]) for i in items] == [("SKU-1", 7, "pending")]
    assert viewer.get(f"{base}/inventory-items?state=skipped").get_json()["items"] == []


def test_alerts_list_and_resolve(staff, merchant_admin, tenant):
    data = populate(tenant)
    alert_id = data.ids["alert_id"]
    assert [a["id"] for a in merchant_admin.get("/alerts?state=open").get_json()["items"]] == [alert_id]
    assert_error(merchant_admin.post(f"/alerts/{alert_id}/resolve"), 403)
    resolved = staff.post(f"/alerts/{alert_id}/resolve")
    assert resolved.status_code == 200 and resolved.get_json()["open"] is False
    assert staff.post(f"/alerts/{alert_id}/resolve").status_code == 200  # idempotent
    assert staff.get("/alerts?state=open").get_json()["items"] == []
    assert [a["id"] for a in staff.get("/alerts?state=resolved").get_json()["items"]] == [alert_id]
    assert staff.get(f"/alerts/{alert_id}").get_json()["resolved_at"]
