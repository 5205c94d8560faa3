"""Hook implementations of the generic WMS plugin (only these here: discovery stays cheap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropstream import hookimpl

if TYPE_CHECKING:
    import click
    from flask import Blueprint
    from sqlalchemy.orm import Session

    from dropstream.connectors.base import ConnectorClass
    from dropstream.demo_support import DemoCatalog, DemoContext
    from dropstream.stores.models import Warehouse
    from dropstream.tenants.models import Provider


@hookimpl
def register_connectors() -> list[ConnectorClass]:
    from dropstream_wms_generic.connector import GenericWmsConnector

    return [GenericWmsConnector]


@hookimpl
def register_blueprints() -> list[Blueprint]:
    from dropstream_wms_generic.inbound import build_blueprint

    return [build_blueprint()]


@hookimpl
def register_commands(cli: click.Group) -> None:
    from dropstream_wms_generic.sandbox.cli import wms_sandbox_command

    cli.commands["sandbox"].add_command(wms_sandbox_command)  # type: ignore[attr-defined]


@hookimpl
def demo_start_services(demo: DemoContext) -> None:
    from dropstream_wms_generic.demo import start_sandbox

    start_sandbox(demo)


@hookimpl
def demo_create_warehouse(
    demo: DemoContext, session: Session, provider: Provider, catalog: DemoCatalog
) -> Warehouse | None:
    from dropstream_wms_generic.demo import create_warehouse

    return create_warehouse(demo, session, provider, catalog)
