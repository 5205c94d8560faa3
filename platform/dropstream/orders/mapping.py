"""Validate an order and map it to the warehouse: lines through listings, shipping methods
through shipping rules. What cannot be mapped becomes a hold with a reason and a fix.

Mapping is a pure function of the order and the store's current listings and rules, so it can
run again at any time (after a fix, on Reprocess) and always produces the same warehouse lines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from dropstream.catalog.models import (
    Listing,
    ListingComponent,
    ShippingRule,
    ships_as,
    shipping_match_key,
)
from dropstream.orders.models import Order, OrderAddress, WarehouseLine
from dropstream.orders.statuses import HoldReason
from dropstream.stores.models import Store


@dataclass(frozen=True)
class Problem:
    reason: HoldReason
    field: str
    message: str

    @property
    def detail(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class MappingResult:
    problems: tuple[Problem, ...]
    shippable: bool

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class StoreCatalog:
    """What a store's orders are mapped with, read once for several orders (a backlog's
    imports, a rescan of held orders): what one unit of each listed store SKU ships as
    (``[(warehouse_sku, units), …]``, see :meth:`Listing.expand`), and each shipping rule's
    warehouse code by match key (the store's default rule under ``""``)."""

    listings: dict[str, list[tuple[str, int]]]
    rules: dict[str, str]


def read_catalog(session: Session, store: Store, orders: Iterable[Order]) -> StoreCatalog:
    """The listings of every SKU in ``orders`` and all shipping rules of ``store``."""
    return StoreCatalog(_listings_for(session, store, _skus(orders)), _rules_for(session, store))


REQUIRED_ADDRESS_FIELDS = ("name", "street1", "city", "country_code")
COUNTRY_CODE = re.compile("[A-Z]{2}")
#: Most units one warehouse line can carry (PostgreSQL integer range).
MAX_LINE_UNITS = 2**31 - 1


def map_order(session: Session, order: Order, store: Store,
              catalog: StoreCatalog | None = None) -> MappingResult:
    """Rebuild ``order``'s warehouse lines and ship codes; report every problem found. The
    store's listings and rules are read for this order, unless ``catalog`` holds them.

    Lines, addresses and warehouse lines are joined by relationship, not id, so an order not
    written yet is mapped before its one flush."""
    order.warehouse_lines.clear()  # delete-orphan: the old mapping goes with this flush
    problems: list[Problem] = []
    shipping = set(order.shipping_addresses)
    listings = (catalog.listings if catalog is not None
                else _listings_for(session, store, _skus([order])))
    shipped_lines = [(index, line) for index, line in enumerate(order.lines) if line.ships]
    if not shipped_lines:
        return MappingResult((), shippable=False)

    for index, line in shipped_lines:
        path = f"lines[{index}]"
        if line.quantity <= 0:
            problems.append(Problem(HoldReason.INVALID_QUANTITY, f"{path}.quantity",
                                    f"quantity {line.quantity} of {shown(line.name, 'a line')} must be at least 1"))
            continue
        if line.address not in shipping:
            problems.append(Problem(HoldReason.INVALID_ADDRESS, f"{path}.address",
                                    "the line has no shipping address"))
            continue
        if not (line.sku or "").strip():
            problems.append(Problem(HoldReason.NO_SKU, f"{path}.sku",
                                    f"{shown(line.name, 'a product')} has no SKU; give it one in the store"))
            continue
        components = listings.get(line.sku) or [(line.sku, 1)]
        most = max(per_unit for _, per_unit in components)
        if line.quantity * most > MAX_LINE_UNITS:
            problems.append(Problem(HoldReason.INVALID_QUANTITY, f"{path}.quantity",
                                    f"{line.quantity:,} × {most} units of a component of "
                                    f"{shown(line.sku, 'it')} is more than one warehouse line "
                                    "can carry"))
            continue
        # Whether the warehouse knows a SKU is the warehouse's to say, when the order is sent
        # (stock reports may cover only what moved, so they are no catalogue).
        for warehouse_sku, per_unit in components:
            order.warehouse_lines.append(WarehouseLine(
                provider_id=order.provider_id, merchant_id=order.merchant_id,
                order_line=line, address=line.address, warehouse_sku=warehouse_sku,
                per_unit=per_unit, quantity=line.quantity * per_unit,
            ))

    used_addresses = {line.address for _, line in shipped_lines if line.address in shipping}
    rules = catalog.rules if catalog is not None else _rules_for(session, store)
    for position, address in enumerate(order.shipping_addresses):
        if address not in used_addresses:
            continue
        path = f"shipping_addresses[{position}]"
        missing = [name for name in REQUIRED_ADDRESS_FIELDS if not (getattr(address, name) or "").strip()]
        if missing:
            problems.append(Problem(HoldReason.INVALID_ADDRESS, f"{path}.{missing[0]}",
                                    f"the shipping address has no {', '.join(missing)}"))
        elif not COUNTRY_CODE.fullmatch(address.country_code):
            problems.append(Problem(HoldReason.INVALID_ADDRESS, f"{path}.country_code",
                                    f"{address.country_code!r} is not a two-letter ISO 3166 "
                                    "country code"))
        code = rules.get(shipping_match_key(address.shipping_method), rules.get(""))
        address.ship_code = code
        if code is None:
            problems.append(Problem(
                HoldReason.UNMAPPED_SHIPPING_METHOD, f"{path}.shipping_method",
                f"no shipping rule maps {address.shipping_method!r}; add one (or a default rule)",
            ))
        if address.warehouse_ref is None:
            address.warehouse_ref = _warehouse_reference(session, order, address)
    return MappingResult(tuple(problems), shippable=True)


def shown(text: str | None, fallback: str) -> str:
    """A store's text as a hold detail quotes it: on one line (control, format and separator
    characters become spaces: a newline or a right-to-left override cannot garble the console),
    at most 60 characters; ``fallback`` when nothing is left."""
    flat = " ".join("".join(" " if unicodedata.category(c)[0] in "CZ" else c
                            for c in text or "").split())
    if not flat:
        return fallback
    return f"“{flat if len(flat) <= 60 else flat[:59] + '…'}”"


REFERENCE_PREFIX = "DS"


def _warehouse_reference(session: Session, order: Order, address: OrderAddress) -> str:
    """Stable across retries and re-mapping; unique per consignment (ship-to address)."""
    base = f"{REFERENCE_PREFIX}-{order.store_id}-{order.external_id}"
    if len(order.shipping_addresses) == 1:
        return base
    if not address.external_id and address.id is None:
        session.flush()  # a ship-to the store gave no id of its own is told apart by DropStream's
    return f"{base}-{address.external_id or address.id}"


def reference_store_id(reference: str) -> int | None:
    """The store a DropStream warehouse reference (``DS-<store>-<order>[-<consignment>]``) was
    made for, or None for a reference DropStream did not make."""
    parts = reference.split("-", 2)
    if len(parts) == 3 and parts[0] == REFERENCE_PREFIX and parts[1].isdigit():
        return int(parts[1])
    return None


def _skus(orders: Iterable[Order]) -> set[str]:
    return {line.sku for order in orders for line in order.lines if line.sku}


#: Built once, as plain rows: every import reads them, and loading them as objects (listings,
#: then their components by a second query) cost more than the mapping itself. The store's
#: merchant is named besides the store, as the tenant scope would.
_LISTINGS = (
    select(Listing.store_sku, Listing.warehouse_sku, ListingComponent.warehouse_sku,
           ListingComponent.quantity)
    .outerjoin(ListingComponent, ListingComponent.listing_id == Listing.id)
    .where(Listing.merchant_id == bindparam("merchant_id"),
           Listing.store_id == bindparam("store_id"),
           Listing.store_sku.in_(bindparam("skus", expanding=True)))
    .order_by(Listing.id, ListingComponent.id)
)
_RULES = select(ShippingRule.match_key, ShippingRule.is_default, ShippingRule.warehouse_code).where(
    ShippingRule.merchant_id == bindparam("merchant_id"),
    ShippingRule.store_id == bindparam("store_id"),
)


def _listings_for(session: Session, store: Store,
                  skus: set[str]) -> dict[str, list[tuple[str, int]]]:
    if not skus:
        return {}
    listed: dict[str, tuple[str | None, list[tuple[str, int]]]] = {}
    # Listings and rules never depend on the order being mapped: what the session holds
    # pending is flushed once, later, not before each of these reads.
    with session.no_autoflush:
        rows = session.execute(_LISTINGS, {"merchant_id": store.merchant_id, "store_id": store.id,
                                           "skus": sorted(skus)})
        for store_sku, warehouse_sku, component_sku, units in rows:
            components = listed.setdefault(store_sku, (warehouse_sku, []))[1]
            if component_sku is not None:
                components.append((component_sku, units))
    return {sku: ships_as(sku, warehouse_sku, components)
            for sku, (warehouse_sku, components) in listed.items()}


def _rules_for(session: Session, store: Store) -> dict[str, str]:
    with session.no_autoflush:
        rules = session.execute(_RULES, {"merchant_id": store.merchant_id, "store_id": store.id})
        return {("" if is_default else match_key): code for match_key, is_default, code in rules}
