"""Warehouses (a provider's WMS connections) and stores (a merchant's storefront connections)."""
