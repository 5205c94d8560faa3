"""Forms refuse bad input with the message next to the field and keep what was typed; good
input goes through the same services as the API."""

from __future__ import annotations

from sqlalchemy import select

from dropstream.catalog.models import Listing, ShippingRule
from dropstream.extensions import db
from dropstream.stores.models import Store, StoreState
from dropstream.stores.credentials import read_credentials
from dropstream.tenants.models import Role
from tests.console.conftest import text


def field_error(page: str, name: str, message: str) -> bool:
    """``message`` appears inside the block of the input named ``name`` (next to the field)."""
    start = page.find(f'name="{name}"')
    if start < 0:
        return False
    block_end = page.find("</div>", page.find('class="error-text"', start))
    return message in page[start:block_end + 6] and 'class="error-text"' in page[start:block_end + 6]


def test_new_store_form_names_each_bad_field_and_keeps_the_rest(admin, tenant):
    response = admin.post("/console/stores/new", {
        "connector_id": "reference-store", "merchant_id": str(tenant.merchant.id), "name": "",
        "external_id": "typed-hash", "settings.monitored_status": "custom_ready",
        "credentials.token": "s3cret-token-typed"})
    assert response.status_code == 422
    page = text(response)
    assert field_error(page, "name", "Required.")
    assert field_error(page, "settings.sandbox", "Missing data for required field.")
    assert 'value="typed-hash"' in page and 'value="custom_ready"' in page  # kept
    assert "s3cret-token-typed" not in page  # a secret is never sent back
    assert db.session.query(Store).count() == 1  # only the tenant's own store


def test_new_store_is_created_verified_and_activated(admin, tenant):
    from dropstream.stores.credentials import write_credentials

    write_credentials(tenant.warehouse, {"token": "wms-token"})
    db.session.commit()
    response = admin.post("/console/stores/new", {
        "connector_id": "reference-store", "merchant_id": str(tenant.merchant.id),
        "name": "Fresh shop", "settings.sandbox": "fresh", "credentials.token": "store-token",
        "warehouse_id": str(tenant.warehouse.id)})
    assert response.status_code == 302
    store = db.session.query(Store).filter_by(name="Fresh shop").one()
    assert read_credentials(store) == {"token": "store-token"}
    page = text(admin.get(response.headers["Location"]))
    assert "The store accepted the token." in page
    db.session.refresh(store)
    assert store.state is StoreState.ACTIVE  # every required check passed


def test_a_merchant_cannot_link_a_warehouse_but_can_connect_its_store(client, tenant):
    from tests.console.conftest import signed_in

    console = signed_in(client, tenant, Role.MERCHANT_ADMIN)
    page = text(console.get("/console/stores/new"))
    assert 'name="warehouse_id"' not in page and 'name="merchant_id"' not in page
    response = console.post("/console/stores/new", {
        "connector_id": "reference-store", "name": "My shop", "settings.sandbox": "mine",
        "credentials.token": "wrong", "warehouse_id": str(tenant.warehouse.id)})
    assert response.status_code == 302
    store = db.session.query(Store).filter_by(name="My shop").one()
    assert store.warehouse_id is None and store.merchant_id == tenant.merchant.id
    page = text(console.get(response.headers["Location"]))
    assert "token rejected" in page  # the connector's own words
    assert "This step is all you need to do" in page


def test_listing_form_errors_sit_next_to_the_field(admin, tenant):
    path = f"/console/stores/{tenant.store.id}/listings"
    response = admin.post(path, {"new.store_sku": "TEE", "new.warehouse_sku": "TEE-WH",
                                 "new.components": "MUG, 2"})
    assert response.status_code == 422
    page = text(response)
    assert field_error(page, "new.components", "Not allowed together with warehouse_sku.")
    assert 'value="TEE-WH"' in page and "MUG, 2" in page
    response = admin.post(path, {"new.store_sku": "KIT", "new.components": "MUG, two"})
    assert field_error(text(response), "new.components", "write SKU, quantity")
    response = admin.post(path, {"new.store_sku": "KIT", "new.components": "MUG, 2\nTEE, 1"})
    assert response.status_code == 302
    listing = db.session.query(Listing).filter_by(store_sku="KIT").one()
    assert [(c.warehouse_sku, c.quantity) for c in listing.components] == [("MUG", 2), ("TEE", 1)]
    response = admin.post(path, {"new.store_sku": "KIT", "new.warehouse_sku": "X"})
    assert field_error(text(response), "new.store_sku", "Already listed.")


def test_csv_import_reports_bad_rows_and_imports_nothing(admin, tenant):
    from io import BytesIO

    path = f"/console/stores/{tenant.store.id}/listings/import"
    bad = b"store_sku,warehouse_sku,component_sku,component_quantity\nA,A-WH,,\nB,,B-1,zero\n"
    response = admin.post(path, {"file": (BytesIO(bad), "listings.csv")},
                          content_type="multipart/form-data")
    assert response.status_code == 422
    assert "row 3.component_quantity" in text(response)
    assert db.session.query(Listing).count() == 0
    good = b"store_sku,warehouse_sku,component_sku,component_quantity\nA,A-WH,,\n"
    response = admin.post(path, {"file": (BytesIO(good), "listings.csv")},
                          content_type="multipart/form-data")
    assert response.status_code == 302
    exported = admin.get(f"/console/stores/{tenant.store.id}/listings.csv").get_data(as_text=True)
    assert "A,A-WH" in exported


