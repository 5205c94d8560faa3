"""Secrets at rest, passwords and API keys."""
