"""The API client over real HTTP against the sandbox: pagination of both API versions, both
error shapes turned into typed errors, faults, the quota across "workers", and no secret in
any error or log line."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from bigcommerce_support import add_products, app, connector, credentials_of, sandbox, shop
from tests.conftest import _schema, app_config, database_url

from dropstream.connectors.base import AuthError, RejectedError, RemoteNotFound, TransientError
from dropstream.net.outbound import OutboundSession, app_policy
from dropstream_bigcommerce.client import BigCommerceClient
from dropstream_bigcommerce.ratelimit import LocalLimiter, RedisLimiter
from dropstream_bigcommerce.runtime import redis_connection, runtime
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import SandboxStore


def client_for(
    shop: SandboxStore, token: str | None = None, limiter: Any = None, **kwargs: Any
) -> BigCommerceClient:
    return BigCommerceClient(
        shop.sandbox.api_base_url,
        shop.hash,
        token or shop.token,
        session=OutboundSession(app_policy()),
        limiter=limiter or runtime().limiter,
        retry_delays=(0.01, 0.01),
        **kwargs,
    )


def test_v2_lists_page_until_a_short_page_and_treat_204_as_empty(
    app: Any, shop: SandboxStore
) -> None:
    add_products(shop, ("P-1", "product"))
    ids = [shop.sandbox.create_order(shop.hash, lines=[{"sku": "P-1"}]) for _ in range(5)]
    client = client_for(shop)
    try:
        pages = list(client.v2_pages("/v2/orders", {"sort": "id:asc"}, limit=2))
        assert [[o["id"] for o in page] for page in pages] == [ids[:2], ids[2:4], ids[4:]]
        assert client.calls == 3  # the short third page ends it: no fourth call
        assert list(client.v2_pages(f"/v2/orders/{ids[0]}/shipments")) == []  # 204 No Content
    finally:
        client.close()


def test_v3_lists_follow_meta_pagination(app: Any, shop: SandboxStore) -> None:
    add_products(shop, *[(f"V3-{n}", "product") for n in range(5)])
    client = client_for(shop)
    try:
        pages = list(client.v3_pages("/v3/catalog/products", limit=2))
        assert [len(page) for page in pages] == [2, 2, 1] and client.calls == 3
    finally:
        client.close()


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda c: c.get("/v2/orders/999999"), RemoteNotFound, "404"),
        (lambda c: c.get("/v3/catalog/products/999999"), RemoteNotFound, "404"),
        (
            lambda c: c.post(
                "/v3/hooks", {"scope": "store/order/created", "destination": "ftp://x"}
            ),
            RejectedError,
            "destination",
        ),
        (
            lambda c: c.put(f"/v2/orders/{c.order_id}", {"items_total": 3}),
            RejectedError,
            "cannot be written",
        ),
    ],
)
def test_both_error_shapes_become_typed_errors_with_bigcommerces_words(
    app: Any, shop: SandboxStore, call: Any, error: type, words: str
) -> None:
    add_products(shop, ("E-1", "product"))
    client = client_for(shop)
    order_id = shop.sandbox.create_order(shop.hash, lines=[{"sku": "E-1"}])
    client.order_id = order_id  # type: ignore[attr-defined]
    try:
        with pytest.raises(error) as raised:
            call(client)
    finally:
        client.close()
    assert words in raised.value.message
    if error is RejectedError and words == "destination":
        assert raised.value.field == "destination"  # the v3 ``errors`` member names the field


def test_a_wrong_token_and_a_missing_scope_are_auth_errors_that_say_which(
    app: Any, sandbox: BigCommerceSandbox
) -> None:
    store_hash = sandbox.create_store()
    orders_only = sandbox.create_api_account(store_hash, ["store_v2_orders"])
    store = SandboxStore(sandbox, store_hash, orders_only)
    client = client_for(store)
    try:
        with pytest.raises(AuthError) as missing:
            client.put("/v3/inventory/adjustments/absolute", {"items": []})
        assert missing.value.code == "missing_scope" and missing.value.remote_status == 403
        assert (
            "Store Inventory" in missing.value.message
            and "store_inventory" in missing.value.message
        )
        assert "Store-level API accounts" in missing.value.message
    finally:
        client.close()
    bad = client_for(store, token="wrong-token-0123456789")
    try:
        with pytest.raises(AuthError) as refused:
            bad.get("/v2/orders")
        assert refused.value.remote_status == 401 and "access token" in refused.value.message
    finally:
        bad.close()


@pytest.mark.parametrize("kind", ["reset", "truncated", "html", "502"])
def test_outages_and_unreadable_bodies_are_transient(
    app: Any, shop: SandboxStore, kind: str
) -> None:
    shop.sandbox.inject(kind, store_hash=shop.hash, count=3)  # more than the retries of one call
    client = client_for(shop)
    try:
        with pytest.raises(TransientError):
            client.get("/v2/order_statuses")
    finally:
        client.close()


def test_a_slow_answer_times_out_as_transient(app: Any, shop: SandboxStore) -> None:
    shop.sandbox.inject("slow", store_hash=shop.hash, delay=2.0)
    client = BigCommerceClient(
        shop.sandbox.api_base_url,
        shop.hash,
        shop.token,
        session=OutboundSession(app_policy(read_timeout=0.3)),
        limiter=LocalLimiter(),
        retry_delays=(),
    )
    try:
        with pytest.raises(TransientError, match="in time"):
            client.get("/v2/order_statuses")
    finally:
        client.close()


def test_5xx_is_retried_a_bounded_number_of_times_reads_only(app: Any, shop: SandboxStore) -> None:
    shop.sandbox.inject("503", store_hash=shop.hash, count=2, retry_after=7)
    client = client_for(shop)
    try:
        assert client.get("/v2/order_statuses")  # two 503s, then the answer
        assert client.calls == 3
        shop.sandbox.inject("503", store_hash=shop.hash, count=1, retry_after=7)
        with pytest.raises(TransientError) as failed:  # a POST is not repeated blindly
            client.post(
                "/v3/hooks", {"scope": "store/order/created", "destination": "https://127.0.0.1/x"}
            )
        assert failed.value.retry_after == 7 and failed.value.remote_status == 503
    finally:
        client.close()


class Heedless:
    """A limiter that never holds back (another app on the store spending the quota)."""

    def acquire(self, store_hash: str) -> float:
        return 0.0

    def observe(self, *args: Any) -> None:
        pass

    def pause(self, *args: Any) -> None:
        pass

    def release(self, store_hash: str) -> None:
        pass

    def unmetered(self, store_hash: str) -> None:
        pass


class Scripted(Heedless):
    """A limiter whose acquires answer the waits it was given, then 0; it counts them."""

    def __init__(self, *waits: float) -> None:
        self.waits = list(waits)
        self.acquires = 0

    def acquire(self, store_hash: str) -> float:
        self.acquires += 1
        return self.waits.pop(0) if self.waits else 0.0


def test_after_every_wait_the_client_asks_the_limiter_again(app: Any, shop: SandboxStore) -> None:
    """A wait ends at a window's reset, when every waiting worker would send at once: who goes
    then is the limiter's to say."""
    limiter = Scripted(1.5, 0.05, 0.05)  # the reset, then a probe's answer awaited twice
    waits: list[float] = []
    client = client_for(shop, limiter=limiter, sleep=waits.append)
    try:
        assert client.get("/v2/order_statuses")
    finally:
        client.close()
    assert waits == [1.5, 0.05, 0.05] and limiter.acquires == 4 and client.calls == 1


