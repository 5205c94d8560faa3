"""Test support shipped with the core: reference connectors and the connector contract suite."""
