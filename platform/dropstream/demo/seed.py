"""Seeding the demo: a provider, its admin, a warehouse and two merchants with stores, all
connected to the plugins' sandboxes, with the listings and shipping rules of the catalogue."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from dropstream.catalog.models import Listing, ListingComponent, ShippingRule, shipping_match_key
from dropstream.demo.catalog import CATALOG
from dropstream.demo_support import DemoContext
from dropstream.state import get_state
from dropstream.stores.models import Store, Warehouse
from dropstream.tenants import services
from dropstream.tenants.models import Provider, Role, User

MERCHANTS = ("Northwind Outfitters", "Juniper & Co")


class DemoSetupError(RuntimeError):
    """A plugin needed by the demo is missing; the message says which."""


@dataclass
class DemoSetup:
    provider: Provider
    admin: User
    password: str
    api_key: str
    warehouse: Warehouse
    stores: list[Store]


def seed(session: Session, demo: DemoContext, slug: str) -> DemoSetup:
    hook = get_state().plugin_manager.hook
    provider = services.create_provider(session, "Demo Fulfillment", slug)
    password = secrets.token_urlsafe(12)
    admin = services.create_user(session, provider=provider, email=f"admin@{slug}.test",
                                 role=Role.PROVIDER_ADMIN, password=password, name="Demo admin")
    _key, api_key = services.issue_api_key(session, admin, "demo")
    warehouse = hook.demo_create_warehouse(demo=demo, session=session, provider=provider, catalog=CATALOG)
    if warehouse is None:
        raise DemoSetupError("No installed plugin provides a demo warehouse (install dropstream-wms-generic).")
    stores = []
    for name in MERCHANTS:
        merchant = services.create_merchant(session, provider, name)
        services.create_user(session, provider=provider, merchant=merchant, role=Role.MERCHANT_ADMIN,
                             email=f"owner@{name.split()[0].lower()}.{slug}.test", password=password,
                             name=f"{name} owner")
        store = hook.demo_create_store(demo=demo, session=session, merchant=merchant,
                                       warehouse=warehouse, catalog=CATALOG)
        if store is None:
            raise DemoSetupError("No installed plugin provides a demo store (install dropstream-bigcommerce).")
        add_mappings(session, store)
        stores.append(store)
    session.flush()
    return DemoSetup(provider, admin, password, api_key, warehouse, stores)


def add_mappings(session: Session, store: Store) -> None:
    """The catalogue's listings (renamed SKUs, bundles) and shipping rules, leaving the
    deliberately unmapped method without a rule."""
    owner = dict(provider_id=store.provider_id, merchant_id=store.merchant_id)
    for product in CATALOG.products:
        if product.sku is None or not (product.components or product.warehouse_sku):
            continue
        listing = Listing(**owner, store_id=store.id, store_sku=product.sku, name=product.name,
                          warehouse_sku=None if product.components else product.warehouse_sku)
        listing.components = [ListingComponent(**owner, warehouse_sku=sku, quantity=units)
                              for sku, units in product.components.items()]
        session.add(listing)
    for method, code in CATALOG.shipping_methods.items():
        if code is not None:
            session.add(ShippingRule(**owner, store_id=store.id, store_method=method,
                                     match_key=shipping_match_key(method), warehouse_code=code))