def test_a_call_waits_for_the_quota_at_most_max_wait_in_all(app: Any, shop: SandboxStore) -> None:
    """Bounded by the waits asked for, not the clock: a sleep that does not sleep cannot spin."""
    waits: list[float] = []
    client = client_for(shop, limiter=Scripted(*[10.0] * 100), max_wait=35.0, sleep=waits.append)
    try:
        with pytest.raises(TransientError, match="holding back") as held:
            client.get("/v2/order_statuses")
    finally:
        client.close()
    assert waits == [10.0] * 3 and held.value.retry_after == 10.0 and client.calls == 0


def test_a_429_is_waited_out_by_its_reset_header(app: Any, shop: SandboxStore) -> None:
    shop.sandbox.set_rate_limit(shop.hash, quota=3, window_ms=400)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        threading.Event().wait(seconds)

    client = client_for(shop, limiter=Heedless(), sleep=sleep)
    try:
        for _ in range(6):
            assert client.get("/v2/order_statuses")
    finally:
        client.close()
    statuses = [entry["status"] for entry in shop.sandbox.call_log(shop.hash)]
    assert statuses.count(429) == len(waits) >= 1 and statuses.count(200) == 6
    assert all(0 < wait <= 0.45 for wait in waits)  # the reset header's time, not a guess


def test_the_limiter_holds_calls_back_before_the_quota_runs_out(
    app: Any, shop: SandboxStore
) -> None:
    shop.sandbox.set_rate_limit(shop.hash, quota=4, window_ms=300)
    client = client_for(shop, limiter=LocalLimiter())
    try:
        for _ in range(8):
            client.get("/v2/order_statuses")
    finally:
        client.close()
    assert shop.sandbox.stats(shop.hash)["responses_429"] == 0


