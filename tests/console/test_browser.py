"""The console in real headless Chromium (Playwright), against the app served over HTTP with its
background work running: sign-in, the whole set-up wizard through to a shipped order, fixing a
hold by adding a listing, a bulk reprocess, and a merchant kept out of another's pages.

The stores are on the reference connectors for now; the BigCommerce sandbox replaces the
reference store once its connector lands. Screenshots of the main pages are kept in
test-artifacts/console/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dropstream.extensions import db
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.stores.credentials import write_credentials
from dropstream.tenants.models import Role
from dropstream.testing.reference import store_sandbox, warehouse_sandbox
from tests.console.browser import chromium, live_server, pipeline, require_browser, shot, wait_for
from tests.factories import PASSWORD, MerchantFactory, OrderFactory, ProviderFactory, UserFactory, WarehouseFactory
from tests.pipeline.conftest import wire
from tests.tenancy import make_tenant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    with chromium() as running:
        yield running


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Any, base: str, email: str) -> None:
    page.goto(base + "/console/")
    assert "/console/sign-in" in page.url  # signed out: sent to sign in first
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()


def release_database() -> None:
    """End the test thread's transaction: on SQLite every transaction takes the write lock
    (BEGIN IMMEDIATE), and the server and workers need it. Read what you need first."""
    db.session.rollback()


def order_status(order_id: int) -> OrderStatus:
    db.session.expire_all()
    status = db.session.get(Order, order_id).status
    db.session.rollback()  # no transaction left open beside the server's (SQLite locks)
    return status


def test_wizard_takes_a_new_store_to_a_shipped_order(app, page):
    provider = ProviderFactory(name="Shipwell 3PL", slug="shipwell")
    MerchantFactory(provider_id=provider.id, name="Acme Goods")
    admin = UserFactory(provider_id=provider.id, email="ops@shipwell.test", role=Role.PROVIDER_ADMIN)
    warehouse = WarehouseFactory(provider_id=provider.id, name="Main WMS", settings={"sandbox": "wiz"})
    write_credentials(warehouse, {"token": "wms-token"})
    email = admin.email
    db.session.commit()
    shop, wms = store_sandbox("wiz"), warehouse_sandbox("wiz")
    shop.add_product("TEE-S", tracked=True)
    shop.add_product("MUG", tracked=False)
    wms.known_skus = {"TEE-WH", "MUG"}

    with live_server(app) as base, pipeline(app):
        sign_in(page, base, email)
        shot(page, "dashboard-empty")

        # 1 · Get API credentials: a wrong token is refused in the connector's own words.
        page.get_by_role("link", name="Stores").click()
        page.get_by_role("link", name="Connect a store").click()
        page.get_by_label("Merchant").select_option(label="Acme Goods")
        page.get_by_label("Name").fill("Acme US shop")
        page.get_by_label("Sandbox").fill("wiz")
        page.get_by_label("Token").fill("not-the-token")
        page.get_by_label("Ships from").select_option(label="Main WMS")
        shot(page, "wizard-1-new-store")
        page.get_by_role("button", name="Save and verify").click()
        page.get_by_text("token rejected (401)").wait_for()
        page.get_by_label("Token").fill("store-token")
        page.get_by_role("button", name="Save and verify").click()
        page.get_by_text("The store accepted the token.").wait_for()
        shot(page, "wizard-1-verified")

        # 2 · Enable API access: the monitored status comes from the store's own list.
        page.get_by_role("link", name="Next: enable API access").click()
        page.get_by_label("Import orders when they reach").select_option(label="Awaiting Fulfillment")
        page.get_by_role("button", name="Authorize and save").click()
        page.locator("h1 .badge", has_text="active").wait_for()

        # 3 · Configure SKUs: the store's TEE-S is TEE-WH at the warehouse.
        page.get_by_role("link", name="Next: SKUs").click()
        page.get_by_label("Store SKU").fill("TEE-S")
        page.get_by_label("Warehouse SKU").fill("TEE-WH")
        page.get_by_role("button", name="Add listing").click()
        page.get_by_text("Listing TEE-S added").wait_for()

        # 4 · Gather shipping methods: mapped to a code from the warehouse's own list.
        page.get_by_role("link", name="Next: shipping methods").click()
        page.get_by_label("Method (as the store names it)").fill("Ground")
        page.get_by_label("Ship code").select_option("GRND")
        page.get_by_role("button", name="Save rule").click()
        page.get_by_text("Shipping rule saved").wait_for()
        shot(page, "wizard-4-shipping")

        # 5 · Inventory tracking: the product with tracking off is named.
        page.get_by_role("link", name="Next: inventory tracking").click()
        page.get_by_text("Tracking off: MUG").wait_for()
        shot(page, "wizard-5-tracking")

        # 6 · Review order status: a new order shows up by itself and reaches the warehouse.
        page.get_by_role("link", name="Next: review order status").click()
        shop.create_order([{"sku": "TEE-S", "quantity": 2, "name": "T-shirt"}], shipping_method="Ground")
        page.get_by_role("button", name="Look for new orders now").click()
        page.locator("#first-orders .badge", has_text="at warehouse").wait_for(timeout=30_000)
        shot(page, "wizard-6-first-order")
        assert wms.orders and wms.orders[0]["lines"][0]["sku"] == "TEE-WH"

        # The warehouse ships; the shipments channel posts it to the store.
        wms.ship(wms.orders[0]["reference"])
        page.locator("#first-orders a").first.click()
        order_url = page.url
        store_id = db.session.scalar(db.select(Order.store_id))
        db.session.rollback()
        page.goto(f"{base}/console/stores/{store_id}")
        page.locator("tr", has_text="Shipments back").get_by_role("button", name="Run now").click()
        shot(page, "store-channels")

        def shipped() -> bool:
            page.goto(order_url)
            return "Every line shipped" in page.inner_text("main")

        wait_for(shipped, timeout=30)
        assert page.get_by_role("cell", name="1Z0000000000000001").count() == 1  # the shipments table
        shot(page, "order-shipped")
        page.get_by_role("link", name="Dashboard").click()
        shot(page, "dashboard")
    assert shop.shipments and next(iter(shop.shipments.values()))["tracking"] == "1Z0000000000000001"


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
