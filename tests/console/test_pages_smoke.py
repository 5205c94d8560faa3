"""Every console page renders for a provider admin with a populated tenant."""

from __future__ import annotations

from tests.api.data import populate
from tests.console.conftest import text


def test_every_page_renders(admin, tenant):
    data = populate(tenant)
    store = data.ids["store_id"]
    for path in ["/console/", "/console/orders", f"/console/orders/{data.ids['order_id']}",
                 "/console/stores", f"/console/stores/{store}", "/console/stores/new",
                 f"/console/stores/{store}/listings", f"/console/stores/{store}/shipping-rules",
                 f"/console/stores/{store}/inventory", "/console/alerts", "/console/queues",
                 "/console/users", "/console/warehouses", "/console/account",
                 f"/console/stores/{store}/channels", f"/console/stores/{store}/setup/6/orders"] + \
            [f"/console/stores/{store}/setup/{step}" for step in range(1, 7)]:
        response = admin.get(path)
        assert response.status_code == 200, (path, text(response)[:2000])
