"""The plugin's per-app state: where the quota limiter, the catalog index and the pending status
checks keep their data.

With Redis (``REDIS_URL``), they live there, shared by every worker process, on the connection
the core's job queue already holds (so it is closed with the app's queue). On the embedded
default they live in this process. Built lazily on first use, one per app: nothing global.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from dropstream.state import get_state
from dropstream_bigcommerce.catalog_index import CatalogStore, LocalCatalogStore, RedisCatalogStore
from dropstream_bigcommerce.ratelimit import Limiter, LocalLimiter, RedisLimiter
from dropstream_bigcommerce.status_checks import CheckStore, LocalCheckStore, RedisCheckStore

EXTENSION = "dropstream_bigcommerce"


@dataclass
class PluginRuntime:
    limiter: Limiter
    catalog: CatalogStore
    status_checks: CheckStore


def runtime(app: Flask | None = None) -> PluginRuntime:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get(EXTENSION)
    if state is None:
        connection = redis_connection(app)
        if connection is not None:
            state = PluginRuntime(
                RedisLimiter(connection), RedisCatalogStore(connection), RedisCheckStore(connection)
            )
        else:
            state = PluginRuntime(LocalLimiter(), LocalCatalogStore(), LocalCheckStore())
        app.extensions[EXTENSION] = state
    return state


def redis_connection(app: Flask) -> Any:
    """The job queue's Redis connection, or None on the embedded (in-process) queue."""
    return getattr(get_state(app).queue, "connection", None)
