"""Providers (3PLs), merchants, users, roles, API keys, and the tenant scope every query goes through."""
