"""Registers the reference connectors. Not an entry point: tests and embedding code register it
explicitly (``create_app(plugins=[("reference", plugin)])``), so production never loads it.

It also takes part in the demo, with its in-memory sandboxes (so the demo's orchestration is
tested without HTTP); the real plugins' sandboxes are HTTP servers.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from dropstream.connectors.base import ConnectorClass
from dropstream.demo_support import DemoCatalog, DemoContext, DemoProduct
from dropstream.hookspecs import hookimpl
from dropstream.stores.credentials import write_credentials
from dropstream.stores.models import DEFAULT_INTERVALS, Channel, Store, StoreChannel, StoreState, Warehouse
from dropstream.tenants.models import Merchant, Provider
from dropstream.testing.reference import ReferenceStore, ReferenceWarehouse, store_sandbox, warehouse_sandbox


@hookimpl
def register_connectors() -> list[ConnectorClass]:
    return [ReferenceStore, ReferenceWarehouse]


@hookimpl
def demo_start_services(demo: DemoContext) -> None:
    demo.add_service("reference sandboxes (in memory)", "memory://reference", lambda: None)


@hookimpl
def demo_create_warehouse(demo: DemoContext, session: Session, provider: Provider,
                          catalog: DemoCatalog) -> Warehouse:
    warehouse = Warehouse(provider_id=provider.id, name="Reference WMS (demo)",
                          connector_id=ReferenceWarehouse.id, settings={"sandbox": "demo"})
    session.add(warehouse)
    session.flush()
    write_credentials(warehouse, {"token": "wms-token"})
    for sku, quantity in catalog.warehouse_stock().items():
        warehouse_sandbox("demo").set_stock(sku, quantity)
    return warehouse


@hookimpl
def demo_create_store(demo: DemoContext, session: Session, merchant: Merchant, warehouse: Warehouse,
                      catalog: DemoCatalog) -> Store:
    store = Store(provider_id=merchant.provider_id, merchant_id=merchant.id, name=f"{merchant.name} shop",
                  connector_id=ReferenceStore.id, external_id=f"demo-{merchant.id}",
                  warehouse_id=warehouse.id, settings={"sandbox": f"demo-{merchant.id}"},
                  state=StoreState.ACTIVE)
    session.add(store)
    session.flush()
    write_credentials(store, {"token": "store-token"})
    for channel in Channel:
        store.channels.append(StoreChannel(provider_id=store.provider_id, merchant_id=store.merchant_id,
                                           channel=channel, interval_seconds=DEFAULT_INTERVALS[channel]))
    sandbox = store_sandbox(f"demo-{merchant.id}")
    for product in catalog.products:
        if product.sku:
            sandbox.add_product(product.sku, tracked=product.tracked)
    return store


@hookimpl
def demo_place_order(demo: DemoContext, store: Store, lines: list[tuple[DemoProduct, int]],
                     shipping_method: str) -> str | None:
    if store.connector_id != ReferenceStore.id:
        return None
    sandbox = store_sandbox(store.settings["sandbox"])
    order_id = sandbox.create_order([{"sku": product.sku, "name": product.name, "quantity": quantity,
                                      "price": product.price} for product, quantity in lines],
                                    shipping_method=shipping_method)
    # The in-memory store has no webhooks to send; announce the order as its webhook would.
    from dropstream.extensions import db
    from dropstream.orders.inbox import receive_order_hint

    receive_order_hint(db.session, store, event_key=f"created:{order_id}", topic="order.created",
                       external_id=order_id, payload={"id": order_id})
    db.session.commit()
    return order_id
