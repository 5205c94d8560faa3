"""Changing a store's listings and shipping rules: the rules the API and the console share.

Every change asks for a hold rescan in the same transaction, so orders held for a missing
listing or shipping rule are released by themselves once it exists. Functions take a store the
caller has already loaded through its tenant scope, work only on that store's rows, and leave
the session uncommitted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from dropstream.catalog.models import Listing, ListingComponent, ShippingRule, shipping_match_key
from dropstream.errors import Conflict, ValidationFailed
from dropstream.orders.holds import request_hold_rescan
from dropstream.stores.models import Store

SKU_LENGTH = 255
MAX_COMPONENTS = 100
MAX_COMPONENT_QUANTITY = 100_000
CSV_COLUMNS = ("store_sku", "warehouse_sku", "component_sku", "component_quantity", "name")
MAX_CSV_ROWS = 50_000
#: Row errors reported at most; past that the file is clearly the wrong one.
MAX_REPORTED_ERRORS = 200


# ------------------------------------------------------------------------------------------------
# Listings
# ------------------------------------------------------------------------------------------------


def _owned(store: Store) -> dict[str, int]:
    return {"provider_id": store.provider_id, "merchant_id": store.merchant_id, "store_id": store.id}


def _check_mapping(warehouse_sku: str | None, components: Sequence[dict[str, Any]] | None,
                   require: bool) -> None:
    """A listing maps to one warehouse SKU *or* to bundle components, never both."""
    if warehouse_sku and components:
        raise ValidationFailed("Give either warehouse_sku or components, not both.",
                               fields={"components": ["Not allowed together with warehouse_sku."]})
    if require and not warehouse_sku and not components:
        raise ValidationFailed("Give warehouse_sku, or components for a bundle.",
                               fields={"warehouse_sku": ["Required unless components are given."]})
    seen: set[str] = set()
    for index, component in enumerate(components or []):
        if component["warehouse_sku"] in seen:
            raise ValidationFailed("A bundle lists the same warehouse SKU twice.", fields={
                f"components.{index}.warehouse_sku": ["Listed twice in this bundle."]})
        seen.add(component["warehouse_sku"])


def _set_components(listing: Listing, store: Store, components: Iterable[dict[str, Any]]) -> None:
    listing.components[:] = [
        ListingComponent(provider_id=store.provider_id, merchant_id=store.merchant_id,
                         warehouse_sku=c["warehouse_sku"], quantity=c["quantity"])
        for c in components
    ]


def _sku_taken(session: Session, store: Store, store_sku: str, listing_id: int | None) -> bool:
    return session.scalar(select(Listing.id).where(
        Listing.store_id == store.id, Listing.store_sku == store_sku,
        Listing.id != (listing_id or 0))) is not None


def create_listing(session: Session, store: Store, data: dict[str, Any]) -> Listing:
    """Create a listing from ``store_sku``, ``name`` and ``warehouse_sku`` or ``components``
    (``[{"warehouse_sku", "quantity"}]``).

    :raises ValidationFailed: both or neither mapping given, or a component repeated.
    :raises Conflict: the store already has a listing for this store SKU.
    """
    _check_mapping(data.get("warehouse_sku"), data.get("components"), require=True)
    if _sku_taken(session, store, data["store_sku"], None):
        raise Conflict("This store already has a listing for this SKU.",
                       fields={"store_sku": ["Already listed."]})
    listing = Listing(**_owned(store), store_sku=data["store_sku"], name=data.get("name") or "",
                      warehouse_sku=data.get("warehouse_sku") or None)
    _set_components(listing, store, data.get("components") or [])
    session.add(listing)
    session.flush()
    request_hold_rescan(session, store)
    return listing


def update_listing(session: Session, store: Store, listing: Listing, data: dict[str, Any]) -> Listing:
    """Change a listing; giving ``warehouse_sku`` drops its components and vice versa."""
    _check_mapping(data.get("warehouse_sku"), data.get("components"), require=False)
    if "store_sku" in data and _sku_taken(session, store, data["store_sku"], listing.id):
        raise Conflict("This store already has a listing for this SKU.",
                       fields={"store_sku": ["Already listed."]})
    if "store_sku" in data:
        listing.store_sku = data["store_sku"]
    if "name" in data:
        listing.name = data["name"] or ""
    if data.get("warehouse_sku"):
        listing.warehouse_sku = data["warehouse_sku"]
        listing.components.clear()
    elif data.get("components"):
        listing.warehouse_sku = None
        _set_components(listing, store, data["components"])
    session.flush()
    request_hold_rescan(session, store)
    return listing


def delete_listing(session: Session, store: Store, listing: Listing) -> None:
    session.delete(listing)
    session.flush()
    request_hold_rescan(session, store)


def store_listings(session: Session, store: Store) -> list[Listing]:
    return list(session.scalars(
        select(Listing).where(Listing.store_id == store.id).order_by(Listing.store_sku)
        .options(selectinload(Listing.components))))


# ------------------------------------------------------------------------------------------------
# CSV import / export
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


@dataclass
class _Planned:
    row: int
    name: str = ""
    warehouse_sku: str | None = None
    components: list[dict[str, Any]] | None = None


def import_listings_csv(session: Session, store: Store, text: str) -> ImportResult:
    """Upsert listings by store SKU from CSV text; all rows or none.

    Columns: ``store_sku``, ``warehouse_sku``, ``component_sku``, ``component_quantity`` and an
    optional ``name``. A bundle takes one row per component (same ``store_sku``, empty
    ``warehouse_sku``). Every row is checked first; if any is bad nothing is imported and the
    error names each bad cell as ``rows.<row number>.<column>`` (the header is row 1, as in a
    spreadsheet). Listings not in the file are left alone.
    """
    plan = _parse_csv(text)
    existing = {listing.store_sku: listing for listing in store_listings(session, store)}
    created = updated = unchanged = 0
    for store_sku, planned in plan.items():
        components = planned.components or []
        listing = existing.get(store_sku)
        if listing is None:
            listing = Listing(**_owned(store), store_sku=store_sku, name=planned.name,
                              warehouse_sku=planned.warehouse_sku)
            _set_components(listing, store, components)
            session.add(listing)
            created += 1
            continue
        same = (listing.warehouse_sku == planned.warehouse_sku
                and [(c.warehouse_sku, c.quantity) for c in listing.components]
                == [(c["warehouse_sku"], c["quantity"]) for c in components]
                and (not planned.name or planned.name == listing.name))
        if same:
            unchanged += 1
            continue
        listing.warehouse_sku = planned.warehouse_sku
        if planned.name:
            listing.name = planned.name
        _set_components(listing, store, components)
        updated += 1
    session.flush()
    if created or updated:
        request_hold_rescan(session, store)
    return ImportResult(created, updated, unchanged)


def _parse_csv(text: str) -> dict[str, _Planned]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise ValidationFailed("The file is empty: it needs a header row.",
                               fields={"rows.1": ["Missing header row."]}) from None
    except csv.Error as error:
        raise ValidationFailed("The file is not valid CSV.", fields={"rows.1": [str(error)]}) from None
    problems: dict[str, list[str]] = {}
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown or "store_sku" not in header or len(set(header)) != len(header):
        raise ValidationFailed(
            "The header row must name the columns " + ", ".join(CSV_COLUMNS[:4])
            + " (and optionally name), each once.",
            fields={"rows.1": [f"Unknown column {c!r}." for c in unknown]
                    or ["Columns missing or repeated."]})
    plan: dict[str, _Planned] = {}
    row_number = 1
    try:
        for row_number, cells in enumerate(reader, start=2):
            if row_number - 1 > MAX_CSV_ROWS:
                raise ValidationFailed(f"At most {MAX_CSV_ROWS} rows per file.",
                                       fields={f"rows.{row_number}": ["Too many rows."]})
            if not any(cell.strip() for cell in cells):
                continue  # blank lines are harmless
            _plan_row(plan, row_number, dict(zip(header, cells)), len(cells) - len(header), problems)
            if len(problems) >= MAX_REPORTED_ERRORS:
                break
    except csv.Error as error:
        problems[f"rows.{row_number + 1}"] = [f"Not valid CSV: {error}"]
    for store_sku, planned in plan.items():
        if not planned.warehouse_sku and not planned.components:
            problems.setdefault(f"rows.{planned.row}.warehouse_sku", []).append(
                f"Store SKU {store_sku!r} needs a warehouse_sku or component rows.")
    if problems:
        raise ValidationFailed(f"{len(problems)} problems in the file; nothing was imported.",
                               fields=problems)
    if not plan:
        raise ValidationFailed("The file has no listings.", fields={"rows.2": ["No data rows."]})
    return plan


def _plan_row(plan: dict[str, _Planned], row: int, cells: dict[str, str], extra: int,
              problems: dict[str, list[str]]) -> None:
    def problem(column: str, message: str) -> None:
        problems.setdefault(f"rows.{row}.{column}", []).append(message)

    if extra > 0:
        problem("_row", f"{extra} more cells than the header has columns.")
    values = {column: (cells.get(column) or "").strip() for column in CSV_COLUMNS}
    for column in ("store_sku", "warehouse_sku", "component_sku", "name"):
        if len(values[column]) > SKU_LENGTH:
            problem(column, f"Longer than {SKU_LENGTH} characters.")
        if "\x00" in values[column]:
            problem(column, "NUL characters are not allowed.")
    store_sku, warehouse_sku = values["store_sku"], values["warehouse_sku"]
    component_sku, quantity_text = values["component_sku"], values["component_quantity"]
    if not store_sku:
        problem("store_sku", "Required.")
        return
    planned = plan.setdefault(store_sku, _Planned(row=row))
    if values["name"]:
        planned.name = values["name"]
    if warehouse_sku and (component_sku or quantity_text):
        problem("warehouse_sku", "Give warehouse_sku or component_sku/component_quantity, not both.")
        return
    if warehouse_sku:
        if planned.warehouse_sku or planned.components:
            problem("store_sku", f"Store SKU {store_sku!r} appears on more than one row.")
        planned.warehouse_sku = warehouse_sku
        return
    if not component_sku and not quantity_text:
        problem("warehouse_sku", "Give warehouse_sku, or component_sku and component_quantity.")
        return
    if not component_sku:
        problem("component_sku", "Required with component_quantity.")
        return
    try:
        quantity = int(quantity_text)
    except ValueError:
        problem("component_quantity", "Must be a whole number.")
        return
    if not 1 <= quantity <= MAX_COMPONENT_QUANTITY:
        problem("component_quantity", f"Must be between 1 and {MAX_COMPONENT_QUANTITY}.")
        return
    if planned.warehouse_sku:
        problem("store_sku", f"Store SKU {store_sku!r} already has a warehouse_sku row.")
        return
    components = planned.components = planned.components or []
    if any(c["warehouse_sku"] == component_sku for c in components):
        problem("component_sku", f"Component {component_sku!r} is listed twice for {store_sku!r}.")
    elif len(components) >= MAX_COMPONENTS:
        problem("component_sku", f"A bundle has at most {MAX_COMPONENTS} components.")
    else:
        components.append({"warehouse_sku": component_sku, "quantity": quantity})


def export_listings_csv(session: Session, store: Store) -> str:
    """The store's listings in the import format (a bundle takes one row per component)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for listing in store_listings(session, store):
        if listing.components:
            for component in listing.components:
                writer.writerow([listing.store_sku, "", component.warehouse_sku,
                                 component.quantity, listing.name])
        else:
            writer.writerow([listing.store_sku, listing.warehouse_sku or "", "", "", listing.name])
    return out.getvalue()


