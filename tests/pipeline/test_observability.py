"""Metrics and structured logs make runs observable: jobs counted and timed, database gauges at
scrape time, every log line of a job carrying its tenant and job ids."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from dropstream.extensions import db
from dropstream.observability.logs import ContextFilter, JsonFormatter
from dropstream.testing.jobs import run_until_idle
from tests.pipeline.conftest import Loop


def test_metrics_count_jobs_and_read_order_states(client, loop: Loop) -> None:  # type: ignore[no-untyped-def]
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    loop.shop.create_order([{"sku": "", "quantity": 1}])  # held: no SKU
    run_until_idle()
    db.session.commit()  # end this test's read transaction (on SQLite it would block the request)
    body = client.get("/metrics").get_data(as_text=True)
    assert 'dropstream_orders{status="at_warehouse"} 1.0' in body
    assert 'dropstream_orders{status="on_hold"} 1.0' in body
    assert 'dropstream_jobs_total{kind="order.forward",outcome="done"}' in body
    assert "dropstream_job_seconds_bucket" in body
    assert 'dropstream_outbox_items{state="done"}' in body
    assert "store-token" not in body and "wms-token" not in body


Counters = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _counters(client: Any) -> Counters:
    from prometheus_client.parser import text_string_to_metric_families

    body = client.get("/metrics").get_data(as_text=True)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def test_metrics_count_the_cpu_each_kind_of_work_and_each_endpoint_costs(client: Any,
                                                                         loop: Loop) -> None:
    """What capacity planning reads: the CPU each kind of work and each endpoint cost, not the
    time they spent waiting for a remote or a lock."""
    from dropstream.jobs.registry import JOBS

    db.session.commit()
    before = _counters(client)
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    assert client.get("/healthz").status_code == 200
    db.session.commit()  # the request ran in this test's app context, on its session
    after = _counters(client)

    def spent(name: str, label: str, value: str) -> float:
        key = (name, ((label, value),))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert spent("dropstream_job_cpu_seconds_total", "kind", "order.forward") > 0
    assert spent("dropstream_http_cpu_seconds_total", "endpoint", "health.healthz") > 0
    assert spent("dropstream_http_cpu_seconds_total", "endpoint", "metrics.metrics") == 0
    kinds = {dict(labels)["kind"] for name, labels in after
             if name == "dropstream_job_cpu_seconds_total"}
    assert {*JOBS} & kinds and all(  # a kind's name (a bounded set of labels), never an id
        re.fullmatch(r"[a-z_]+\.[a-z_]+|unknown", kind) for kind in kinds), kinds


def test_metrics_can_require_a_token(app, client) -> None:  # type: ignore[no-untyped-def]
    app.config["METRICS_TOKEN"] = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_job_log_lines_carry_tenant_and_job_ids(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    handler_filter = ContextFilter()
    caplog.handler.addFilter(handler_filter)
    caplog.set_level(logging.INFO, logger="dropstream")
    loop.wms.faults.fail("transient", on="forward_order")
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()
    [record] = [r for r in caplog.records if "will be retried" in r.getMessage()]
    assert record.merchant_id == loop.tenant.merchant.id and record.job_kind == "order.forward"
    line = json.loads(JsonFormatter().format(record))
    assert line["merchant_id"] == loop.tenant.merchant.id and line["job_id"] and line["level"] == "info"


def test_re_reads_taken_along_by_another_job_are_counted_as_run(loop: Loop) -> None:
    """A backlog's re-reads done by one job (taken along) count as run, each once: the
    operator's jobs-done rate is the work done, not the number of jobs that did it. Their own
    jobs, which find them done, count as skipped: what queueing them cost for nothing."""
    from datetime import timedelta

    from sqlalchemy import update

    from dropstream.db import utcnow
    from dropstream.jobs.models import OutboxItem
    from dropstream.observability import metrics
    from dropstream.orders.inbox import receive_order_hint

    done = metrics.JOBS.labels("order.refresh", "done")
    skipped = metrics.JOBS.labels("unknown", "skipped")
    before, skipped_before = done._value.get(), skipped._value.get()
    external_ids = [loop.shop.create_order([{"sku": "A", "quantity": 1}]) for _ in range(3)]
    for external_id in external_ids:
        receive_order_hint(db.session, loop.store, event_key=f"created-{external_id}",
                           topic="store/order/created", external_id=external_id, payload={})
    # They waited for a worker (a backlog), so the first job run takes the others along.
    db.session.execute(update(OutboxItem).where(OutboxItem.kind == "order.refresh")
                       .values(run_after=utcnow() - timedelta(seconds=2)))
    db.session.commit()

    run_until_idle()

    statuses = {loop.order(external_id).status.value for external_id in external_ids}
    assert statuses == {"at_warehouse"}
    assert done._value.get() - before == 3
    assert skipped._value.get() - skipped_before == 2
