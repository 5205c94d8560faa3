"""The set-up wizard as a merchant's fulfillment provider goes through it, in real headless
Chromium, on the real connectors over real HTTP: a store of the BigCommerce sandbox and the
generic WMS sandbox, with DropStream served on a free port (its PUBLIC_BASE_URL, where the
store's webhooks arrive) and its background work running.

The seed article's six steps, in order: the API account (a wrong store hash and a wrong token are
refused in the connector's words next to the field, and nothing typed is lost), the monitored
status from the store's own list, products without SKUs and a listing, the store's shipping
methods mapped to a code of the warehouse's catalogue, tracking-off items, and a first order
placed in the store arriving live (by webhook), forwarded, shipped by the warehouse (fetched at
once with the shipments channel's "Run now") and shown Shipped with its tracking number here and
in the store. Screenshots go to test-artifacts/console/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dropstream.extensions import db
from dropstream.stores import services
from dropstream.tenants.models import Role
from dropstream.tenants.scope import TenantScope
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import new_store
from dropstream_wms_generic.sandbox import WmsSandbox
from tests.conftest import running_app
from tests.conftest import live_server
from tests.console.browser import pipeline, shot, sign_in
from tests.factories import MerchantFactory, ProviderFactory, UserFactory

pytestmark = pytest.mark.slow

ACCOUNT = "ACME"
SHIPPED = 2  # BigCommerce's "Shipped"


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Any]:
    """DropStream as installed: the connectors come from the plugins' entry points."""
    with running_app(app_config, load_entry_points=True) as app:
        yield app


@pytest.fixture
def bigcommerce() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(webhook_retry_scale=0.001) as running:
        yield running


@pytest.fixture
def wms() -> Iterator[WmsSandbox]:
    """A WMS that refuses SKUs it does not stock, and ships only when told to."""
    with WmsSandbox(auto=False, partial_ratio=0, strict_skus=True) as running:
        running.set_stock(ACCOUNT, {"TEE-WH": 40, "MUG": 5})
        yield running


def admin_api(sandbox: BigCommerceSandbox, method: str, path: str, **body: Any) -> Any:
    """The sandbox's JSON admin API (``/_sandbox``), as the store's owner acts in its admin."""
    with requests.request(method, f"{sandbox.base_url}/_sandbox{path}", json=body or None,
                          timeout=10) as response:
        assert response.ok, response.text
        return response.json() if response.content else None


