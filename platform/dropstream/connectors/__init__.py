"""The connector contract: canonical types and the base classes connectors implement."""

from dropstream.connectors.base import (
    AuthError,
    Capability,
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorRole,
    RejectedError,
    RemoteNotFound,
    StorefrontConnector,
    TransientError,
    UnreadableOrderError,
    WarehouseConnector,
    redact,
)
from dropstream.connectors.types import *  # noqa: F403
from dropstream.connectors.types import __all__ as _types_all  # type: ignore[attr-defined]

__all__ = [
    "AuthError", "Capability", "Connector", "ConnectorContext", "ConnectorError", "ConnectorRole",
    "RejectedError", "RemoteNotFound", "StorefrontConnector", "TransientError", "UnreadableOrderError",
    "WarehouseConnector", "redact", *_types_all,
]
