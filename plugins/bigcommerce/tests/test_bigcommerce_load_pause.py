"""A 429 without quota headers (BigCommerce under load) holds a store's calls back for a few
seconds only. Recorded as if the quota were spent, it held them until the quota window reset —
up to 30 s — and on the embedded default every job waiting meanwhile kept SQLite's write lock,
stalling the whole pipeline (found by the upstream-faults run, chaos/upstream_faults.py)."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

from typing import Any

import pytest
from bigcommerce_support import app, sandbox, shop
from test_bigcommerce_client import client_for
from tests.conftest import _schema, app_config, database_url

from dropstream.connectors.base import TransientError
from dropstream_bigcommerce.client import LOAD_PAUSE
from dropstream_bigcommerce.ratelimit import LocalLimiter
from dropstream_bigcommerce.runtime import runtime
from dropstream_bigcommerce.sandbox.testing import SandboxStore


def test_a_load_pause_ends_before_the_quota_window_and_keeps_its_count() -> None:
    now = [100.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    limiter.observe("s", 10, 25.0, 30.0)  # the window ends at 125 with 10 left
    limiter.pause("s", 5.0)
    assert 4.9 < limiter.acquire("s") <= 5.0
    now[0] = 105.5  # the pause is over; the window is not
    for _ in range(8):  # the quota it knew is still there (less the reserve)
        assert limiter.acquire("s") == 0
    assert 19 < limiter.acquire("s") < 20


def test_after_a_429_under_load_the_store_is_called_again_within_the_load_pause(
    app: Any, shop: SandboxStore
) -> None:
    limiter = runtime().limiter  # Redis when REDIS_URL is set, else this process's
    # Waits longer than a second go back to the job queue: nothing here sleeps.
    client = client_for(shop, limiter=limiter, max_wait=1.0)
    try:
        client.get("/v2/order_statuses")  # the quota headers: a 30 s window, most of it left
        shop.sandbox.inject("429", store_hash=shop.hash, count=1)
        with pytest.raises(TransientError) as refused:
            client.get("/v2/order_statuses")
        assert refused.value.remote_status == 429
        assert 0 < limiter.acquire(shop.hash) <= LOAD_PAUSE  # not until the window's reset
    finally:
        client.close()
