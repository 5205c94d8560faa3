"""Benchmark: the whole loop, BigCommerce sandbox → DropStream → generic-WMS sandbox.

N merchants, each with a BigCommerce sandbox store, place M orders that reach Awaiting
Fulfillment at a steady rate; the sandbox's webhooks tell DropStream, which reads each order,
maps it and forwards it to the WMS sandbox. Reported: orders per second end to end, the latency
from the status change in the store to the order's arrival at the WMS (p50/p95), BigCommerce
calls per order, and orders lost or duplicated at the WMS (must be 0). Also: how long
DropStream took to acknowledge each webhook, each merchant's latency (fairness), and the CPU
each part used per order — DropStream's web process, workers and scheduler, PostgreSQL, Redis,
and this process (both sandboxes and the shoppers) — since on one small machine they all share
the same cores. Those figures stop when the last order reaches the WMS, when the return half of
the loop has run only for the orders shipped by then; ``whole_loop`` then waits until every
order is Shipped in the store (shipments pushed by the WMS, posted back with tracking, stock
recorded) and gives the CPU per order of the whole loop, and the time from placing to Shipped
(which includes the sandbox WMS's picking delay). ``--intake-only`` keeps the WMS from shipping
during the run instead: the figures are then the first half's alone (import, forward, sent
status), with nothing of the return half competing for the cores, in ``intake``. The machine's
speed varies from day to day and between two runs, so it also gives DropStream's CPU over the
sandboxes' in the same run (``dropstream_cpu_per_sandbox_cpu``): their work per order is the
same whatever DropStream's version, which makes them a yardstick for comparing versions across
runs and days.

It runs on whatever DATABASE_URL / REDIS_URL say (a scratch database is created and dropped).
With REDIS_URL, DropStream runs as production lays it out: `dropstream serve`, real `dropstream
worker` processes and `dropstream scheduler`, each a process of its own. Without, on the
embedded default, everything runs in this process.

    python benchmarks/loop.py --merchants 10 --orders 100 --rate 50          # throughput
    python benchmarks/loop.py --merchants 4 --orders 100 --rate 10           # latency at 10/s
    python benchmarks/loop.py --merchants 20 --orders 300 --rate 10          # sustained, 10 min
    python benchmarks/loop.py --burst 1000                                   # one rate-limited store
    python benchmarks/loop.py --merchants 10 --orders 40 --rate 50 --intake-only   # first half
    python benchmarks/loop.py --merchants 10 --orders 150 --rate 60 --intake-only  # capacity

Orders per second end to end cannot exceed the rate offered: a run offered more than the goal
(the "capacity" line) shows how far past it DropStream goes. Throughput runs lift the stores'
API quotas (so the figure is DropStream's, not BigCommerce's quota); a run longer than two
minutes also reports the latency minute by minute, and every run the resident memory of
DropStream's processes at its start and end. ``--burst`` keeps the Standard plan's 150 requests
per 30 s and reports how long the burst took against the least time that quota allows, and
whether the sandbox ever sent a 429.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

#: BigCommerce's "Shipped" status: the end of the loop for an order.
SHIPPED = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", type=int, default=10)
    parser.add_argument("--orders", type=int, default=100, help="orders per merchant")
    parser.add_argument("--rate", type=float, default=50.0, help="orders per second placed, all stores")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (with REDIS_URL)")
    parser.add_argument("--burst", type=int, default=0, help="burst this many orders on one rate-limited store")
    parser.add_argument("--intake-only", action="store_true",
                        help="the WMS ships nothing during the run: the first half's figures alone")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dropstream-loop-"))
    # Every DropStream process of the run (and this one, on the embedded default) keeps its
    # metrics here, set before any of them imports the Prometheus client: the CPU each kind of
    # work and each endpoint cost is read from them (_cpu_by_work).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")
    (workdir / "metrics").mkdir()
    from dropstream.testing.databases import scratch_database

    with scratch_database(os.environ.get("DATABASE_URL"), workdir, "dropstream_loop") as database_url:
        result = run(args, workdir, database_url)
    print(json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and result["duplicated_at_warehouse"] == 0 else 1


def run(args: argparse.Namespace, workdir: Path, database_url: str) -> dict:
    import logging
    import threading

    from dropstream.app import create_app
    from dropstream.demo.catalog import CATALOG, MUG, TEE
    from dropstream.demo.runtime import (
        dropstream_command,
        process_env,
        spawn_worker,
        stop_processes,
    )
    from dropstream.demo.seed import add_mappings
    from dropstream.demo_support import DemoContext
    from dropstream.extensions import db
    from dropstream.jobs.queue import RQQueue
    from dropstream.jobs.scheduler import start_in_process
    from dropstream.serving import make_server
    from dropstream.stores.models import Channel, Store
    from dropstream.tenants import services

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": os.environ.get("REDIS_URL"),
                      "SECRET_KEY": "benchmark-secret-key-0123456789abcdef",
                      "ENCRYPTION_KEYS": [Fernet.generate_key().decode()], "INSTANCE_PATH": str(workdir),
                      "ALLOW_LOOPBACK": True, "PUBLIC_BASE_URL": base, "LOG_LEVEL": "WARNING"}, env={})
    demo = DemoContext(app=app, public_base_url=base, rng=random.Random(11))
    hook = app.extensions["dropstream"].plugin_manager.hook
    stoppers = []
    result: dict | None = None
    transactions_before: int | None = None
    try:
        hook.demo_start_services(demo=demo)
        stoppers += [service.stop for service in demo.services.values()]
        bigcommerce = app.extensions["dropstream_bigcommerce.demo"].sandbox
        wms = next(s for s in demo.services.values() if s.name == "wms")
        if args.intake_only:  # a picking delay longer than any run
            _configure_wms(wms.url, ship_delay=24 * 3600)
        merchants = 1 if args.burst else args.merchants
        with app.app_context():
            db.create_all()
            provider = services.create_provider(db.session, "Bench 3PL", "bench")
            warehouse = hook.demo_create_warehouse(demo=demo, session=db.session, provider=provider, catalog=CATALOG)
            stores = []
            for n in range(merchants):
                merchant = services.create_merchant(db.session, provider, f"Merchant {n}")
                store = hook.demo_create_store(demo=demo, session=db.session, merchant=merchant,
                                               warehouse=warehouse, catalog=CATALOG)
                add_mappings(db.session, store)
                _own_warehouse_account(wms.url, store, f"M{n:03d}", CATALOG)
                for channel in store.channels:  # webhooks drive this run; no polling or stock
                    channel.enabled = channel.channel is Channel.SHIPMENTS
                stores.append(store)
            db.session.commit()
            store_ids = [s.id for s in stores]
            hashes = {s.id: s.external_id for s in stores}
            queue_kind = (f"processes: dropstream serve, {args.workers} dropstream worker, dropstream scheduler"
                          if isinstance(app.extensions["dropstream"].queue, RQQueue)
                          else "embedded: web, worker threads and scheduler in this process")
            db.session.remove()
        for store_hash in hashes.values():
            if not args.burst:  # throughput: DropStream's figure, not the store's API quota
                bigcommerce.set_rate_limit(store_hash, quota=1_000_000, window_ms=30_000)
        calls_before = {h: bigcommerce.stats(h)["calls"] for h in hashes.values()}

        rq = isinstance(app.extensions["dropstream"].queue, RQQueue)
        processes: dict[str, list[subprocess.Popen[bytes]]] = {}
        if rq:
            _empty_queues(app.extensions["dropstream"].queue)
            _forget_earlier_stores(app.extensions["dropstream"].queue.connection, hashes.values())
            env = {**process_env(app), "DROPSTREAM_LOG_LEVEL": "WARNING"}
            processes["web"] = [subprocess.Popen(dropstream_command("serve", "--port", str(port), "--quiet"), env=env)]
            processes["workers"] = [spawn_worker(app) for _ in range(args.workers)]
            processes["scheduler"] = [subprocess.Popen(dropstream_command("scheduler"), env=env)]
            stoppers.append(lambda: stop_processes([p for group in processes.values() for p in group]))
            _wait_until_up(f"{base}/healthz")
            _wait_for_workers(app.extensions["dropstream"].queue, {p.pid for p in processes["workers"]})
        else:
            server = make_server("127.0.0.1", port, app)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            stoppers.append(lambda: (server.shutdown(), server.server_close()))
            app.extensions["dropstream"].queue.start()
            stoppers.append(app.extensions["dropstream"].queue.close)
            stoppers.append(start_in_process(app, tick_seconds=0.5).stop)
        cpu_before = _cpu_seconds(processes, database_url)
        cpu_by_work_before = _cpu_by_work()
        runs_before = _runs()
        queue_jobs_before = _queue_jobs(app.extensions["dropstream"].queue)
        transactions_before = _transactions(database_url)
        memory_before = _resident_mb(processes)

        total = args.burst or merchants * args.orders
        placed: dict[str, float] = {}
        interval = 0.0 if args.burst else 1.0 / args.rate
        started = time.time()
        with app.app_context():
            store_rows = {sid: db.session.get(Store, sid) for sid in store_ids}
            for number in range(total):
                store = store_rows[store_ids[number % len(store_ids)]]
                due = started + number * interval
                if due > time.time():
                    time.sleep(due - time.time())
                placed_at = time.time()
                external_id = hook.demo_place_order(demo=demo, store=store, lines=[(TEE, 1), (MUG, 2)],
                                                    shipping_method="Free Shipping")
                placed[f"DS-{store.id}-{external_id}"] = placed_at
            db.session.remove()
        placing_seconds = time.time() - started

        arrived: dict[str, float] = {}
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            arrived = _arrivals(wms.url)
            if len(set(arrived) & set(placed)) >= total:
                break
            time.sleep(0.5)
        cpu_used = {part: seconds - cpu_before.get(part, 0.0)
                    for part, seconds in _cpu_seconds(processes, database_url).items()}
        runs = {what: n - runs_before.get(what, 0.0) for what, n in _runs().items()}
        queue_jobs = _queue_jobs(app.extensions["dropstream"].queue)
        memory_after = _resident_mb(processes)
        shipped: dict[str, float] = {}
        loop_closes = not args.burst and not args.intake_only
        if loop_closes:  # the rest of the loop: shipped, posted back, Shipped in the store
            while time.monotonic() < deadline:
                shipped = _shipped_in_store(bigcommerce, hashes)
                if len(set(shipped) & set(placed)) >= total:
                    break
                time.sleep(0.5)
            cpu_whole_loop = {part: seconds - cpu_before.get(part, 0.0)
                              for part, seconds in _cpu_seconds(processes, database_url).items()}
        cpu_by_work = {what: seconds - cpu_by_work_before.get(what, 0.0)
                       for what, seconds in _cpu_by_work().items()}
        references = [o["reference"] for o in _wms_orders(wms.url)]
        finished = max(arrived.values()) if arrived else time.time()
        latencies = sorted(arrived[r] - placed[r] for r in placed if r in arrived)
        calls = sum(bigcommerce.stats(h)["calls"] - calls_before[h] for h in hashes.values())
        result = {
            "database": database_url.split(":", 1)[0], "layout": queue_kind,
            "merchants": merchants, "orders": total,
            "placing_orders_per_second": round(total / placing_seconds, 1) if placing_seconds else None,
            "end_to_end_seconds": round(finished - started, 2),
            "orders_per_second": round(len(latencies) / (finished - started), 1),
            "latency_p50_ms": round(1000 * statistics.median(latencies)) if latencies else None,
            "latency_p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))]) if latencies else None,
            "bigcommerce_calls_per_order": round(calls / total, 2),
            "lost": total - len(set(arrived) & set(placed)),
            "duplicated_at_warehouse": len(references) - len(set(references)),
        }
        result["webhook_ack_p50_p95_ms"] = _p50_p95(
            [attempt["seconds"] for hash_ in hashes.values() for delivery in bigcommerce.webhook_deliveries(hash_)
             for attempt in delivery["attempts"] if attempt.get("status") is not None])
        if finished - started > 120:  # a sustained run: does the latency hold up as tables grow?
            result["latency_p50_p95_ms_by_minute"] = _by_minute(placed, arrived, started)
        if memory_before:
            result["resident_mb_start_end"] = {part: [memory_before[part], memory_after.get(part)]
                                               for part in memory_before}
        result["latency_p50_p95_ms_by_merchant"] = {
            f"merchant {n}": _p50_p95([arrived[r] - placed[r] for r in placed
                                       if r in arrived and r.startswith(f"DS-{store_id}-")])
            for n, store_id in enumerate(store_ids)}
        result["cpu_ms_per_order"] = {part: round(1000 * seconds / total, 1) for part, seconds in cpu_used.items()}
        if args.intake_only:
            result["intake"] = _cpu_summary(cpu_used, cpu_by_work, total)
        if loop_closes:
            # The figures above stop when the last order reaches the WMS; the return half of
            # the loop (shipments pushed, posted to the store, stock) has then run only for the
            # orders the WMS shipped by that moment. These take every order to Shipped.
            done = [shipped[r] - placed[r] for r in placed if r in shipped]
            result["whole_loop"] = {
                "shipped_in_store": len(done),
                "placed_to_shipped_p50_p95_ms": _p50_p95(done),
                **_cpu_summary(cpu_whole_loop, cpu_by_work, total),
            }
        result["stages_p50_p95_ms"] = _stages(app, placed)
        result["work_per_order"], result["work_retried"] = _work(app, total)
        # Up to the moment the last order reached the WMS, as the CPU per order: how the work
        # ran (a queue job, or run next by the worker of the step before), and what a queue
        # job costs beyond its work (RQ's bookkeeping, a transaction for a row found taken).
        result["runs_per_order"] = {what: round(n / total, 2) for what, n in sorted(runs.items())
                                    if n >= 0.005 * total}
        if queue_jobs is not None and queue_jobs_before is not None:
            result["queue_jobs_per_order"] = round((queue_jobs - queue_jobs_before) / total, 2)
        slowest = sorted((r for r in placed if r in arrived), key=lambda r: placed[r] - arrived[r])
        result["slowest_orders"] = _trace(app, {r: placed[r] for r in slowest[:3]})
        missing = sorted(set(placed) - set(arrived))
        if missing:
            result["not_arrived"] = _explain(app, missing[:10])
        if args.burst:
            stats = bigcommerce.stats(hashes[store_ids[0]])
            quota_per_second = stats["quota"] / (stats["window_ms"] / 1000)
            least = calls / quota_per_second
            result.update({"responses_429": stats["responses_429"],
                           "max_calls_in_window": stats["max_calls_in_window"], "quota": stats["quota"],
                           "least_seconds_the_quota_allows": round(least, 1),
                           "drain_over_least": round((finished - started) / least, 3)})
        return result
    finally:
        for stopper in reversed(stoppers):
            try:
                stopper()
            except Exception as error:  # noqa: BLE001
                print(f"stopping: {error}", file=sys.stderr)
        with app.app_context():
            db.engine.dispose()
        if result is not None and transactions_before is not None:
            # Read once every process is gone: a backend reports its counts when it exits.
            time.sleep(1.0)
            result["database_transactions_per_order"] = round(
                (_transactions(database_url) - transactions_before) / result["orders"], 1)


def _stages(app, placed: dict[str, float]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Where the time goes, per order ([p50, p95]): store status change → webhook stored → imported →
    sent to the WMS, from DropStream's own records."""
    from sqlalchemy import select

    from dropstream.extensions import db
    from dropstream.jobs.models import InboxEvent
    from dropstream.orders.models import Order, OrderEvent
    from dropstream.tenants.scope import unscoped

    first_hint: dict[tuple[int, str], float] = {}
    with app.app_context(), unscoped(db.session):
        for event in db.session.scalars(select(InboxEvent)):
            key = (event.store_id, str(event.payload.get("data", {}).get("id", "")))
            first_hint[key] = min(first_hint.get(key, 1e18), event.received_at.timestamp())
        marks: dict[int, dict[str, float]] = {}
        for order_id, kind, at in db.session.execute(select(OrderEvent.order_id, OrderEvent.kind, OrderEvent.created_at)):
            marks.setdefault(order_id, {}).setdefault(kind, at.timestamp())
        orders = db.session.execute(select(Order.id, Order.store_id, Order.external_id)).all()
        db.session.remove()
    hint, imported, forwarded = [], [], []
    for order_id, store_id, external_id in orders:
        start = placed.get(f"DS-{store_id}-{external_id}")
        got = first_hint.get((store_id, external_id))
        mark = marks.get(order_id, {})
        if start is None or got is None or "imported" not in mark or "forwarded" not in mark:
            continue
        hint.append(got - start)
        imported.append(mark["imported"] - got)
        forwarded.append(mark["forwarded"] - mark["imported"])
    return {"status_change_to_webhook_stored": _p50_p95(hint), "webhook_to_imported": _p50_p95(imported),
            "imported_to_at_warehouse": _p50_p95(forwarded)}


