"""The console in real headless Chromium (Playwright), against the app served over HTTP with its
background work running: fixing a hold by adding a listing, a bulk reprocess, and a merchant kept
out of another's pages. These stores are on the in-memory reference connectors; the set-up
wizard runs on the BigCommerce and WMS sandboxes in test_wizard_bigcommerce.py. Screenshots of
the main pages are kept in test-artifacts/console/.
"""

from __future__ import annotations

import pytest

from dropstream.extensions import db
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.tenants.models import Role
from tests.conftest import live_server
from tests.console.browser import pipeline, shot, sign_in, wait_for
from tests.factories import OrderFactory
from tests.pipeline.conftest import wire
from tests.tenancy import make_tenant

pytestmark = pytest.mark.slow


def release_database() -> None:
    """End the test thread's transaction: on SQLite every transaction takes the write lock
    (BEGIN IMMEDIATE), and the server and workers need it. Read what you need first."""
    db.session.rollback()


def order_status(order_id: int) -> OrderStatus:
    db.session.expire_all()
    status = db.session.get(Order, order_id).status
    db.session.rollback()  # no transaction left open beside the server's (SQLite locks)
    return status


def test_adding_a_listing_releases_a_held_order(app, page):
    loop = wire("hold")
    loop.wms.known_skus = {"WH-MUG"}
    external = loop.shop.create_order([{"sku": "MUG-S", "quantity": 1}])
    loop.poll()
    order = loop.order(external)
    assert order.status is OrderStatus.ON_HOLD and order.hold_reason.value == "unknown_sku"
    order_id, number = order.id, order.number
    staff = loop.tenant.users[Role.PROVIDER_STAFF].email
    release_database()

    with live_server(app) as base, pipeline(app):
        sign_in(page, base, staff)
        page.get_by_role("link", name="unknown sku").click()
        page.get_by_role("link", name=number).click()
        page.get_by_text("The warehouse does not know a SKU").first.wait_for()
        shot(page, "order-held")
        page.get_by_role("link", name="listings").click()
        page.get_by_label("Store SKU").fill("MUG-S")
        page.get_by_label("Warehouse SKU").fill("WH-MUG")
        page.get_by_role("button", name="Add listing").click()
        page.get_by_text("orders held for it are released by themselves").wait_for()
        wait_for(lambda: order_status(order_id) is OrderStatus.AT_WAREHOUSE, timeout=30)
        page.goto(f"{base}/console/orders/{order_id}")
        page.get_by_text("Released automatically").wait_for()
        shot(page, "order-released")
    assert loop.wms.orders[0]["lines"][0]["sku"] == "WH-MUG"


def test_bulk_reprocess_sends_errored_orders_on(app, page):
    loop = wire("bulk")
    tenant = loop.tenant
    owned = {"provider_id": tenant.provider.id, "merchant_id": tenant.merchant.id, "store_id": tenant.store.id}
    email = tenant.users[Role.PROVIDER_ADMIN].email
    errored = [OrderFactory(**owned, status=OrderStatus.ERROR, error_code="rejected",
                            error_message="reference WMS: order refused (try again later)").id
               for _ in range(3)]
    other = OrderFactory(**owned, status=OrderStatus.ERROR, error_code="rejected").id
    db.session.commit()
    release_database()

    with live_server(app) as base, pipeline(app):
        sign_in(page, base, email)
        page.goto(f"{base}/console/orders?status=error")
        for order_id in errored:
            page.locator(f"input[name=ids][value='{order_id}']").check()
        shot(page, "orders-bulk")
        page.get_by_label("Action for the ticked orders").select_option("reprocess")
        page.get_by_role("button", name="Apply to ticked orders").click()
        page.get_by_text("Reprocess on 3 orders: 3 done").wait_for()
        wait_for(lambda: all(order_status(i) is OrderStatus.AT_WAREHOUSE for i in errored), timeout=30)
    assert order_status(other) is OrderStatus.ERROR  # not ticked, not touched
    assert len(loop.wms.orders) == 3


def test_a_merchant_cannot_open_another_merchants_pages(app, page):
    from tests.api.data import populate

    victim = populate(make_tenant("victim", sandbox="victim"))
    intruder = make_tenant("intruder", sandbox="intruder")
    email = intruder.users[Role.MERCHANT_ADMIN].email
    release_database()
    with live_server(app) as base:
        sign_in(page, base, email)
        for path in (f"/console/orders/{victim.ids['order_id']}", f"/console/stores/{victim.ids['store_id']}",
                     f"/console/stores/{victim.ids['store_id']}/setup/1",
                     f"/console/stores/{victim.ids['store_id']}/listings"):
            response = page.goto(base + path)
            assert response.status == 404, path
            assert "victim" not in page.content().lower()
        shot(page, "not-found-for-another-merchant")
        page.goto(base + "/console/orders")
        assert "victim" not in page.content().lower()
        assert page.get_by_role("link", name="People").count() == 0  # not a provider admin