# ------------------------------------------------------------------------------------------------
# Shipping rules
# ------------------------------------------------------------------------------------------------


def _rule_values(data: dict[str, Any], current: ShippingRule | None) -> tuple[str, bool]:
    is_default = data.get("is_default", current.is_default if current else False)
    method = data.get("store_method", current.store_method if current else "")
    method = " ".join((method or "").split())
    if is_default:
        return "", True  # the default rule matches whatever no other rule does
    if not method:
        raise ValidationFailed("A rule needs the store's shipping method (or is_default).",
                               fields={"store_method": ["Required unless is_default is true."]})
    return method, False


def _check_rule_unique(session: Session, store: Store, match_key: str, is_default: bool,
                       rule_id: int | None) -> None:
    other = session.scalar(select(ShippingRule.id).where(
        ShippingRule.store_id == store.id, ShippingRule.match_key == match_key,
        ShippingRule.id != (rule_id or 0)))
    if other is None:
        return
    if is_default:
        raise Conflict(f"This store already has a default rule (id {other}).",
                       fields={"is_default": ["The store has a default rule already."]})
    raise Conflict(f"This store already has a rule for this shipping method (id {other}).",
                   fields={"store_method": ["A rule for this method exists already."]})


def create_rule(session: Session, store: Store, data: dict[str, Any]) -> ShippingRule:
    """Create a rule mapping ``store_method`` (matched ignoring case and spacing) to
    ``warehouse_code``; or the store's one default rule (``is_default``, no method).

    :raises Conflict: a rule for the same method, or a second default rule.
    """
    method, is_default = _rule_values(data, None)
    match_key = shipping_match_key(method)
    _check_rule_unique(session, store, match_key, is_default, None)
    rule = ShippingRule(**_owned(store), store_method=method, match_key=match_key,
                        warehouse_code=data["warehouse_code"], is_default=is_default)
    session.add(rule)
    session.flush()
    request_hold_rescan(session, store)
    return rule


def update_rule(session: Session, store: Store, rule: ShippingRule, data: dict[str, Any]) -> ShippingRule:
    method, is_default = _rule_values(data, rule)
    match_key = shipping_match_key(method)
    _check_rule_unique(session, store, match_key, is_default, rule.id)
    rule.store_method, rule.match_key, rule.is_default = method, match_key, is_default
    if "warehouse_code" in data:
        rule.warehouse_code = data["warehouse_code"]
    session.flush()
    request_hold_rescan(session, store)
    return rule


def delete_rule(session: Session, store: Store, rule: ShippingRule) -> None:
    session.delete(rule)
    session.flush()
    request_hold_rescan(session, store)


def unmapped_shipping_methods(session: Session, store: Store, methods: Iterable[str]) -> list[str]:
    """Of ``methods`` (as the store names them), those no shipping rule of ``store`` maps, in
    the order given; none when the store has a default rule (it maps every method)."""
    rules = session.scalars(select(ShippingRule).where(ShippingRule.store_id == store.id)).all()
    if any(rule.is_default for rule in rules):
        return []
    keys = {rule.match_key for rule in rules}
    return [method for method in dict.fromkeys(methods) if shipping_match_key(method) not in keys]