def _work(app, total: int) -> tuple[dict[str, float], dict[str, int]]:  # type: ignore[no-untyped-def]
    """What each order cost DropStream in units of work, up to the moment the last order reached
    the WMS: webhooks stored (by topic) and work items written (by kind) per order placed; and
    the work that needed more than one attempt, by kind and last error (a healthy run has none:
    nothing in it fails on purpose)."""
    from collections import Counter

    from sqlalchemy import func, select

    from dropstream.extensions import db
    from dropstream.jobs.models import InboxEvent, OutboxItem
    from dropstream.tenants.scope import unscoped

    with app.app_context(), unscoped(db.session):
        counts = {f"webhook {topic}": n for topic, n in db.session.execute(
            select(InboxEvent.topic, func.count()).group_by(InboxEvent.topic))}
        counts |= {f"work {kind}": n for kind, n in db.session.execute(
            select(OutboxItem.kind, func.count()).group_by(OutboxItem.kind))}
        retried = Counter(f"{kind}: {(error or 'no error recorded')[:160]}" for kind, error in db.session.execute(
            select(OutboxItem.kind, OutboxItem.last_error).where(OutboxItem.attempts > 1)))
        db.session.remove()
    per_order = {name: round(n / total, 2) for name, n in sorted(counts.items())}
    return per_order, dict(retried.most_common(10))


