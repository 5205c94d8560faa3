"""Listings: plain and bundle, CRUD, CSV import (all or nothing) and export; every change asks
for a hold rescan."""

from __future__ import annotations

import io

from dropstream.catalog.models import Listing
from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem
from tests.api.conftest import assert_error
from tests.factories import ListingFactory


def rescans() -> int:
    return len(db.session.scalars(db.select(OutboxItem).where(OutboxItem.kind == "store.rescan_holds")).all())


def listings_of(store_id: int) -> dict[str, object]:
    db.session.expire_all()
    rows = db.session.scalars(db.select(Listing).where(Listing.store_id == store_id)).all()
    return {r.store_sku: r.warehouse_sku or [(c.warehouse_sku, c.quantity) for c in r.components] for r in rows}


def test_crud_plain_and_bundle(merchant_admin, tenant):
    base = f"/stores/{tenant.store.id}/listings"
    plain = merchant_admin.post(base, json={"store_sku": " TSHIRT-S ", "warehouse_sku": "TS-S", "name": "T"})
    assert plain.status_code == 201, plain.get_json()
    assert plain.get_json()["store_sku"] == "TSHIRT-S" and plain.get_json()["is_bundle"] is False
    assert rescans() == 1
    bundle = merchant_admin.post(base, json={"store_sku": "GIFTBOX", "components": [
        {"warehouse_sku": "MUG", "quantity": 2}, {"warehouse_sku": "TEA", "quantity": 1}]})
    assert bundle.status_code == 201 and bundle.get_json()["is_bundle"] is True
    bundle_id = bundle.get_json()["id"]

    changed = merchant_admin.patch(f"{base}/{bundle_id}", json={"warehouse_sku": "GIFT-WH"})
    assert changed.get_json()["components"] == [] and changed.get_json()["warehouse_sku"] == "GIFT-WH"
    changed = merchant_admin.patch(f"{base}/{bundle_id}", json={"components": [{"warehouse_sku": "MUG", "quantity": 3}]})
    assert changed.get_json()["warehouse_sku"] is None and len(changed.get_json()["components"]) == 1

    page = merchant_admin.get(f"{base}?sku=shirt").get_json()
    assert [item["store_sku"] for item in page["items"]] == ["TSHIRT-S"]
    assert merchant_admin.get(f"{base}/{bundle_id}").get_json()["store_sku"] == "GIFTBOX"
    assert merchant_admin.delete(f"{base}/{bundle_id}").status_code == 204
    assert_error(merchant_admin.get(f"{base}/{bundle_id}"), 404)
    assert listings_of(tenant.store.id) == {"TSHIRT-S": "TS-S"}


def test_mapping_is_warehouse_sku_xor_components(admin, tenant):
    base = f"/stores/{tenant.store.id}/listings"
    error = assert_error(admin.post(base, json={"store_sku": "A", "warehouse_sku": "B", "components": [
        {"warehouse_sku": "C", "quantity": 1}]}), 422)
    assert "components" in error["fields"]
    assert "warehouse_sku" in assert_error(admin.post(base, json={"store_sku": "A"}), 422)["fields"]
    error = assert_error(admin.post(base, json={"store_sku": "A", "components": [
        {"warehouse_sku": "C", "quantity": 1}, {"warehouse_sku": "C", "quantity": 2}]}), 422)
    assert "components.1.warehouse_sku" in error["fields"]
    assert "store_sku" in assert_error(admin.post(base, json={"store_sku": "   ", "warehouse_sku": "B"}), 422)["fields"]
    assert admin.post(base, json={"store_sku": "A", "warehouse_sku": "B"}).status_code == 201
    assert "store_sku" in assert_error(admin.post(base, json={"store_sku": "A", "warehouse_sku": "Z"}), 409)["fields"]


