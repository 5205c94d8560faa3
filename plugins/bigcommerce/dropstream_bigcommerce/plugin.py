"""Hook implementations of the BigCommerce plugin (only these here: discovery stays cheap)."""

from __future__ import annotations

from dropstream import hookimpl
from dropstream.connectors.base import ConnectorClass


@hookimpl
def register_connectors() -> list[ConnectorClass]:
    """No connector yet: the BigCommerce storefront connector (OAuth install, orders, shipments,
    inventory, webhooks and its sandbox) lands with its own issue. Until then this shell proves
    the plugin is installed and discovered through its entry point."""
    return []