def test_shipping_rule_needs_a_code_and_maps_a_flagged_method(admin, tenant):
    from tests.factories import OrderFactory

    OrderFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id, store_id=tenant.store.id)
    db.session.commit()
    step = f"/console/stores/{tenant.store.id}/setup/4"
    page = text(admin.get(step))
    assert "Ground" in page and "badge b-warn\">unmapped" in page  # the method its orders use, flagged
    response = admin.post(f"/console/stores/{tenant.store.id}/shipping-rules", {
        "prefix": "m1.", "m1.store_method": "Ground", "m1.warehouse_code": "", "back": step})
    assert response.status_code == 422
    assert field_error(text(response), "m1.warehouse_code", "Choose the warehouse")
    response = admin.post(f"/console/stores/{tenant.store.id}/shipping-rules", {
        "prefix": "m1.", "m1.store_method": "Ground", "m1.warehouse_code": "GRND", "back": step})
    assert response.status_code == 302 and response.headers["Location"] == step
    assert db.session.query(ShippingRule).one().warehouse_code == "GRND"
    assert "badge b-warn\">unmapped" not in text(admin.get(step))


def test_order_filters_reject_unknown_values_next_to_the_filter(admin, tenant):
    response = admin.get("/console/orders?status=lost&from=yesterday&q=R1")
    assert response.status_code == 422
    page = text(response)
    assert "Unknown status: lost" in page and "Use a date like 2026-11-30." in page
    assert 'value="yesterday"' in page and 'value="R1"' in page


def test_a_connector_checkbox_setting_can_be_switched_off_as_well_as_on(app):
    """A browser posts nothing for an unticked box: the hidden "false" before it is what
    reaches the connector's schema, so a stored true can be turned off."""
    import re

    from flask import render_template_string
    from marshmallow import Schema, fields

    from dropstream.console.forms import Form, nested, schema_fields

    class Settings(Schema):
        split_shipments = fields.Boolean(load_default=True)

    [spec] = schema_fields(Settings, "settings")
    with app.test_request_context("/"):
        html = render_template_string('{% from "console/macros.html" import field %}{{ field(spec, form) }}',
                                      spec=spec, form=Form(values={"settings.split_shipments": "true"}))
    inputs = re.findall(r'<input type="(\w+)" name="settings.split_shipments" value="(\w+)"', html)
    assert inputs == [("hidden", "false"), ("checkbox", "true")] and "checked" in html

    def posted(*pairs: tuple[str, str]) -> dict:
        body = "&".join(f"{k}={v}" for k, v in pairs)
        with app.test_request_context("/", method="POST", data=body,
                                      content_type="application/x-www-form-urlencoded"):
            return Settings().load(nested("settings", Settings))

    assert posted(("settings.split_shipments", "false")) == {"split_shipments": False}  # unticked
    assert posted(("settings.split_shipments", "false"), ("settings.split_shipments", "true")) == {
        "split_shipments": True}  # ticked


def test_new_warehouse_credentials_entered_in_the_console_end_the_refusal(admin, tenant):
    """The alert of a refused warehouse says to enter new credentials: its page shows the
    refusal and takes them, and the work that waited for them is due at once."""
    from datetime import timedelta

    from dropstream.alerts.services import raise_alert
    from dropstream.db import utcnow
    from dropstream.jobs.models import OutboxItem
    from dropstream.orders.statuses import OrderStatus
    from tests.factories import OrderFactory

    warehouse = tenant.warehouse
    warehouse.last_error = "reference WMS: token rejected (401)"
    raise_alert(db.session, provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                store_id=tenant.store.id, code="auth_failed",
                group_key=f"warehouse:{warehouse.id}:auth_failed",
                message="The warehouse refused DropStream's credentials.")
    order = OrderFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                         store_id=tenant.store.id, status=OrderStatus.RETRYING)
    waiting = OutboxItem(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                         store_id=tenant.store.id, kind="order.forward", subject_id=order.id,
                         dedupe_key="waiting-forward", run_after=utcnow() + timedelta(hours=1))
    db.session.add(waiting)
    db.session.commit()
    alerts = text(admin.get("/console/alerts"))
    assert f'href="/console/warehouses/{warehouse.id}"' in alerts  # from the alert to the fix
    page = text(admin.get(f"/console/warehouses/{warehouse.id}"))
    assert "credentials refused" in page and "token rejected (401)" in page
    assert tenant.store.name in page  # the stores that wait with it, and their orders
    assert f'href="/console/orders?store_id={tenant.store.id}&amp;status=retrying">1</a>' in page

    refused = admin.post(f"/console/warehouses/{warehouse.id}/credentials", {})
    assert refused.status_code == 422
    assert field_error(text(refused), "credentials.token", "Missing data for required field.")
    db.session.expire_all()
    assert db.session.get(type(warehouse), warehouse.id).credentials_refused

    saved = admin.post(f"/console/warehouses/{warehouse.id}/credentials",
                       {"credentials.token": "wms-token-new"})
    assert saved.status_code == 302
    db.session.expire_all()
    warehouse = db.session.get(type(warehouse), warehouse.id)
    assert not warehouse.credentials_refused
    assert read_credentials(warehouse) == {"token": "wms-token-new"}
    assert db.session.get(OutboxItem, waiting.id).run_after <= utcnow()
    page = text(admin.get(saved.headers["Location"]))
    assert "credentials refused" not in page and "wms-token-new" not in page
    from dropstream.alerts.models import Alert

    assert db.session.scalars(select(Alert.resolved_at)).one() is not None  # resolved with it