def _own_warehouse_account(wms_url: str, store, code: str, catalog) -> None:  # type: ignore[no-untyped-def]
    """Give the store its own customer account at the WMS, as a 3PL's WMS keeps one per merchant
    (the demo's merchants share one; with ten, every store's shipment poll and every stock push
    would then be ten times the work, which measures the sharing rather than DropStream)."""
    from dropstream_wms_generic.demo import add_account

    add_account(wms_url, code, store.name, catalog)
    store.warehouse_account = {"customer_code": code}


def _by_minute(placed: dict[str, float], arrived: dict[str, float], started: float) -> dict[str, list[int] | None]:
    """Latency [p50, p95] of the orders placed in each minute of the run."""
    minutes: dict[int, list[float]] = {}
    for reference, at in placed.items():
        if reference in arrived:
            minutes.setdefault(int((at - started) // 60), []).append(arrived[reference] - at)
    return {f"minute {minute + 1}": _p50_p95(minutes[minute]) for minute in sorted(minutes)}


def _shipped_in_store(bigcommerce, hashes: dict[int, str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """When each order became Shipped in the BigCommerce sandbox, by DropStream reference."""
    shipped = {}
    with bigcommerce.state.lock:
        for store_id, store_hash in hashes.items():
            for order in bigcommerce.state.store(store_hash).orders.values():
                when = next((at for at, status in order.status_history if status == SHIPPED), None)
                if when is not None:
                    shipped[f"DS-{store_id}-{order.id}"] = when
    return shipped


def _resident_mb(processes: dict[str, list]) -> dict[str, float]:
    """Resident memory (MB) of DropStream's processes, by part (Linux /proc): a leak shows as
    growth over a sustained run."""
    resident = {}
    for part, group in processes.items():
        total_kb = 0
        for process in group:
            try:
                with open(f"/proc/{process.pid}/status") as status:
                    total_kb += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                pass
        resident[f"dropstream_{part}"] = round(total_kb / 1024, 1)
    return resident


def _p50_p95(seconds: list[float]) -> list[int] | None:
    if not seconds:
        return None
    seconds = sorted(seconds)
    return [round(1000 * statistics.median(seconds)), round(1000 * seconds[int(0.95 * (len(seconds) - 1))])]


def _cpu_summary(cpu: dict[str, float], by_work: dict[str, float], total: int) -> dict:
    """CPU per order: of each part, of all parts, DropStream's over the sandboxes', and
    DropStream's by what it was spent on (most first)."""
    return {
        "cpu_ms_per_order": {part: round(1000 * seconds / total, 1) for part, seconds in cpu.items()},
        "cpu_ms_per_order_all_parts": round(1000 * sum(cpu.values()) / total, 1),
        # The machine's speed varies from day to day, and even between two runs; the
        # sandboxes' work per order does not change between versions of DropStream, so
        # their CPU in the same run is a yardstick of the machine's speed at the time.
        "dropstream_cpu_per_sandbox_cpu": _per_sandbox_cpu(cpu),
        "cpu_ms_per_order_by_work": {
            what: round(1000 * seconds / total, 1)
            for what, seconds in sorted(by_work.items(), key=lambda kv: -kv[1])
            if seconds >= 0.0005 * total},
    }


def _configure_wms(url: str, **settings: object) -> None:
    import requests

    with requests.post(f"{url}/_sandbox/configure", json=settings, timeout=10) as response:
        response.raise_for_status()


def _cpu_by_work() -> dict[str, float]:
    """CPU seconds so far by kind of job (``job order.forward``) and by endpoint (``web
    bigcommerce.webhooks``), summed over every DropStream process of the run."""
    return _summed_metrics({"dropstream_job_cpu_seconds_total": ("job", ("kind",)),
                            "dropstream_http_cpu_seconds_total": ("web", ("endpoint",))})


def _runs() -> dict[str, float]:
    """Outbox items run so far, by kind and outcome (``run order.forward done``; a queue job
    that found its item taken or done is ``run unknown skipped``), over every process."""
    return _summed_metrics({"dropstream_jobs_total": ("run", ("kind", "outcome"))})


def _summed_metrics(names: dict[str, tuple[str, tuple[str, ...]]]) -> dict[str, float]:
    """The samples named (name → prefix, labels), summed over every DropStream process of the
    run by ``prefix label…``."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    summed: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in names:
                prefix, labels = names[sample.name]
                key = " ".join([prefix, *(sample.labels[label] for label in labels)])
                summed[key] = summed.get(key, 0.0) + sample.value
    return summed


def _queue_jobs(queue) -> int | None:  # type: ignore[no-untyped-def]
    """Jobs put on RQ's queues so far (Redis's count of RPUSH and LPUSH since its start or
    statistics reset); None on the embedded default."""
    connection = getattr(queue, "connection", None)
    if connection is None:
        return None
    stats = connection.info("commandstats")
    return sum(stats.get(f"cmdstat_{command}", {}).get("calls", 0)
               for command in ("rpush", "lpush"))


def _per_sandbox_cpu(cpu: dict[str, float]) -> float | None:
    """DropStream's processes' CPU (web, workers, scheduler) over the sandboxes' and shoppers'
    in the same run; None on the embedded default, where they share one process."""
    yardstick = cpu.get("sandboxes_and_shoppers")
    if not yardstick:
        return None
    dropstream = sum(seconds for part, seconds in cpu.items() if part.startswith("dropstream_"))
    return round(dropstream / yardstick, 2)


def _cpu_seconds(processes: dict[str, list], database_url: str) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part of the run (Linux /proc)."""
    import resource

    def of(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def matching(words: str) -> list[int]:
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if words in cmdline.read().decode(errors="replace"):
                        pids.append(int(pid))
            except OSError:
                pass
        return pids

    me = resource.getrusage(resource.RUSAGE_SELF)
    this_process = "sandboxes_and_shoppers" if processes else "dropstream_sandboxes_and_shoppers (embedded)"
    used = {this_process: me.ru_utime + me.ru_stime}
    for part, group in processes.items():
        used[f"dropstream_{part}"] = sum(of(process.pid) for process in group)
    if database_url.startswith("postgresql"):  # the backends serving the scratch database
        used["postgresql"] = sum(of(pid) for pid in matching(database_url.rsplit("/", 1)[1]))
    if os.environ.get("REDIS_URL"):
        used["redis"] = sum(of(pid) for pid in matching("redis-server"))
    return used


def _transactions(database_url: str) -> int | None:
    """Transactions ended so far in the run's PostgreSQL database (``pg_stat_database``): a
    figure that, unlike CPU time, does not vary with the machine's speed."""
    if not database_url.startswith("postgresql"):
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()")))
    finally:
        engine.dispose()


def _empty_queues(queue) -> None:  # type: ignore[no-untyped-def]
    """Jobs carry only outbox ids, and every run's ids start at 1: jobs an earlier run left in
    this Redis database — waiting in a queue, or scheduled for a retry, deferred, failed —
    would run this run's rows out of turn, or keep them from being dispatched until their
    time comes. (Runs at the same time need a Redis database each.)"""
    from dropstream.jobs.queue import QUEUES

    left = 0
    for name in QUEUES:
        rq_queue = queue.queue(name)
        left += rq_queue.empty() or 0
        for registry in (rq_queue.scheduled_job_registry, rq_queue.deferred_job_registry,
                         rq_queue.failed_job_registry, rq_queue.started_job_registry,
                         rq_queue.canceled_job_registry, rq_queue.finished_job_registry):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)
                left += 1
    if left:
        print(f"removed {left} jobs an earlier run left in Redis", file=sys.stderr)


def _forget_earlier_stores(connection, store_hashes) -> None:  # type: ignore[no-untyped-def]
    """The sandbox gives every run the same store hashes and order ids: what the BigCommerce
    connector keeps in Redis by store hash (status checks, quota, catalog index) from an earlier
    run is about other orders and products, and would cost this run reads it never asked for."""
    keys = [key for store_hash in store_hashes
            for key in connection.scan_iter(match=f"dropstream:bigcommerce:*:{store_hash}*")]
    if keys:
        connection.delete(*keys)
        print(f"removed {len(keys)} BigCommerce keys an earlier run left in Redis", file=sys.stderr)


def _wait_for_workers(queue, pids: set[int], timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Until this run's workers listen (their start-up is not part of what is measured). Counted
    by pid: a killed run's workers stay registered in Redis until their heartbeat expires."""
    from rq import Worker

    deadline = time.monotonic() + timeout
    while not pids <= {worker.pid for worker in Worker.all(connection=queue.connection)}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pids)} workers did not start within {timeout:.0f} s")
        time.sleep(0.2)
    time.sleep(1.0)  # the scheduler process starts alongside


def _wait_until_up(url: str, timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _explain(app, references: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """What DropStream knows of orders that did not reach the WMS in time."""
    from sqlalchemy import select

    from dropstream.extensions import db
    from dropstream.jobs.models import OutboxItem
    from dropstream.orders.models import Order
    from dropstream.tenants.scope import unscoped

    lines = []
    with app.app_context(), unscoped(db.session):
        for reference in references:
            _prefix, store_id, external_id = reference.split("-", 2)
            order = db.session.scalar(select(Order).where(Order.store_id == int(store_id),
                                                          Order.external_id == external_id))
            if order is None:
                work = db.session.scalars(select(OutboxItem).where(
                    OutboxItem.dedupe_key == f"order.refresh:{store_id}:{external_id}")).all()
                lines.append(f"{reference}: not imported; refresh work: "
                             f"{[(w.state.value, w.attempts, w.last_error) for w in work]}")
            else:
                last = order.events[-1] if order.events else None
                lines.append(f"{reference}: {order.status.value}; last: {last.message if last else '-'}")
        db.session.remove()
    return lines


def _trace(app, placed: dict[str, float]) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Where each order's time went, in seconds after it was placed: its webhooks stored, the
    work written for it (created, due, queued, finished, attempts) and its timeline. A run's
    tail is often one order's story: a wait for a lease, a retry, a relay that was late."""
    from sqlalchemy import or_, select

    from dropstream.extensions import db
    from dropstream.jobs.models import InboxEvent, OutboxItem
    from dropstream.orders.models import Order
    from dropstream.tenants.scope import unscoped

    def at(moment) -> str:  # type: ignore[no-untyped-def]
        return "-" if moment is None else f"{moment.timestamp() - start:.2f}"

    traces = {}
    with app.app_context(), unscoped(db.session):
        for reference, start in placed.items():
            _prefix, store_id, external_id = reference.split("-", 2)
            lines = [f"hint {event.topic} {at(event.received_at)}" for event in db.session.scalars(
                select(InboxEvent).where(InboxEvent.store_id == int(store_id)).order_by(InboxEvent.id))
                if str(event.payload.get("data", {}).get("id")) == external_id]
            order = db.session.scalar(select(Order).where(Order.store_id == int(store_id),
                                                          Order.external_id == external_id))
            mine = [OutboxItem.dedupe_key == f"order.refresh:{store_id}:{external_id}"]
            if order is not None:
                mine.append(OutboxItem.subject_id == order.id)
            for work in db.session.scalars(select(OutboxItem).where(or_(*mine)).order_by(OutboxItem.id)):
                lines.append(f"work {work.kind} #{work.id} created {at(work.created_at)} due "
                             f"{at(work.run_after)} queued {at(work.dispatched_at)} finished "
                             f"{at(work.finished_at)} attempts {work.attempts} {work.state.value}")
            if order is not None:
                lines += [f"event {event.kind} {at(event.created_at)}" for event in order.events]
            traces[reference] = lines
        db.session.remove()
    return traces


def _wms_orders(url: str) -> list[dict]:
    import requests

    return requests.get(f"{url}/_sandbox/orders", timeout=30).json()["result"]


def _arrivals(url: str) -> dict[str, float]:
    """When each reference reached the WMS (its create time, by the sandbox's clock)."""
    from datetime import datetime

    arrivals = {}
    for order in _wms_orders(url):
        created = order.get("created_at")
        if created:
            arrivals.setdefault(order["reference"], datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    return arrivals


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