def test_listing_of_another_store_is_404_under_this_store(admin, tenant):
    from tests.factories import StoreFactory

    other_store = StoreFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                               warehouse_id=tenant.warehouse.id)
    listing = ListingFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                             store_id=other_store.id)
    db.session.commit()
    assert_error(admin.get(f"/stores/{tenant.store.id}/listings/{listing.id}"), 404)
    assert admin.get(f"/stores/{other_store.id}/listings/{listing.id}").status_code == 200


CSV_GOOD = """store_sku,warehouse_sku,component_sku,component_quantity,name
TSHIRT-S,TS-S,,,Small shirt
GIFTBOX,,MUG,2,Gift box
GIFTBOX,,TEA,1,
EXISTING,NEW-WH,,,
"""


def test_csv_import_upserts_and_export_round_trips(admin, tenant):
    ListingFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                   store_id=tenant.store.id, store_sku="EXISTING", warehouse_sku="OLD-WH")
    ListingFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                   store_id=tenant.store.id, store_sku="UNTOUCHED", warehouse_sku="U")
    db.session.commit()
    base = f"/stores/{tenant.store.id}/listings"
    response = admin.post(f"{base}/import", data=CSV_GOOD, content_type="text/csv")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"created": 2, "updated": 1, "unchanged": 0}
    assert listings_of(tenant.store.id) == {"TSHIRT-S": "TS-S", "GIFTBOX": [("MUG", 2), ("TEA", 1)],
                                            "EXISTING": "NEW-WH", "UNTOUCHED": "U"}
    assert rescans() == 1

    exported = admin.get(f"{base}/export")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    text = exported.get_data(as_text=True)
    assert text.splitlines()[0] == "store_sku,warehouse_sku,component_sku,component_quantity,name"
    assert "GIFTBOX,,MUG,2,Gift box" in text
    again = admin.post(f"{base}/import", data={"file": (io.BytesIO(text.encode()), "listings.csv")},
                       content_type="multipart/form-data")
    assert again.status_code == 200, again.get_json()
    assert again.get_json() == {"created": 0, "updated": 0, "unchanged": 4}


CSV_BAD = """store_sku,warehouse_sku,component_sku,component_quantity
GOOD,G,,
,X,,
BUNDLE,,MUG,zero
BUNDLE,,MUG,0
BOTH,W,C,1
DUP,A,,
DUP,B,,
"""


def test_csv_import_reports_every_bad_row_and_imports_nothing(admin, tenant):
    base = f"/stores/{tenant.store.id}/listings"
    error = assert_error(admin.post(f"{base}/import", data=CSV_BAD, content_type="text/csv"),
                         422, "validation_error")
    assert {"rows.3.store_sku", "rows.4.component_quantity", "rows.5.component_quantity",
            "rows.6.warehouse_sku", "rows.8.store_sku"} <= set(error["fields"]), error["fields"]
    assert "nothing was imported" in error["message"]
    assert listings_of(tenant.store.id) == {}
    assert rescans() == 0


def test_csv_header_problems(admin, tenant):
    url = f"/stores/{tenant.store.id}/listings/import"
    assert "rows.1" in assert_error(admin.post(url, data="", content_type="text/csv"), 422)["fields"]
    error = assert_error(admin.post(url, data="store sku,warehouse_sku\nA,B\n", content_type="text/csv"), 422)
    assert "rows.1" in error["fields"] and "store sku" in error["fields"]["rows.1"][0]
    assert "rows.2" in assert_error(admin.post(url, data="store_sku,warehouse_sku\n", content_type="text/csv"), 422)["fields"]
    assert "file" in assert_error(admin.post(url, json={"x": 1}), 422)["fields"]
    assert "file" in assert_error(admin.post(url, data={"other": "x"}, content_type="multipart/form-data"), 422)["fields"]
    error = assert_error(admin.post(url, data="store_sku,warehouse_sku\nA\x00,B\n", content_type="text/csv"), 422)
    assert "rows.2.store_sku" in error["fields"]
