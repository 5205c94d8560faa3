"""Mappings between a store and its warehouse: listings (SKUs, bundles) and shipping rules."""
