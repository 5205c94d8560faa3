"""Mappings of a store: listings (store SKU → warehouse SKU, or a bundle of components) with CSV
import and export, and shipping rules (store method → warehouse ship code). Every change goes
through ``catalog.services``, which also releases the orders held for the missing mapping."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from dropstream.catalog import services
from dropstream.catalog.models import Listing, ShippingRule
from dropstream.console.access import bp, scope
from dropstream.console.forms import Form
from dropstream.console.stores import load_store
from dropstream.errors import AppError, ValidationFailed
from dropstream.extensions import db
from dropstream.stores.models import Store

MAX_CSV_BYTES = 5 * 1024 * 1024


def listing_data(form: Form, prefix: str = "") -> dict[str, Any]:
    """A listing from the form: ``warehouse_sku``, or bundle components as lines of
    ``SKU × quantity`` (also ``SKU, quantity``) in ``components``."""
    data: dict[str, Any] = {"store_sku": form.value(prefix + "store_sku").strip(),
                            "name": form.value(prefix + "name").strip()[:255]}
    if not data["store_sku"]:
        raise ValidationFailed("Enter the store SKU.", fields={prefix + "store_sku": ["Required."]})
    warehouse_sku = form.value(prefix + "warehouse_sku").strip()
    components, problems = [], []
    for number, line in enumerate(form.value(prefix + "components").splitlines(), start=1):
        if not line.strip():
            continue
        sku, _, quantity = line.replace("×", ",").replace(" x ", ",").partition(",")
        quantity = quantity.strip() or "1"
        if not sku.strip() or not quantity.isdigit() or not 1 <= int(quantity) <= 100_000:
            problems.append(f"Line {number}: write SKU, quantity (e.g. TEE-RED, 2).")
        else:
            components.append({"warehouse_sku": sku.strip()[:255], "quantity": int(quantity)})
    if problems:
        raise ValidationFailed("Some bundle lines are unclear.", fields={prefix + "components": problems})
    for key, value in (("store_sku", data["store_sku"]), ("warehouse_sku", warehouse_sku)):
        if len(value) > 255:
            raise ValidationFailed("SKUs are at most 255 characters.", fields={prefix + key: ["Too long."]})
    if warehouse_sku:
        data["warehouse_sku"] = warehouse_sku
    if components:
        data["components"] = components
    return data


def _fields_with_prefix(error: AppError, prefix: str) -> AppError:
    error.fields = {(k if k.startswith(prefix) else prefix + k): v for k, v in error.fields.items()}
    return error


def listings_page(store: Store, form: Form | None = None, status: int = 200, edit: int | None = None,
                  template: str = "console/listings.html", **extra: Any) -> Any:
    rows = services.store_listings(db.session, store)
    return render_template(template, store=store, listings=rows, form=form or Form(), edit=edit,
                           **extra), status


@bp.get("/stores/<int:store_id>/listings")
def listings(store_id: int) -> Any:
    return listings_page(load_store(store_id))


def _back(store: Store) -> str:
    target = request.form.get("back", "")
    return target if target.startswith("/console/") else url_for("console.listings", store_id=store.id)


@bp.post("/stores/<int:store_id>/listings")
def create_listing(store_id: int) -> Any:
    store = load_store(store_id)
    form = Form.posted()
    try:
        listing = services.create_listing(db.session, store, listing_data(form, "new."))
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return _refresh(store, form.fail(_fields_with_prefix(error, "new.")))
    flash(f"Listing {listing.store_sku} added; orders held for it are released by themselves.")
    return redirect(_back(store))


def _refresh(store: Store, form: Form, edit: int | None = None) -> Any:
    """Show the form again where it was posted from (the listings page or the wizard)."""
    if request.form.get("back", "").endswith("/setup/3"):
        from dropstream.console.wizard import step_page

        return step_page(store, 3, form=form, status=422, edit=edit)
    return listings_page(store, form, 422, edit=edit)


def load_listing(store: Store, listing_id: int) -> Listing:
    listing = db.session.scalars(scope().select(
        Listing, Listing.id == listing_id, Listing.store_id == store.id)).first()
    if listing is None:
        from dropstream.errors import NotFound
        raise NotFound("listing")
    return listing


@bp.post("/stores/<int:store_id>/listings/<int:listing_id>")
def update_listing(store_id: int, listing_id: int) -> Any:
    store = load_store(store_id)
    listing = load_listing(store, listing_id)
    form = Form.posted()
    prefix = f"l{listing.id}."
    try:
        data = listing_data(form, prefix)
        if "warehouse_sku" not in data and "components" not in data:
            raise ValidationFailed("Give a warehouse SKU or bundle components.",
                                   fields={prefix + "warehouse_sku": ["Required unless a bundle."]})
        services.update_listing(db.session, store, listing, data)
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return _refresh(store, form.fail(_fields_with_prefix(error, prefix)), edit=listing_id)
    flash(f"Listing {listing.store_sku} saved.")
    return redirect(_back(store))


@bp.post("/stores/<int:store_id>/listings/<int:listing_id>/delete")
def delete_listing(store_id: int, listing_id: int) -> Any:
    store = load_store(store_id)
    listing = load_listing(store, listing_id)
    services.delete_listing(db.session, store, listing)
    db.session.commit()
    flash(f"Listing {listing.store_sku} deleted.")
    return redirect(_back(store))


@bp.post("/stores/<int:store_id>/listings/import")
def import_listings(store_id: int) -> Any:
    store = load_store(store_id)
    upload = request.files.get("file")
    form = Form()
    try:
        if upload is None or not upload.filename:
            raise ValidationFailed("Choose a CSV file.", fields={"file": ["Choose a CSV file."]})
        raw = upload.read(MAX_CSV_BYTES + 1)
        if len(raw) > MAX_CSV_BYTES:
            raise ValidationFailed("The file is larger than 5 MB.", fields={"file": ["Too large."]})
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("Save the file as UTF-8 CSV.", fields={"file": ["Not UTF-8 text."]}) from None
        result = services.import_listings_csv(db.session, store, text)
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return _refresh(store, form.fail(error))
    flash(f"Imported: {result.created} new, {result.updated} changed, {result.unchanged} unchanged.")
    return redirect(_back(store))


@bp.get("/stores/<int:store_id>/listings.csv")
def export_listings(store_id: int) -> Any:
    store = load_store(store_id)
    return Response(services.export_listings_csv(db.session, store), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="listings-{store.id}.csv"'})


# ------------------------------------------------------------------------------------------------
# Shipping rules
# ------------------------------------------------------------------------------------------------


def rule_data(form: Form, prefix: str = "") -> dict[str, Any]:
    code = form.value(prefix + "warehouse_code").strip()
    method = " ".join(form.value(prefix + "store_method").split())
    fields: dict[str, list[str]] = {}
    if not code:
        fields[prefix + "warehouse_code"] = ["Choose the warehouse's ship code."]
    elif len(code) > 120:
        fields[prefix + "warehouse_code"] = ["At most 120 characters."]
    if len(method) > 255:
        fields[prefix + "store_method"] = ["At most 255 characters."]
    if fields:
        raise ValidationFailed("The shipping rule could not be saved.", fields=fields)
    return {"store_method": method, "warehouse_code": code,
            "is_default": form.value(prefix + "is_default") == "on"}


def load_rule(store: Store, rule_id: int) -> ShippingRule:
    rule = db.session.scalars(scope().select(
        ShippingRule, ShippingRule.id == rule_id, ShippingRule.store_id == store.id)).first()
    if rule is None:
        from dropstream.errors import NotFound
        raise NotFound("shipping rule")
    return rule


def rules_page(store: Store, form: Form | None = None, status: int = 200) -> Any:
    from dropstream.console.wizard import shipping_overview

    return render_template("console/rules.html", store=store, form=form or Form(),
                           **shipping_overview(store)), status


@bp.get("/stores/<int:store_id>/shipping-rules")
def rules(store_id: int) -> Any:
    return rules_page(load_store(store_id))


def _rules_back(store: Store) -> str:
    target = request.form.get("back", "")
    return target if target.startswith("/console/") else url_for("console.rules", store_id=store.id)


def _rules_refresh(store: Store, form: Form) -> Any:
    if request.form.get("back", "").endswith("/setup/4"):
        from dropstream.console.wizard import step_page

        return step_page(store, 4, form=form, status=422)
    return rules_page(store, form, 422)


@bp.post("/stores/<int:store_id>/shipping-rules")
def save_rule(store_id: int) -> Any:
    """Create a rule, or change the existing rule for the same method (one form for both, so a
    flagged method is mapped from wherever it is shown)."""
    store = load_store(store_id)
    form = Form.posted()
    prefix = form.value("prefix") if form.value("prefix", "").startswith("m") else ""
    try:
        data = rule_data(form, prefix)
        existing = None
        from dropstream.catalog.models import shipping_match_key

        key = "" if data["is_default"] else shipping_match_key(data["store_method"])
        existing = db.session.scalars(scope().select(
            ShippingRule, ShippingRule.store_id == store.id, ShippingRule.match_key == key)).first()
        if existing is None:
            services.create_rule(db.session, store, data)
        else:
            services.update_rule(db.session, store, existing, data)
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return _rules_refresh(store, form.fail(_fields_with_prefix(error, prefix)))
    what = "the default rule" if data["is_default"] else f"“{data['store_method']}”"
    flash(f"Shipping rule saved: {what} → {data['warehouse_code']}.")
    return redirect(_rules_back(store))


@bp.post("/stores/<int:store_id>/shipping-rules/<int:rule_id>/delete")
def delete_rule(store_id: int, rule_id: int) -> Any:
    store = load_store(store_id)
    rule = load_rule(store, rule_id)
    services.delete_rule(db.session, store, rule)
    db.session.commit()
    flash("Shipping rule deleted.")
    return redirect(_rules_back(store))
