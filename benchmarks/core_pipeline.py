"""Benchmark: the core pipeline's own cost, webhook hint → order at the warehouse.

Uses the in-memory reference connectors (no HTTP: this measures DropStream's core — database,
outbox, queue, mapping — not a remote system) and the embedded runtime (worker threads and the
scheduler in this process), on SQLite by default or on PostgreSQL when DATABASE_URL is set.

For each of N merchants it creates M orders in the store sandbox and delivers a webhook hint for
each (as a connector's webhook route would: inbox row + outbox work, committed), then waits
until every order is at the warehouse. It reports throughput, hint → warehouse latency
percentiles, and lost/duplicated orders (must be 0).

    python benchmarks/core_pipeline.py --merchants 5 --orders 200 --workers 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from cryptography.fernet import Fernet

from dropstream.testing.databases import scratch_database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", type=int, default=5)
    parser.add_argument("--orders", type=int, default=200, help="orders per merchant")
    parser.add_argument("--workers", type=int, default=4, help="in-process worker threads")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dropstream-bench-"))
    with scratch_database(os.environ.get("DATABASE_URL"), workdir, "dropstream_bench") as database_url:
        result = run(args, workdir, database_url)
    print(json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and result["duplicated_at_warehouse"] == 0 else 1


def run(args: argparse.Namespace, workdir: Path, database_url: str) -> dict:
    from sqlalchemy import select

    from dropstream.app import create_app
    from dropstream.catalog.models import ShippingRule
    from dropstream.extensions import db
    from dropstream.jobs.scheduler import start_in_process, wait_idle
    from dropstream.orders.inbox import receive_order_hint
    from dropstream.orders.models import Order, OrderAddress
    from dropstream.orders.statuses import OrderStatus
    from dropstream.stores.credentials import write_credentials
    from dropstream.stores.models import Channel, Store, StoreChannel, StoreState, Warehouse
    from dropstream.tenants.models import Merchant, Provider
    from dropstream.testing import plugin as reference_plugin
    from dropstream.testing.reference import store_sandbox, warehouse_sandbox

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None,
                      "SECRET_KEY": "benchmark-secret-key-0123456789abcdef",
                      "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                      "INSTANCE_PATH": str(workdir), "JOBS_INLINE_WORKERS": args.workers,
                      "LOG_LEVEL": "WARNING"},
                     env={}, plugins=[("reference", reference_plugin)], load_entry_points=False)
    with app.app_context():
        db.drop_all()
        db.create_all()
        provider = Provider(name="Bench 3PL", slug="bench")
        db.session.add(provider)
        db.session.flush()
        warehouse = Warehouse(provider_id=provider.id, name="WMS", connector_id="reference-wms",
                              settings={"sandbox": "bench"})
        db.session.add(warehouse)
        db.session.flush()
        write_credentials(warehouse, {"token": "wms-token"})
        stores = []
        for n in range(args.merchants):
            merchant = Merchant(provider_id=provider.id, name=f"Merchant {n}")
            db.session.add(merchant)
            db.session.flush()
            store = Store(provider_id=provider.id, merchant_id=merchant.id, name=f"Store {n}",
                          connector_id="reference-store", external_id=f"bench-{n}",
                          warehouse_id=warehouse.id, settings={"sandbox": f"bench-{n}", "sent_status": ""},
                          state=StoreState.ACTIVE)
            db.session.add(store)
            db.session.flush()
            write_credentials(store, {"token": "store-token"})
            # Only webhooks drive this run: the polling channels stay off.
            for channel in Channel:
                store.channels.append(StoreChannel(provider_id=provider.id, merchant_id=merchant.id,
                                                   channel=channel, enabled=False))
            db.session.add(ShippingRule(provider_id=provider.id, merchant_id=merchant.id, store_id=store.id,
                                        store_method="Ground", match_key="ground", warehouse_code="GRND"))
            stores.append(store)
        db.session.commit()
        warehouse_sandbox("bench")
        sandboxes = {store.id: store_sandbox(f"bench-{n}") for n, store in enumerate(stores)}

        queue = app.extensions["dropstream"].queue
        queue.start()
        stop = start_in_process(app, tick_seconds=0.2)
        hinted_at: dict[tuple[int, str], float] = {}
        started = time.monotonic()
        store_ids = [store.id for store in stores]
        for number in range(args.orders):
            for store_id in store_ids:
                external_id = sandboxes[store_id].create_order(
                    [{"sku": f"SKU-{number % 25}", "quantity": 1 + number % 3}, {"sku": "GIFT-WRAP", "quantity": 1}])
                store = db.session.get(Store, store_id)
                receive_order_hint(db.session, store, event_key=f"{store_id}:{external_id}",
                                   topic="store/order/statusUpdated", external_id=external_id,
                                   payload={"id": external_id})
                db.session.commit()  # the webhook's 2xx would go out here
                hinted_at[(store_id, external_id)] = time.time()
        # Hold no transaction while waiting (on SQLite it would block the workers).
        db.session.close()
        submitted = time.monotonic() - started
        idle = wait_idle(app, timeout=args.timeout)
        elapsed = time.monotonic() - started
        stop.stop()
        queue.close()

        db.session.expire_all()
        orders = db.session.execute(
            select(Order.store_id, Order.external_id, Order.status, OrderAddress.forwarded_at)
            .join(OrderAddress, (OrderAddress.order_id == Order.id) & (OrderAddress.role == "shipping"))
        ).all()
        latencies = sorted(row.forwarded_at.timestamp() - hinted_at[(row.store_id, row.external_id)]
                           for row in orders if row.forwarded_at is not None)
        wms_refs = Counter(o["reference"] for o in warehouse_sandbox("bench").orders)
        total = args.merchants * args.orders
        result = {
            "database": db.engine.dialect.name,
            "merchants": args.merchants, "orders": total, "workers": args.workers,
            "drained": idle,
            "seconds": round(elapsed, 2),
            "hints_per_second": round(total / submitted, 1),
            "orders_per_second": round(total / elapsed, 1),
            "latency_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "latency_p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
            "at_warehouse": sum(1 for row in orders if row.status is OrderStatus.AT_WAREHOUSE),
            "lost": total - len({(r.store_id, r.external_id) for r in orders if r.status is OrderStatus.AT_WAREHOUSE}),
            "duplicated_at_warehouse": sum(n - 1 for n in wms_refs.values()),
        }
        db.engine.dispose()
    return result


if __name__ == "__main__":
    sys.exit(main())
