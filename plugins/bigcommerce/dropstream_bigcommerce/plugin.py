"""Hook implementations of the BigCommerce plugin (only these here: discovery stays cheap, so
each hook imports what it needs when it is called)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropstream import hookimpl

if TYPE_CHECKING:
    import click
    from flask import Blueprint
    from sqlalchemy.orm import Session

    from dropstream.connectors.base import ConnectorClass
    from dropstream.demo_support import DemoCatalog, DemoContext, DemoProduct
    from dropstream.stores.models import Store, Warehouse
    from dropstream.tenants.models import Merchant


@hookimpl
def register_connectors() -> list[ConnectorClass]:
    """The BigCommerce storefront connector."""
    from dropstream_bigcommerce.connector import BigCommerceConnector

    return [BigCommerceConnector]


@hookimpl
def register_blueprints() -> list[Blueprint]:
    """Webhooks, the app install and its signed callbacks, under /connectors/bigcommerce."""
    from dropstream_bigcommerce.views import blueprint

    return [blueprint()]


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``dropstream sandbox bigcommerce``: run the BigCommerce sandbox in the foreground."""
    from dropstream_bigcommerce.sandbox.cli import bigcommerce_sandbox_command

    cli.commands["sandbox"].add_command(bigcommerce_sandbox_command, "bigcommerce")


@hookimpl
def demo_start_services(demo: DemoContext) -> None:
    """Start a BigCommerce sandbox for the demo."""
    from dropstream_bigcommerce import demo as bigcommerce_demo

    bigcommerce_demo.start_services(demo)


@hookimpl
def demo_create_store(
    demo: DemoContext,
    session: Session,
    merchant: Merchant,
    warehouse: Warehouse,
    catalog: DemoCatalog,
) -> Store | None:
    """A sandbox store with the catalog's products, connected and active in DropStream."""
    from dropstream_bigcommerce import demo as bigcommerce_demo

    return bigcommerce_demo.create_store(demo, session, merchant, warehouse, catalog)


@hookimpl
def demo_place_order(
    demo: DemoContext, store: Store, lines: list[tuple[DemoProduct, int]], shipping_method: str
) -> str | None:
    """An order at the store's monitored status in its sandbox store (its webhooks announce it)."""
    from dropstream_bigcommerce import demo as bigcommerce_demo

    return bigcommerce_demo.place_order(demo, store, lines, shipping_method)
