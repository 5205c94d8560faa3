"""Orders: filters and search, the detail page, actions and bulk actions."""

from __future__ import annotations

from datetime import UTC, datetime

from dropstream.extensions import db
from dropstream.orders.models import Order
from dropstream.orders.statuses import HOLD_EXPLANATIONS, HoldReason, OrderStatus
from tests.api.conftest import As, assert_error
from tests.api.data import populate
from tests.factories import OrderFactory, ShippingRuleFactory
from tests.tenancy import make_tenant


def numbers(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_json()
    return sorted(item["number"] for item in response.get_json()["items"])


def test_list_filters_and_search(admin, tenant):
    data = populate(tenant)
    store = tenant.store.id
    assert numbers(admin.get("/orders")) == [f"R-{store}-1", f"R-{store}-2"]
    assert numbers(admin.get("/orders?status=on_hold")) == [f"R-{store}-2"]
    assert numbers(admin.get("/orders?status=on_hold&status=queued")) == [f"R-{store}-1", f"R-{store}-2"]
    assert numbers(admin.get("/orders?hold_reason=unknown_sku")) == [f"R-{store}-2"]
    assert numbers(admin.get(f"/orders?store_id={store}&q=-2")) == [f"R-{store}-2"]
    assert numbers(admin.get("/orders?q=wh-1")) == [f"R-{store}-1"]  # warehouse SKU
    assert numbers(admin.get("/orders?q=sku-1")) == [f"R-{store}-1", f"R-{store}-2"]  # store SKU
    assert numbers(admin.get("/orders?q=%25")) == []  # LIKE wildcards are literal
    assert numbers(admin.get("/orders?placed_from=2026-11-02")) == []
    assert len(numbers(admin.get("/orders?placed_to=2026-11-01"))) == 2  # the whole day
    assert numbers(admin.get("/orders?placed_to=2026-11-01T11:00:00Z")) == []
    assert len(numbers(admin.get("/orders?created_from=2020-01-01T00:00:00%2B02:00"))) == 2
    item = admin.get("/orders?status=on_hold").get_json()["items"][0]
    assert item["hold_explanation"] == HOLD_EXPLANATIONS[HoldReason.UNKNOWN_SKU]
    assert item["status_explanation"] == OrderStatus.ON_HOLD.explanation
    assert data.ids["order_id"]


def test_detail_explains_the_order(merchant_admin, tenant):
    data = populate(tenant)
    body = merchant_admin.get(f"/orders/{data.ids['order_id']}").get_json()
    assert body["lines"][0]["sku"] == "SKU-1"
    assert body["lines"][0]["warehouse_lines"] == [
        {"warehouse_sku": "WH-1", "per_unit": 1, "quantity": 1, "quantity_shipped": 0}]
    assert body["lines"][0]["unit_price"] == "9.9900"
    assert body["addresses"][0]["role"] == "shipping"
    assert body["shipments"][0]["tracking_number"] == "1Z"
    held = merchant_admin.get(f"/orders/{data.ids['held_order_id']}").get_json()
    assert held["timeline"][0]["explanation"] == HoldReason.UNKNOWN_SKU.explanation
    assert held["hold_detail"] == "lines[0].sku: unknown"


def test_actions(merchant_admin, tenant):
    ShippingRuleFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                        store_id=tenant.store.id, store_method="Ground", match_key="ground",
                        warehouse_code="GRND")
    order = OrderFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                         store_id=tenant.store.id)
    db.session.commit()
    held = merchant_admin.post(f"/orders/{order.id}/hold", json={"note": "Customer called"})
    assert held.status_code == 200, held.get_json()
    assert (held.get_json()["status"], held.get_json()["hold_reason"]) == ("on_hold", "manual")
    actor = "merchant_admin@acme.test"
    assert any(actor in e["message"] or e["detail"].get("actor") == actor
               for e in held.get_json()["timeline"])
    assert_error(merchant_admin.post(f"/orders/{order.id}/hold"), 409, "invalid_transition")
    released = merchant_admin.post(f"/orders/{order.id}/release")
    assert released.status_code == 200 and released.get_json()["status"] != "on_hold"
    cancelled = merchant_admin.post(f"/orders/{order.id}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert_error(merchant_admin.post(f"/orders/{order.id}/cancel"), 409, "invalid_transition")
    assert_error(merchant_admin.post(f"/orders/{order.id}/reprocess"), 409, "invalid_transition")


def test_bulk_reports_per_id_and_never_touches_other_tenants(client, tenant):
    mine = [OrderFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                         store_id=tenant.store.id) for _ in range(2)]
    cancelled = OrderFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                             store_id=tenant.store.id, status=OrderStatus.CANCELLED)
    other = make_tenant("other")
    theirs = OrderFactory(provider_id=other.provider.id, merchant_id=other.merchant.id,
                          store_id=other.store.id)
    db.session.commit()
    ids = [mine[0].id, theirs.id, mine[1].id, cancelled.id, 999999, mine[0].id]
    response = As(client, tenant).post("/orders/bulk", json={"action": "hold", "ids": ids, "note": "stop"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    outcomes = {r["id"]: r["outcome"] for r in body["results"]}
    assert outcomes == {mine[0].id: "ok", theirs.id: "not_found", mine[1].id: "ok",
                        cancelled.id: "invalid_transition", 999999: "not_found"}
    assert len(body["results"]) == 5 and body["counts"] == {"ok": 2, "not_found": 2, "invalid_transition": 1}
    db.session.expire_all()
    assert db.session.get(Order, theirs.id).status is OrderStatus.QUEUED
    assert db.session.get(Order, mine[1].id).status is OrderStatus.ON_HOLD


def test_order_dates_are_utc(admin, tenant):
    OrderFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                 store_id=tenant.store.id, placed_at=datetime(2026, 11, 1, 23, 30, tzinfo=UTC))
    db.session.commit()
    assert numbers(admin.get("/orders?placed_from=2026-11-02T00:00:00%2B01:00"))  # 23:00 UTC
    assert not numbers(admin.get("/orders?placed_from=2026-11-02"))
