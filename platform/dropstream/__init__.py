"""DropStream: an open integration hub between online stores and warehouses.

The package root re-exports only what plugin authors need (``hookimpl`` and the connector
contract); importing it has no side effects. Build an application with
:func:`dropstream.app.create_app`.
"""

from dropstream.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
