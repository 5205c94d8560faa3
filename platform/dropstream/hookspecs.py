"""DropStream's plugin hooks: the reference for plugin authors.

A plugin is a module (usually ``<your_package>/plugin.py``) holding functions decorated with
``@dropstream.hookimpl`` whose names match the specifications below. Publish it through the
``dropstream`` entry-point group of your distribution::

    [project.entry-points.dropstream]
    mystore = "dropstream_mystore.plugin"

Rules (pluggy's, adopted as-is):

* DropStream calls every hook with keyword arguments. An implementation may accept *fewer*
  arguments than the specification lists; new arguments can be added without breaking it.
* ``register_*`` hooks return things to add (lists are concatenated across plugins).
* Past-tense hooks (``order_imported``, …) are notifications. They run after the change has been
  committed; their return value is ignored and an exception in one is logged, never propagated
  into the pipeline (a misbehaving observer must not lose an order).
* Hooks run in the web process, a worker or the CLI, always inside an application context.

Per-tenant work (importing a store's orders, forwarding one order) is **not** a hook: the core
looks up the connector class registered for a row's ``connector_id`` and calls it directly. See
:mod:`dropstream.connectors.base` for that contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from flask import Blueprint

    from sqlalchemy.orm import Session

    from dropstream.connectors.base import ConnectorClass
    from dropstream.connectors.types import InventoryResult
    from dropstream.demo_support import DemoCatalog, DemoContext, DemoProduct
    from dropstream.stores.models import Store, Warehouse
    from dropstream.tenants.models import Merchant, Provider

hookspec = pluggy.HookspecMarker("dropstream")
hookimpl = pluggy.HookimplMarker("dropstream")


# -------------------------------------------------------------------------------------------------
# Registration hooks: called once when the application is created.
# -------------------------------------------------------------------------------------------------


@hookspec
def register_connectors() -> list[ConnectorClass]:
    """Return the connector classes this plugin provides.

    Each class subclasses :class:`~dropstream.connectors.base.StorefrontConnector` or
    :class:`~dropstream.connectors.base.WarehouseConnector` and sets ``id`` (stable, unique across
    all plugins), ``name``, ``capabilities``, ``settings_schema`` and ``credentials_schema``.
    A duplicate ``id`` stops the application from starting, naming both plugins.

    :returns: a list of connector classes (may be empty).
    """


@hookspec
def register_blueprints() -> list[Blueprint]:
    """Return Flask blueprints to mount on the application.

    Use this for a connector's web routes: OAuth install callbacks, webhook receivers, inbound
    endpoints a remote system calls. Give each blueprint a ``url_prefix`` under your connector's
    id (``/connectors/<id>/…``) so routes never collide. Routes that act for a tenant must resolve
    it from a verified credential (a signed payload, a per-store secret), never from the URL alone.

    :returns: a list of blueprints (may be empty).
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``dropstream`` command line.

    :param cli: the application's command group, merged into ``dropstream``; call
        ``cli.add_command(...)`` on it. Commands run inside an application context (use
        ``flask.cli.with_appcontext`` when they need one). A sandbox command goes into the shared
        group ``cli.commands["sandbox"]``: the BigCommerce plugin adds
        ``dropstream sandbox bigcommerce`` this way.
    """


# -------------------------------------------------------------------------------------------------
# Order lifecycle notifications: called after the change is committed.
# -------------------------------------------------------------------------------------------------


@hookspec
def order_imported(order_id: int, store_id: int, merchant_id: int, external_id: str) -> None:
    """An order was imported from a store for the first time.

    :param order_id: DropStream's order id.
    :param store_id: the store it came from.
    :param merchant_id: the merchant owning the store (the tenant).
    :param external_id: the store's own order id.
    """


@hookspec
def order_held(order_id: int, merchant_id: int, reason: str, detail: str) -> None:
    """An order was put on hold and needs a person (or a mapping) before it can go on.

    :param order_id: DropStream's order id.
    :param merchant_id: the tenant.
    :param reason: the stable hold reason code (``no_sku``, ``unknown_sku``,
        ``unmapped_shipping_method``, ``invalid_address``, ``invalid_quantity``, ``manual``).
    :param detail: the human message, naming the field and the fix.
    """


@hookspec
def order_released(order_id: int, merchant_id: int, automatic: bool) -> None:
    """A held order passed validation again and is queued for the warehouse.

    :param order_id: DropStream's order id.
    :param merchant_id: the tenant.
    :param automatic: True when adding the missing listing or shipping rule released it; False
        when a person released it.
    """


@hookspec
def order_forwarded(order_id: int, merchant_id: int, warehouse_order_ids: list[str]) -> None:
    """The warehouse accepted the order.

    :param order_id: DropStream's order id.
    :param merchant_id: the tenant.
    :param warehouse_order_ids: the WMS's ids, one per consignment (ship-to address).
    """


@hookspec
def order_shipped(order_id: int, merchant_id: int, shipment_id: int, complete: bool) -> None:
    """A warehouse shipment was posted to the store.

    :param order_id: DropStream's order id.
    :param merchant_id: the tenant.
    :param shipment_id: DropStream's shipment id.
    :param complete: True when every shippable line has now shipped.
    """


@hookspec
def inventory_pushed(store_id: int, merchant_id: int, results: list[InventoryResult]) -> None:
    """A batch of stock levels was pushed to a store.

    :param store_id: the store.
    :param merchant_id: the tenant.
    :param results: one :class:`~dropstream.connectors.types.InventoryResult` per item, including
        the skipped ones with their reason.
    """


# -------------------------------------------------------------------------------------------------
# The demo: how a connector plugin takes part in `dropstream demo` (the core never imports it).
# -------------------------------------------------------------------------------------------------


@hookspec
def demo_start_services(demo: DemoContext) -> None:
    """Start this plugin's sandbox (a real HTTP server standing in for the remote system) for the
    demo, on a free loopback port, and register it with ``demo.add_service(name, url, stop)``.

    :param demo: the run's context: the app, the public address DropStream listens on (for
        webhooks and callbacks), a seeded random generator, and the services started so far.
    """


@hookspec(firstresult=True)
def demo_create_warehouse(demo: DemoContext, session: Session, provider: Provider,
                          catalog: DemoCatalog) -> Warehouse | None:
    """Create (flushed, not committed) a warehouse of ``provider`` connected to this plugin's
    sandbox, stocked with ``catalog.warehouse_stock()``.

    :param demo: the run's context (see :func:`demo_start_services`).
    :param session: the database session to add the warehouse to.
    :param provider: the demo's fulfillment provider, owner of the warehouse.
    :param catalog: the demo's products; the sandbox stocks their warehouse SKUs.
    :returns: the warehouse, or ``None`` to let another plugin provide it.
    """


@hookspec(firstresult=True)
def demo_create_store(demo: DemoContext, session: Session, merchant: Merchant,
                      warehouse: Warehouse, catalog: DemoCatalog) -> Store | None:
    """Create a store for ``merchant`` in this plugin's sandbox with ``catalog``'s products, and
    its DropStream store row linked to ``warehouse``, connected and active (credentials set,
    webhooks registered). The core adds the listings and shipping rules.

    :param demo: the run's context (see :func:`demo_start_services`).
    :param session: the database session to add the store to (flushed, not committed).
    :param merchant: the merchant owning the store.
    :param warehouse: the warehouse the store's orders go to.
    :param catalog: the products to create in the sandbox store.
    :returns: the store, or ``None`` to let another plugin provide it.
    """


@hookspec(firstresult=True)
def demo_place_order(demo: DemoContext, store: Store, lines: list[tuple[DemoProduct, int]],
                     shipping_method: str) -> str | None:
    """Place an order in ``store``'s sandbox that reaches the status DropStream monitors (so the
    sandbox's webhook announces it), with ``lines`` as ``(product, quantity)``.

    :param demo: the run's context (see :func:`demo_start_services`).
    :param store: the DropStream store whose sandbox store gets the order.
    :param lines: the products ordered and their quantities.
    :param shipping_method: the shipping method the shopper chose (a name from the catalog).
    :returns: the store's order id, or ``None`` if ``store`` is not this plugin's.
    """


def hook_names() -> list[str]:
    """The names of every hook above (for documentation and tests)."""
    return sorted(name for name, value in globals().items() if _is_spec(value))


def _is_spec(value: Any) -> bool:
    return callable(value) and hasattr(value, "dropstream_spec")
