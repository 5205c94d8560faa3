"""A tenant with an object of every kind, on every built-in connector, for the security suite.

:func:`full_tenant` builds on :func:`tests.tenancy.make_tenant` and :func:`tests.api.data.populate`
(the API's isolation data) and adds what the plugins' inbound routes address: a BigCommerce store
linked through the app (with its webhook secret) and a generic-WMS warehouse that accepts signed
pushes, each with orders, listings, rules, shipments and alerts of their own, plus a second
merchant and the console's objects (a dead outbox item, an invitation).
"""

from __future__ import annotations

from dataclasses import dataclass

from dropstream.extensions import db
from dropstream.stores.credentials import write_credentials
from dropstream.stores.models import Store, Warehouse
from tests.api.data import Data, populate
from tests.console.test_access import add_console_objects
from tests.factories import MerchantFactory, StoreFactory, WarehouseFactory
from tests.tenancy import make_tenant


@dataclass
class FullTenant:
    data: Data
    bc_store: Store
    wms: Warehouse
    #: The secrets the tenant's remote systems sign with (plaintext, for the tests' senders).
    webhook_secret: str
    inbound_key: str
    signing_secret: str
    account: str

    @property
    def bc_hash(self) -> str:
        return str(self.bc_store.external_id)

    def order_reference(self) -> str:
        """The warehouse reference of an order of the BigCommerce store (sent to the WMS)."""
        return f"DS-{self.bc_store.id}-ref"


def full_tenant(name: str, *, code: str | None = None, rich: bool = True) -> FullTenant:
    """``name`` is in every name and e-mail of the tenant (a leak detector); its BigCommerce store
    hash and its warehouse account start with ``code`` (default ``name``) instead — those are
    what a caller types, and an answer may repeat what it was sent. ``rich=False`` leaves out
    the orders, catalogue and second merchant (the connections and users only)."""
    tenant = make_tenant(name, sandbox=name)
    data = Data(tenant, {})
    if rich:
        data = populate(tenant)
        add_console_objects(data)
        other = MerchantFactory(provider_id=tenant.provider.id, name=f"{name} second goods")
        second = StoreFactory(
            provider_id=tenant.provider.id,
            merchant_id=other.id,
            warehouse_id=tenant.warehouse.id,
            name=f"{name} second shop",
            settings={"sandbox": name},
        )
        db.session.commit()
        populate(tenant, store=second)

    secrets = {key: f"{name}-{key}-0123456789abcdef" for key in ("inbound", "signing", "hook")}
    account = f"{(code or name).upper()}-ACCT"
    wms = WarehouseFactory(
        provider_id=tenant.provider.id,
        connector_id="wms_generic",
        name=f"{name} WMS",
        settings={"base_url": "https://wms.example.com"},
    )
    write_credentials(
        wms,
        {
            "token": f"{name}-wms-token",
            "inbound_key": secrets["inbound"],
            "signing_secret": secrets["signing"],
        },
    )
    bc_hash = f"{code or name}bc"
    bc_store = StoreFactory(
        provider_id=tenant.provider.id,
        merchant_id=tenant.merchant.id,
        warehouse_id=wms.id,
        name=f"{name} BigCommerce",
        connector_id="bigcommerce",
        external_id=bc_hash,
        settings={"api_base_url": "https://api.bigcommerce.com"},
        warehouse_account={"customer_code": account},
    )
    write_credentials(
        bc_store,
        {
            "store_hash": bc_hash,
            "access_token": f"{name}-access-token",
            "client_id": "dropstream-app-client",
            "installed_via": "app",
            "webhook_secret": secrets["hook"],
        },
    )
    db.session.commit()
    full = FullTenant(
        data, bc_store, wms, secrets["hook"], secrets["inbound"], secrets["signing"], account
    )
    if rich:
        _send_order(populate(tenant, store=bc_store).ids["order_id"], full.order_reference())
    return full


def _send_order(order_id: int, reference: str) -> None:
    """Give the order the warehouse reference it has once forwarded (what a WMS ships against)."""
    from dropstream.orders.models import Order

    order = db.session.get(Order, order_id)
    order.addresses[0].warehouse_ref = reference
    db.session.commit()
