"""Alerts: problems that need a person, grouped per store and reason, resolved when fixed."""
