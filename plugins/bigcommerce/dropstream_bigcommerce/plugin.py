"""Hook implementations of the BigCommerce plugin (only these here: discovery stays cheap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropstream import hookimpl
from dropstream.connectors.base import ConnectorClass

if TYPE_CHECKING:
    import click


@hookimpl
def register_connectors() -> list[ConnectorClass]:
    """No connector yet: the BigCommerce storefront connector (OAuth install, orders, shipments,
    inventory, webhooks and its sandbox) lands with its own issue. Until then this shell proves
    the plugin is installed and discovered through its entry point."""
    return []


@hookimpl
def register_commands(cli: click.Group) -> None:
    """``dropstream sandbox bigcommerce``: run the BigCommerce sandbox in the foreground."""
    from dropstream_bigcommerce.sandbox.cli import bigcommerce_sandbox_command

    cli.commands["sandbox"].add_command(bigcommerce_sandbox_command, "bigcommerce")
