"""Registers the reference connectors. Not an entry point: tests and embedding code register it
explicitly (``create_app(plugins=[("reference", plugin)])``), so production never loads it."""

from __future__ import annotations

from dropstream.connectors.base import ConnectorClass
from dropstream.hookspecs import hookimpl
from dropstream.testing.reference import ReferenceStore, ReferenceWarehouse


@hookimpl
def register_connectors() -> list[ConnectorClass]:
    return [ReferenceStore, ReferenceWarehouse]