def test_wizard_takes_a_bigcommerce_store_to_a_shipped_order(app, page, bigcommerce, wms):
    # The store as its owner left it: a renamed status, a product without a SKU, one with
    # tracking off, and two shipping methods its shoppers chose on earlier (completed) orders.
    shop = new_store(bigcommerce)
    admin_api(bigcommerce, "PUT", f"/stores/{shop.hash}/order_statuses/11",
              custom_label="Ready to pack")
    for name, sku, tracking in (("T-shirt", "TEE-S", "product"), ("Gift card", None, "product"),
                                ("Mug", "MUG", "none")):
        admin_api(bigcommerce, "POST", f"/stores/{shop.hash}/products", name=name, sku=sku,
                  inventory_tracking=tracking, inventory_level=10)
    for method in ("Free Shipping", "Next Day Air"):
        admin_api(bigcommerce, "POST", f"/stores/{shop.hash}/orders", status_id=10,
                  lines=[{"sku": "MUG", "quantity": 1}],
                  shipping_addresses=[{"shipping_method": method}])

    provider = ProviderFactory(name="Shipwell 3PL", slug="shipwell")
    MerchantFactory(provider_id=provider.id, name="Acme Goods")
    email = UserFactory(provider_id=provider.id, email="ops@shipwell.test",
                        role=Role.PROVIDER_ADMIN).email
    services.create_warehouse(db.session, TenantScope(provider.id), {
        "name": "Main WMS", "connector_id": "wms_generic", "settings": {"base_url": wms.url},
        "credentials": {"token": "wms-token"}})
    db.session.commit()  # nothing held open beside the server's transactions (SQLite locks)

    with live_server(app) as base, pipeline(app):
        sign_in(page, base, email)

        # 1 · Get API credentials: the store-level API account, first with a mistyped hash.
        page.get_by_role("link", name="Stores").click()
        page.get_by_role("link", name="Connect a store").click()
        page.get_by_label("Merchant").select_option(label="Acme Goods")
        page.get_by_label(re.compile(r"^Name")).fill("Acme US shop")
        page.get_by_label("Api base url").fill(bigcommerce.api_base_url)
        page.get_by_label("Store hash").fill("wronghash1")
        page.get_by_label("Client id").fill(shop.credentials["client_id"])
        page.get_by_label("Client secret").fill(shop.credentials["client_secret"])
        page.get_by_label("Access token").fill(shop.token)
        page.get_by_label("Ships from").select_option(label="Main WMS")
        page.get_by_label("Customer code").fill(ACCOUNT)
        shot(page, "wizard-1-new-store")
        page.get_by_role("button", name="Save and verify").click()
        hash_field = page.locator("div", has=page.get_by_label("Store hash")).last
        hash_field.get_by_text("the store hash is wrong").wait_for()
        shot(page, "wizard-1-wrong-hash")
        assert page.locator(".stepper a.done").count() == 0  # nothing known about the store yet
        # Nothing typed is lost: the store was saved as typed, the secrets are kept (not shown).
        assert page.get_by_label("Api base url").input_value() == bigcommerce.api_base_url
        assert page.get_by_label("Customer code").input_value() == ACCOUNT
        assert page.get_by_label("Store id at the platform").input_value() == "wronghash1"
        assert page.get_by_label("Access token").get_attribute("placeholder").startswith("stored")

        # The right hash, now with a token that is not the account's.
        page.get_by_label("Store hash").fill(shop.hash)
        page.get_by_label("Access token").fill("not-the-token")
        page.get_by_role("button", name="Save and verify").click()
        token_field = page.locator("div", has=page.get_by_label("Access token")).last
        token_field.get_by_text("BigCommerce refused the access token (401)").wait_for()
        assert hash_field.locator(".error-text").count() == 0
        assert page.get_by_label("Store id at the platform").input_value() == shop.hash
        page.get_by_label("Access token").fill(shop.token)
        page.get_by_role("button", name="Save and verify").click()
        page.get_by_text("Connected to Sandbox store").wait_for()
        assert page.locator(".error-text").count() == 0
        shot(page, "wizard-1-verified")

        # 2 · Enable API access: the monitored status from the store's own list.
        page.get_by_role("link", name="Next: enable API access").click()
        status = page.get_by_label("Import orders when they reach")
        assert "Ready to pack (Awaiting Fulfillment)" in status.inner_text()  # the store's label
        status.select_option(label="Ready to pack (Awaiting Fulfillment)")
        page.get_by_role("button", name="Authorize and save").click()
        page.locator("h1 .badge", has_text="active").wait_for()
        shot(page, "wizard-2-status")

        # 3 · Configure SKUs: the product without one is named; the store's TEE-S is the
        # warehouse's TEE-WH.
        page.get_by_role("link", name="Next: SKUs").click()
        page.get_by_text("Products without SKUs: Gift card").wait_for()
        page.get_by_label("Store SKU").fill("TEE-S")
        page.get_by_label("Warehouse SKU").fill("TEE-WH")
        page.get_by_role("button", name="Add listing").click()
        page.get_by_text("Listing TEE-S added").wait_for()
        shot(page, "wizard-3-skus")

        # 4 · Gather shipping methods: the store's own, each mapped to a code from the WMS's
        # catalogue.
        page.get_by_role("link", name="Next: shipping methods").click()
        free = page.get_by_label("Ship code for Free Shipping")
        assert "USPS_GROUND — USPS Ground Advantage" in free.inner_text()
        assert page.get_by_label("Ship code for Next Day Air").count() == 1
        free.select_option("USPS_GROUND")
        page.locator("tr", has=free).get_by_role("button", name="Map").click()
        page.get_by_text("Shipping rule saved").wait_for()
        shot(page, "wizard-4-shipping")

        # 5 · Inventory tracking: the product with tracking off is named.
        page.get_by_role("link", name="Next: inventory tracking").click()
        page.get_by_text("Tracking off: Mug (MUG)").wait_for()
        shot(page, "wizard-5-tracking")

        # 6 · Review order status: an order placed in the store arrives by itself (its webhook)
        # and goes on to the warehouse.
        page.get_by_role("link", name="Next: review order status").click()
        order_id = admin_api(bigcommerce, "POST", f"/stores/{shop.hash}/orders",
                             lines=[{"sku": "TEE-S", "quantity": 2}])["id"]
        page.locator("#first-orders .badge", has_text="at warehouse").wait_for(timeout=30_000)
        shot(page, "wizard-6-first-order")
        assert any(d["payload"]["data"]["id"] == order_id and d["state"] == "delivered"
                   and d["destination"].startswith(base)
                   for d in bigcommerce.webhook_deliveries(shop.hash))  # it came by webhook
        [sent] = wms.orders(account=ACCOUNT)
        assert [line["sku"] for line in sent["lines"]] == ["TEE-WH"]
        assert sent["ship_method"] == "USPS_GROUND"

        # The warehouse ships; the operator has the shipments fetched now rather than at the
        # next poll, and the review page follows the order to Shipped.
        tracking = wms.ship(sent["reference"])["tracking_number"]
        review = page.url
        page.get_by_role("link", name="← Acme US shop").click()
        page.locator("tr", has_text="Shipments back").get_by_role("button", name="Run now").click()
        page.get_by_text("Shipments back: queued").wait_for()
        shot(page, "store-channels")
        page.goto(review)
        page.locator("#first-orders .badge", has_text="shipped").wait_for(timeout=30_000)
        page.locator("#first-orders a").first.click()
        page.get_by_text("Every line shipped").wait_for()
        assert page.get_by_role("cell", name=tracking).count() == 1
        shot(page, "order-shipped")

    in_store = admin_api(bigcommerce, "GET", f"/stores/{shop.hash}/orders/{order_id}")
    assert in_store["status_id"] == SHIPPED
    assert [s["tracking_number"] for s in in_store["shipments"]] == [tracking]
