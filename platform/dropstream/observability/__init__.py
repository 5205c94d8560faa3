"""Seeing what DropStream does: structured logs with tenant and job ids, Prometheus metrics."""
