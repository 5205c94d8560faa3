"""The quota limiter's probe: while a store's window is unknown, or has just reset, one call goes
and the others wait for its answer. Before, every call went until an answer came back, and with
more workers in flight than the reserve a window could take more calls than its quota (1 run in
8 of ``test_workers_sharing_the_limiter_keep_the_store_under_its_quota``).

The in-process limiter is tested on a fake clock; the one the app uses (Redis when REDIS_URL is
set) on the real one, with short windows."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from bigcommerce_support import app, sandbox, shop
from test_bigcommerce_client import client_for
from tests.conftest import _schema, app_config, database_url

from dropstream_bigcommerce.ratelimit import (
    PROBE_POLL,
    PROBE_TIMEOUT,
    UNMETERED_SECONDS,
    Limiter,
    LocalLimiter,
    RedisLimiter,
)
from dropstream_bigcommerce.runtime import redis_connection, runtime
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import SandboxStore, new_store


def held_back(limiter: Limiter, store_hash: str) -> bool:
    """The next reservation waits for a probe's answer (a short poll, not a window's reset)."""
    return 0 < limiter.acquire(store_hash) <= PROBE_POLL


def test_after_a_reset_one_probe_goes_until_its_answer_is_observed() -> None:
    now = [100.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    assert limiter.acquire("s") == 0  # nothing known yet: the probe
    assert held_back(limiter, "s")
    limiter.observe("s", 10, 5.0, 30.0)  # its answer: 10 left, the window ends at 105
    assert [limiter.acquire("s") for _ in range(8)] == [0] * 8
    assert 4.9 < limiter.acquire("s") <= 5.0  # the reserve is kept

    now[0] = 105.0  # the window resets: every worker that waited for it asks at once
    assert limiter.acquire("s") == 0  # one of them probes the new window
    for _ in range(10):
        assert held_back(limiter, "s")
        now[0] += PROBE_POLL / 2
    limiter.observe("s", 149, 29.7, 30.0)  # the probe's answer: the new window's state
    assert [limiter.acquire("s") for _ in range(147)] == [0] * 147
    assert 29 < limiter.acquire("s") < 30


def test_a_late_answer_from_the_ended_window_neither_ends_the_probe_nor_gives_back_quota() -> None:
    now = [100.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    limiter.observe("s", 3, 5.0, 30.0)  # the window ends at 105 with 3 left
    now[0] = 105.0
    assert limiter.acquire("s") == 0  # the probe
    limiter.observe("s", 12, 0.0, 30.0)  # a call sent before the reset answers now
    assert held_back(limiter, "s")  # still the probe's to say
    limiter.observe("s", 20, 29.9, 30.0)  # the probe's answer, though lower than the late one's
    assert [limiter.acquire("s") for _ in range(18)] == [0] * 18
    assert limiter.acquire("s") > 29


def test_a_probe_without_an_answer_holds_the_store_back_for_a_few_seconds_at_most() -> None:
    now = [100.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    assert limiter.acquire("s") == 0  # the probe (its worker dies, or its answer is lost)
    now[0] += PROBE_TIMEOUT - 0.01
    assert 0 < limiter.acquire("s") <= 0.011  # only until the claim expires
    now[0] += 0.01
    assert limiter.acquire("s") == 0  # another probe
    assert held_back(limiter, "s")


def test_a_failed_probe_lets_another_go_at_once_and_a_pause_still_comes_first() -> None:
    now = [100.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    assert limiter.acquire("s") == 0
    limiter.release("s")  # its call failed without quota headers
    assert limiter.acquire("s") == 0
    assert held_back(limiter, "s")
    limiter.release("s")
    limiter.pause("s", 5.0)  # a 429 under load
    assert 4.9 < limiter.acquire("s") <= 5.0
    now[0] += 5.0
    assert limiter.acquire("s") == 0


def test_a_store_without_a_quota_is_not_held_back_but_a_known_window_keeps_its_quota() -> None:
    now = [100.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    assert limiter.acquire("free") == 0  # the probe
    limiter.unmetered("free")  # answered without quota headers
    assert [limiter.acquire("free") for _ in range(1000)] == [0] * 1000
    now[0] += UNMETERED_SECONDS
    assert limiter.acquire("free") == 0  # a probe again, now and then
    assert held_back(limiter, "free")

    limiter.observe("metered", 3, 20.0, 30.0)
    limiter.unmetered("metered")  # a stray answer without the headers
    assert limiter.acquire("metered") == 0
    assert limiter.acquire("metered") > 19  # the reserve is still kept


def the_apps_kind_of_limiter(app: Any, probe_timeout: float = PROBE_TIMEOUT) -> Limiter:
    """A limiter like ``runtime().limiter`` (Redis when REDIS_URL is set), with its own
    settings."""
    connection = redis_connection(app)
    limiter = (
        RedisLimiter(connection, probe_timeout)
        if connection is not None
        else LocalLimiter(probe_timeout=probe_timeout)
    )
    assert type(limiter) is type(runtime().limiter)
    return limiter


def test_the_apps_limiter_lets_one_probe_through_a_reset(app: Any) -> None:
    limiter = runtime().limiter
    store = f"probe-{uuid.uuid4().hex[:8]}"
    assert limiter.acquire(store) == 0  # nothing known yet: the probe
    assert held_back(limiter, store) and held_back(limiter, store)
    limiter.observe(store, 3, 1.0, 2.0)  # its answer: 3 left, the window ends in 1 s
    assert limiter.acquire(store) == 0
    wait = limiter.acquire(store)  # the reserve is kept
    assert PROBE_POLL < wait <= 1.0

    time.sleep(wait)  # the window resets
    assert limiter.acquire(store) == 0  # the new window's probe
    assert held_back(limiter, store) and held_back(limiter, store)
    limiter.observe(store, 3, 0.0, 2.0)  # a call sent before the reset answers late
    assert held_back(limiter, store)
    limiter.observe(store, 9, 1.9, 2.0)  # the probe's answer
    assert [limiter.acquire(store) for _ in range(7)] == [0] * 7
    assert limiter.acquire(store) > 1.0


def test_the_apps_limiter_ends_a_probe_by_failure_timeout_or_a_store_without_quota(
    app: Any,
) -> None:
    limiter = the_apps_kind_of_limiter(app, probe_timeout=0.3)
    store = f"probe-{uuid.uuid4().hex[:8]}"
    assert limiter.acquire(store) == 0
    assert held_back(limiter, store)
    time.sleep(0.35)  # no answer: the claim expires (Redis counts its ms on its own clock)
    assert limiter.acquire(store) == 0
    assert held_back(limiter, store)
    limiter.release(store)  # that one failed
    assert limiter.acquire(store) == 0
    assert held_back(limiter, store)
    limiter.unmetered(store)  # that one was answered without quota headers
    assert [limiter.acquire(store) for _ in range(50)] == [0] * 50


def test_a_failed_call_does_not_hold_the_stores_other_calls_back(
    app: Any, shop: SandboxStore
) -> None:
    shop.sandbox.inject("502", store_hash=shop.hash, count=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    client = client_for(shop, sleep=sleep)  # the app's limiter, as the connector's clients
    try:
        assert client.get("/v2/order_statuses")  # the probe fails, then is retried at once
    finally:
        client.close()
    assert len(waits) == 1 and waits[0] < 0.1  # the 5xx retry's delay, not a probe's polls


def test_a_store_whose_plan_has_no_quota_is_not_called_one_call_at_a_time(
    app: Any, sandbox: BigCommerceSandbox
) -> None:
    unlimited = new_store(sandbox, plan="unlimited")  # its answers carry no quota headers
    limiter = runtime().limiter
    client = client_for(unlimited, limiter=limiter)
    try:
        assert client.get("/v2/order_statuses")  # the probe
    finally:
        client.close()
    assert [limiter.acquire(unlimited.hash) for _ in range(50)] == [0] * 50