def test_after_a_429_no_call_goes_out_before_its_reset_whatever_answers_arrive_late(
    app: Any, shop: SandboxStore
) -> None:
    limiter = runtime().limiter  # Redis when REDIS_URL is set: what every worker process shares
    shop.sandbox.inject("429_reset", store_hash=shop.hash, count=1, retry_after=3)
    # Waits longer than a second go back to the job queue: nothing here sleeps.
    client = client_for(shop, limiter=limiter, max_wait=1.0)
    try:
        with pytest.raises(TransientError) as refused:
            client.get("/v2/order_statuses")
        assert refused.value.remote_status == 429 and refused.value.retry_after == 3
    finally:
        client.close()
    # An answer to a call another worker sent before the refusal arrives now, reporting a
    # window with requests left.
    limiter.observe(shop.hash, 1000, 25.0, 30.0)

    assert 1.0 < limiter.acquire(shop.hash) <= 3.0, "calls wait for the refusal's reset"


def test_the_429_without_headers_under_load_is_retried_then_transient(
    app: Any, shop: SandboxStore
) -> None:
    shop.sandbox.inject("429", store_hash=shop.hash, count=10)
    now = [0.0]  # a clock that the client's waits move, not the test's

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client = client_for(shop, limiter=LocalLimiter(clock=lambda: now[0]), sleep=sleep)
    try:
        with pytest.raises(TransientError) as failed:
            client.get("/v2/order_statuses")
        assert failed.value.remote_status == 429 and failed.value.retry_after
    finally:
        client.close()


def test_workers_sharing_the_limiter_keep_the_store_under_its_quota(
    app: Any, shop: SandboxStore
) -> None:
    """Four "workers" (threads, each with its own client, as processes would have) share the
    app's limiter (Redis when REDIS_URL is set) and never see a quota refusal. (The window is
    far shorter than BigCommerce's 30 s, but long enough for a busy test machine's delays.)"""
    shop.sandbox.set_rate_limit(shop.hash, quota=14, window_ms=1500)
    limiter = runtime().limiter
    assert isinstance(limiter, RedisLimiter if redis_connection(app) is not None else LocalLimiter)
    # Teach the limiter where the window stands, as the first response of a worker does.
    first = client_for(shop, limiter=limiter)
    first.get("/v2/order_statuses")
    first.close()
    errors: list[BaseException] = []
    clients = [client_for(shop, limiter=limiter) for _ in range(4)]

    def worker(client: BigCommerceClient) -> None:
        try:
            for _ in range(8):
                client.get("/v2/order_statuses")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    stats = shop.sandbox.stats(shop.hash)
    assert stats["calls"] == 33 and stats["responses_429"] == 0


def test_no_secret_reaches_an_error_or_a_log_line(
    app: Any, shop: SandboxStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = shop.token
    add_products(shop, ("S-1", "product"))
    shop.sandbox.create_order(shop.hash, lines=[{"sku": "S-1"}])  # a body to truncate
    messages = []
    for kind in ("502", "reset", "401", "truncated"):
        shop.sandbox.inject(kind, store_hash=shop.hash, count=3)
        c = connector(shop)
        try:
            c.fetch_orders(None)
        except (TransientError, AuthError) as error:
            messages.append(error.message)
        shop.sandbox.clear_faults()
    assert len(messages) == 4
    secret = credentials_of(shop)["client_secret"]
    for text in [*messages, caplog.text]:
        assert token not in text and secret not in text


def test_without_redis_calls_go_on_and_the_catalog_index_says_try_later(
    app: Any, shop: SandboxStore
) -> None:
    from redis import Redis

    from dropstream_bigcommerce.catalog_index import CatalogIndex, RedisCatalogStore

    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        client = client_for(shop, limiter=RedisLimiter(down))
        try:
            assert client.get("/v2/order_statuses")  # the quota state is lost, not the call
            with pytest.raises(TransientError, match="catalog index"):
                CatalogIndex(RedisCatalogStore(down), client).lookup(["ANY"])
        finally:
            client.close()
    finally:
        down.close()


def test_answers_out_of_order_or_late_never_give_back_quota_within_a_window() -> None:
    now = [100.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    limiter.observe("s", 10, 20.0, 30.0)  # window ends at 120
    assert limiter.acquire("s") == 0  # 9 left after this reservation
    now[0] += 0.4  # a slow answer of an earlier request...
    limiter.observe("s", 12, 19.9, 30.0)  # ...says more were left: ignored
    for _ in range(7):
        assert limiter.acquire("s") == 0
    assert 19.5 < limiter.acquire("s") < 20  # the reserve is kept: wait for the reset
    now[0] = 121.0  # a new window: its first answer counts
    limiter.observe("s", 149, 30.0, 30.0)
    assert limiter.acquire("s") == 0
