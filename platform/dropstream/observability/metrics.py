"""Prometheus metrics at ``/metrics``.

Counters and histograms are kept per process (with ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus
client aggregates worker processes too). What the database knows — orders per status, pending
and dead work, the age of the oldest due item — is read at scrape time, so it is right across
every process without any sharing. Labels never carry tenant ids or anything secret.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

#: Process-wide by nature (one set of series per process), created on first use.
_REGISTRY = CollectorRegistry(auto_describe=True)
JOBS = Counter("dropstream_jobs_total", "Outbox items run, by kind and outcome (skipped: a queue "
               "job found its item taken or done, its kind unread).",
               ["kind", "outcome"], registry=_REGISTRY)
JOB_SECONDS = Histogram("dropstream_job_seconds", "Time to run one outbox item, by kind.", ["kind"],
                        registry=_REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
#: CPU, not time: what each kind of work costs the machine, whatever it waited for (a remote,
#: a lock, the store's quota). Measured on the thread that ran it.
JOB_CPU_SECONDS = Counter("dropstream_job_cpu_seconds",
                          "CPU time spent running outbox items, by kind.", ["kind"],
                          registry=_REGISTRY)
HTTP = Counter("dropstream_http_requests_total", "HTTP requests served, by method and status class.",
               ["method", "status"], registry=_REGISTRY)
HTTP_CPU_SECONDS = Counter("dropstream_http_cpu_seconds",
                           "CPU time spent serving HTTP requests, by endpoint.", ["endpoint"],
                           registry=_REGISTRY)
HTTP_SECONDS = Histogram("dropstream_http_request_seconds", "Time to serve an HTTP request.",
                         ["method"], registry=_REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5))

bp = Blueprint("metrics", __name__)


class DatabaseCollector:
    """Gauges read from the database at scrape time."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    def collect(self):  # type: ignore[no-untyped-def]
        from sqlalchemy import func, select

        from dropstream.db import utcnow
        from dropstream.extensions import db
        from dropstream.jobs.models import IS_PENDING, OutboxItem
        from dropstream.orders.models import Order
        from dropstream.tenants.scope import unscoped

        with self.app.app_context(), unscoped(db.session):
            orders = GaugeMetricFamily("dropstream_orders", "Orders by status.", labels=["status"])
            for status, count in db.session.execute(select(Order.status, func.count()).group_by(Order.status)):
                orders.add_metric([status.value], count)
            work = GaugeMetricFamily("dropstream_outbox_items", "Outbox items by state.", labels=["state"])
            for state, count in db.session.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)):
                work.add_metric([state.value], count)
            oldest = db.session.scalar(select(func.min(OutboxItem.run_after)).where(
                IS_PENDING, OutboxItem.run_after <= utcnow()))
            lag = GaugeMetricFamily("dropstream_outbox_oldest_due_seconds",
                                    "Age of the oldest due pending outbox item (0: none).")
            lag.add_metric([], (utcnow() - oldest).total_seconds() if oldest else 0.0)
            db.session.remove()
        yield from (orders, work, lag)


@bp.get("/metrics")
def metrics() -> Response:
    token = current_app.config.get("METRICS_TOKEN")
    if token and request.headers.get("Authorization") != f"Bearer {token}":
        return Response("metrics need the METRICS_TOKEN bearer token\n", status=401)
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    registry.register(DatabaseCollector(current_app._get_current_object()))  # type: ignore[attr-defined]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _ProcessMetrics:
    def collect(self):  # type: ignore[no-untyped-def]
        yield from _REGISTRY.collect()


def observe_requests(app) -> None:  # type: ignore[no-untyped-def]
    @app.before_request
    def _start_timer() -> None:
        request.environ["dropstream.started"] = (time.perf_counter(), time.thread_time())

    @app.after_request
    def _count(response: Response) -> Response:
        started = request.environ.get("dropstream.started")
        if started is not None and request.endpoint != "metrics.metrics":
            wall, cpu = started
            HTTP.labels(request.method, f"{response.status_code // 100}xx").inc()
            HTTP_SECONDS.labels(request.method).observe(time.perf_counter() - wall)
            # Endpoint names are the app's own (a bounded set); an unknown address has none.
            HTTP_CPU_SECONDS.labels(request.endpoint or "unmatched").inc(time.thread_time() - cpu)
        return response
