"""Shipments confirmed by warehouses and posted back to stores."""
