"""The invariant checker proves itself: a clean run over the real sandboxes is reported clean,
and each breach made on purpose — de-duplication off at the warehouse and in the connector, an
inbox write or a shipment record dropped, a store driven past its quota, a row filed under the
wrong tenant, a call made with another store's token — is reported, naming the offender.

Jobs run in this process (threads, or an RQ worker thread on Redis) so the patches apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from chaos.harness import FaultRun, Options
from dropstream.extensions import db
from dropstream.orders.models import Order
from dropstream.tenants.scope import unscoped


@pytest.fixture
def start_run(app_config: dict[str, object], fresh_database_url: str
              ) -> Iterator[Callable[..., FaultRun]]:
    runs: list[FaultRun] = []

    def start(**options: Any) -> FaultRun:
        run = FaultRun(Options(merchants=2, thread_workers=True, flush_redis=True, **options),
                       fresh_database_url, app_config)
        runs.append(run.__enter__())
        return run

    yield start
    for run in runs:
        run.close()


def token_of(run: FaultRun, store_id: int) -> str:
    store = run.bigcommerce.state.stores[run.hashes[store_id]]
    return next(iter(store.accounts.values())).access_token


def test_a_clean_run_is_clean_and_injected_breaches_are_named(
        start_run: Callable[..., FaultRun]) -> None:
    run = start_run()
    run.place_orders(4)
    drained, _seconds, report = run.drain(timeout=45)
    assert drained and report.ok, report.summary()
    assert report.checked["store orders eligible"] == 4
    assert report.checked["WMS shipments"] >= 4 and report.checked["stock items"] > 0

    first, second = run.store_ids
    # A store driven past its quota: a quota of 2 a window and five calls.
    run.bigcommerce.set_rate_limit(run.hashes[first], quota=2, window_ms=60_000)
    with requests.Session() as api:
        api.headers["X-Auth-Token"] = token_of(run, first)
        answers = [api.get(f"{run.bigcommerce.base_url}/stores/{run.hashes[first]}/v2/orders/count",
                           timeout=10).status_code for _ in range(5)]
        # A call about one store made with another store's token.
        api.headers["X-Auth-Token"] = token_of(run, second)
        api.get(f"{run.bigcommerce.base_url}/stores/{run.hashes[first]}/v2/orders",
                timeout=10).close()
    assert answers.count(429) == 3
    # A row filed under the wrong tenant: an order of the first store given the second's merchant.
    with run.app.app_context(), unscoped(db.session):
        order = db.session.scalars(select(Order).where(Order.store_id == first)).first()
        other = db.session.scalars(select(Order).where(Order.store_id == second)).first()
        order.merchant_id = other.merchant_id
        moved = f"order {order.external_id} (DropStream order {order.id})"
        db.session.commit()
        db.session.remove()

    # A batch sent to the WMS naming an order of the first store under another account.
    planted, other_account = f"DS-{first}-999999", "NOT-THEIRS"
    requests.post(f"{run.wms.url}/v1/orders/batch", timeout=10, json={
        "orders": [{"reference": planted, "account": other_account}]}).close()

    report = run.check()
    assert not report.ok
    assert [o.subject for o in report.quota_breaches] == [f"store {run.hashes[first]}"]
    assert "3 requests refused over its quota of 2" in report.quota_breaches[0].problem
    wrong = [str(o) for o in report.wrong_tenant]
    assert any(moved in line and "belongs to merchant" in line for line in wrong), wrong
    assert any(f"made with store {run.hashes[second]}'s token" in line for line in wrong), wrong
    assert any("/v1/orders/batch" in line and f"{planted} (store {first}" in line
               and f"under account {other_account}" in line for line in wrong), wrong
    assert not (report.orders_lost or report.orders_duplicated_at_warehouse
                or report.shipments_never_posted or report.shipments_posted_twice)
    assert "quota breaches: 1" in report.summary()


def test_a_warehouse_order_made_twice_is_reported(
        start_run: Callable[..., FaultRun], monkeypatch: pytest.MonkeyPatch) -> None:
    from dropstream_wms_generic.connector import GenericWmsConnector

    # Neither the WMS (no de-duplication) nor the connector (no look-before-create) stops a
    # second create after a lost reply.
    monkeypatch.setattr(GenericWmsConnector, "_find", lambda self, client, account, reference: None)
    run = start_run()
    run.wms.configure(dedupe=False, auto_ship=False)
    run.wms.inject("lose_reply", on="create_order")
    run.place_orders(1)
    # The retry comes after the forward's first backoff (about 5 s).
    assert run.wait_for(lambda: len(run.wms.orders()) >= 2, timeout=30, poll=0.5)

    report = run.check()
    reference = run.wms.orders()[0]["reference"]
    duplicated = report.orders_duplicated_at_warehouse
    assert [o.subject for o in duplicated] == [f"WMS reference {reference}"]
    assert "2 orders" in report.orders_duplicated_at_warehouse[0].problem


def test_a_dropped_inbox_write_is_reported_lost(
        start_run: Callable[..., FaultRun], monkeypatch: pytest.MonkeyPatch) -> None:
    import dropstream_bigcommerce.webhooks as webhooks

    # The webhook route answers as if it had stored the hint, but nothing is written; no sweep.
    monkeypatch.setattr(webhooks, "receive_order_hint", lambda *args, **kwargs: True)
    run = start_run(sweep=False)
    (store_id, order_id), = run.place_orders(1)
    assert run.bigcommerce.wait_for_webhooks(15)

    report = run.check()
    store_hash = run.hashes[store_id]
    assert [str(o) for o in report.orders_lost] == [
        f"store {store_hash} order {order_id}: reached the monitored status; DropStream never "
        "imported it"]
    unrecorded = report.webhooks_acknowledged_without_inbox
    assert unrecorded
    assert all(f"store {store_hash} order {order_id}" in o.subject for o in unrecorded)


def test_a_skipped_shipment_record_is_reported_never_posted(
        start_run: Callable[..., FaultRun], monkeypatch: pytest.MonkeyPatch) -> None:
    import dropstream.fulfillment.services as fulfillment
    import dropstream_wms_generic.inbound as inbound

    def refuse(*args: object, **kwargs: object) -> None:
        raise inbound.Refused(422, "planted", "the planted fault drops this shipment")

    # Shipments polled or pushed from the WMS are dropped instead of recorded.
    monkeypatch.setattr(fulfillment, "record_shipment", lambda *args, **kwargs: None)
    monkeypatch.setattr(inbound, "record_pushed_shipment", refuse)
    run = start_run()
    run.place_orders(1)
    assert run.wait_for(lambda: run.wms.shipments() and run.warehouse_done(), timeout=30)
    run.wait_for(lambda: run.open_work() == 0, timeout=10)

    report = run.check()
    never = [str(o) for o in report.shipments_never_posted]
    shipments = run.wms.shipments()
    assert len(never) == len(shipments)
    assert all("not on the store order; DropStream never recorded it" in line for line in never)
    assert not report.shipments_posted_twice
