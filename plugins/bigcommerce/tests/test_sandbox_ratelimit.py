"""The per-store quota: headers on every answer, 429 past the quota, a fresh window after."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.ratelimit import RateLimiter
from dropstream_bigcommerce.sandbox.state import Store
from dropstream_bigcommerce.sandbox.testing import new_store

HEADERS = ("X-Rate-Limit-Time-Window-Ms", "X-Rate-Limit-Time-Reset-Ms",
           "X-Rate-Limit-Requests-Quota", "X-Rate-Limit-Requests-Left")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox() as sandbox:
        yield sandbox


def test_every_answer_carries_the_quota_headers_of_the_plan(sandbox: BigCommerceSandbox) -> None:
    standard, pro = new_store(sandbox), new_store(sandbox, plan="pro")
    with standard.client() as api, pro.client() as pro_api:
        first, second = api.get("/v2/orders"), api.get("/v3/catalog/products")
        missing = api.get("/v2/orders/12345")
        pro_answer = pro_api.get("/v2/store")

    for response in (first, second, missing):
        assert all(name in response.headers for name in HEADERS)  # case-insensitive lookup
    assert "x-rate-limit-requests-left" in list(first.raw.headers)  # sent in lower case
    assert first.headers["X-Rate-Limit-Time-Window-Ms"] == "30000"
    assert first.headers["X-Rate-Limit-Requests-Quota"] == "150"
    assert [int(r.headers["X-Rate-Limit-Requests-Left"]) for r in (first, second, missing)] == [
        149, 148, 147]
    assert 0 < int(second.headers["X-Rate-Limit-Time-Reset-Ms"]) <= 30000
    assert pro_answer.headers["X-Rate-Limit-Requests-Quota"] == "450"


def test_past_the_quota_the_answer_is_429_until_the_window_resets(sandbox: BigCommerceSandbox) -> None:
    store = new_store(sandbox)
    sandbox.set_rate_limit(store.hash, quota=3, window_ms=400)
    sandbox.add_product(store.hash, name="Tee", sku="TEE")
    order_id = sandbox.create_order(store.hash, lines=[{"sku": "TEE"}])

    with store.client() as api:
        allowed = [api.get("/v2/orders") for _ in range(3)]
        refused = api.put(f"/v2/orders/{order_id}", json={"status_id": 9})
        time.sleep(0.45)
        after_reset = api.get("/v2/orders")

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Requests-Left"] == "0"
    assert int(refused.headers["X-Retry-After"]) >= 1
    assert 0 < int(refused.headers["X-Rate-Limit-Time-Reset-Ms"]) <= 400
    assert refused.json()[0]["status"] == 429
    assert sandbox.get_order(store.hash, order_id)["status_id"] == 11  # refused means not done
    assert after_reset.status_code == 200
    assert after_reset.headers["X-Rate-Limit-Requests-Left"] == "2"
    stats = sandbox.stats(store.hash)
    assert (stats["calls"], stats["responses_429"], stats["max_calls_in_window"]) == (5, 1, 4)
    assert stats["quota"] == 3 and stats["max_calls_in_sliding_window"] >= 4


def test_the_quota_is_shared_by_all_clients_of_a_store(sandbox: BigCommerceSandbox) -> None:
    store = new_store(sandbox)
    other_client = sandbox.create_api_account(store.hash)
    sandbox.set_rate_limit(store.hash, quota=2)
    with store.client() as api, store.client(other_client["access_token"]) as other:
        statuses = [api.get("/v2/store").status_code, other.get("/v2/store").status_code,
                    other.get("/v2/store").status_code]
    assert statuses == [200, 200, 429]


def test_the_unlimited_plan_and_a_sandbox_without_limits_send_no_quota(
        sandbox: BigCommerceSandbox) -> None:
    unlimited = new_store(sandbox, plan="unlimited")
    with unlimited.client() as api:
        answers = [api.get("/v2/time") for _ in range(151)]  # past a standard quota
    assert {r.status_code for r in answers} == {200}
    assert "X-Rate-Limit-Requests-Left" not in answers[0].headers

    with BigCommerceSandbox(rate_limits=False) as free:
        store = new_store(free)
        free.set_rate_limit(store.hash, quota=1)
        with store.client() as api:
            assert [api.get("/v2/store").status_code for _ in range(3)] == [200, 200, 200]


def test_windows_follow_each_other_back_to_back_across_idle_gaps() -> None:
    """A client can predict every reset from one header: after 2.5 idle windows the next reset
    comes where the 3rd window ends, not a full window after the next request."""
    store = Store(hash="aligned", store_id=1, name="Aligned", plan="standard", created=0.0,
                  account_uuid="0", quota=2, window_ms=1000)
    limiter = RateLimiter()

    first = limiter.consume(store, now=100.0)
    later = limiter.consume(store, now=102.5)
    full = [limiter.consume(store, now=102.6), limiter.consume(store, now=102.7)]

    assert first[1]["x-rate-limit-time-reset-ms"] == "1000"
    assert later[1]["x-rate-limit-time-reset-ms"] == "500"
    assert later[1]["x-rate-limit-requests-left"] == "1"  # a fresh window began at 102.0
    assert [allowed for allowed, _ in full] == [True, False]
    assert full[1][1]["x-retry-after"] == "1"
