"""The BigCommerce part of ``dropstream demo``: a sandbox, stores in it, orders placed in them.

Each demo store is a sandbox store with a store-level API account and the catalogue's products
(one without a SKU, one with inventory tracking off, the bundle as a product of its own: the
core maps it to its components with a listing). Its DropStream store is created through
``stores.services`` with those credentials, pointed at the sandbox, its webhooks registered to
the demo's address, and set active. Orders are placed the way a checkout places them, so the
sandbox's webhooks announce them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dropstream.connectors.base import ConnectorContext
from dropstream.demo_support import DemoCatalog, DemoContext, DemoProduct
from dropstream.stores import services
from dropstream.stores.credentials import write_credentials
from dropstream.stores.models import Store, StoreState, Warehouse
from dropstream.tenants.models import Merchant
from dropstream.tenants.scope import TenantScope
from dropstream_bigcommerce import hooks
from dropstream_bigcommerce.connector import BigCommerceConnector
from dropstream_bigcommerce.schemas import AWAITING_FULFILLMENT

EXTENSION = "dropstream_bigcommerce.demo"
FIRST_NAMES = ("Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Zoë", "José")
CITIES = (
    ("Austin", "TX", "78751"),
    ("Portland", "OR", "97205"),
    ("Boston", "MA", "02110"),
    ("Denver", "CO", "80202"),
)


class DemoState:
    """The running sandbox and, per sandbox store, its products by name."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.products: dict[str, dict[str, int]] = {}  # store hash → product name → product id


def _state(demo: DemoContext) -> DemoState | None:
    return demo.app.extensions.get(EXTENSION)


def start_services(demo: DemoContext) -> None:
    from dropstream_bigcommerce.sandbox import BigCommerceSandbox

    sandbox = BigCommerceSandbox(seed=demo.rng.randrange(2**31))
    url = sandbox.start()
    demo.app.extensions[EXTENSION] = DemoState(sandbox)
    demo.add_service("BigCommerce sandbox", url, sandbox.stop)


def create_store(
    demo: DemoContext,
    session: Session,
    merchant: Merchant,
    warehouse: Warehouse,
    catalog: DemoCatalog,
) -> Store | None:
    state = _state(demo)
    if state is None:
        return None  # our sandbox is not running: another plugin provides the store
    sandbox = state.sandbox
    store_hash = sandbox.create_store(name=f"{merchant.name} (BigCommerce sandbox)")
    account = sandbox.create_api_account(store_hash)
    state.products[store_hash] = {
        product.name: sandbox.add_product(
            store_hash,
            name=product.name,
            sku=product.sku,
            price=product.price,
            inventory_tracking="product" if product.tracked else "none",
            inventory_level=0 if product.components else product.stock,
        )["id"]
        for product in catalog.products
    }
    credentials = {
        "store_hash": store_hash,
        "client_id": account["client_id"],
        "client_secret": account["client_secret"],
        "access_token": account["access_token"],
    }
    store = services.create_store(
        session,
        TenantScope(merchant.provider_id),
        {
            "name": f"{merchant.name} on BigCommerce",
            "connector_id": BigCommerceConnector.id,
            "merchant_id": merchant.id,
            "warehouse_id": warehouse.id,
            "settings": {"api_base_url": sandbox.api_base_url},
            "credentials": credentials,
        },
    )
    connector = BigCommerceConnector(
        ConnectorContext(
            BigCommerceConnector.id,
            store.id,
            dict(store.settings),
            credentials,
            save_credentials=lambda values: write_credentials(store, values),
            public_base_url=demo.public_base_url,
        )
    )
    with connector.client() as client:
        hooks.ensure(client, connector)
    store.state = StoreState.ACTIVE
    session.flush()
    return store


def place_order(
    demo: DemoContext, store: Store, lines: list[tuple[DemoProduct, int]], shipping_method: str
) -> str | None:
    state = _state(demo)
    if store.connector_id != BigCommerceConnector.id or state is None or not store.external_id:
        return None
    products = state.products.get(store.external_id, {})
    rng = demo.rng
    first = rng.choice(FIRST_NAMES)
    city, region, postcode = rng.choice(CITIES)
    address = {
        "first_name": first,
        "last_name": "Shopper",
        "street_1": f"{rng.randint(1, 999)} Main St",
        "city": city,
        "state": region,
        "zip": postcode,
        "country": "United States",
        "country_iso2": "US",
        "email": f"{first.lower()}@shopper.test",
        "phone": "555-0100",
        "shipping_method": shipping_method,
    }
    status = int((store.settings or {}).get("monitored_status_id") or AWAITING_FULFILLMENT)
    order_id = state.sandbox.create_order(
        store.external_id,
        status_id=status,
        shipping_addresses=[address],
        lines=[
            {"product_id": products[product.name], "quantity": quantity}
            for product, quantity in lines
            if product.name in products
        ],
    )
    return str(order_id)
