"""Warehouse stock levels and what is pushed to each store."""
