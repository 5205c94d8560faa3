"""Benchmark: how fast the BigCommerce sandbox answers, so tests and load runs know its ceiling.

Starts a sandbox in this process (quota off: this measures the sandbox, not BigCommerce's
limits), fills one store, then drives it over real HTTP from ``--clients`` threads:

* ``read_order``: ``GET /v2/orders/{id}?include=consignments.line_items&consignment_structure=object``
* ``list_orders``: ``GET /v2/orders?status_id=11&limit=250&page=N``
* ``ship``: ``POST /v2/orders/{id}/shipments`` (one line of a fresh order)
* ``inventory``: ``PUT /v3/inventory/adjustments/absolute`` with ``--batch`` items (by product id)

and measures webhook latency, order created in the sandbox → delivery received by a local
receiver, for a burst of ``--webhooks`` orders and for single orders one at a time. Prints one
JSON document (calls per second and latency percentiles in ms).

    python benchmarks/bigcommerce_sandbox_throughput.py --orders 500 --clients 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.receiver import WebhookReceiver
from dropstream_bigcommerce.sandbox.testing import SandboxStore, StoreClient, new_store


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {"p50_ms": round(pick(0.5) * 1000, 2), "p95_ms": round(pick(0.95) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def drive(store: SandboxStore, clients: int, calls: list[Callable[[StoreClient], int]]
          ) -> dict[str, Any]:
    """Run ``calls`` spread over ``clients`` threads; every call must answer 2xx."""
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    chunks = [calls[n::clients] for n in range(clients)]

    def worker(chunk: list[Callable[[StoreClient], int]]) -> None:
        with store.client() as api:
            for call in chunk:
                started = time.perf_counter()
                status = call(api)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if not 200 <= status < 300:
                        failures.append(status)

    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"calls": len(calls), "calls_per_s": round(len(calls) / wall, 1),
            "failures": len(failures), **percentiles(latencies)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--batch", type=int, default=2000, help="items per inventory adjustment")
    parser.add_argument("--webhooks", type=int, default=200, help="orders announced by webhook")
    args = parser.parse_args()

    with BigCommerceSandbox(rate_limits=False) as sandbox:
        store = new_store(sandbox, plan="unlimited")
        skus = [f"SKU-{n}" for n in range(max(args.batch, 50))]
        for sku in skus:
            sandbox.add_product(store.hash, name=sku, sku=sku, inventory_level=10)
        lines = [{"sku": skus[n], "quantity": 2} for n in range(3)]
        order_ids = [sandbox.create_order(store.hash, lines=lines) for _ in range(args.orders)]
        shipments = {}
        with store.client() as api:
            for order_id in order_ids:
                line = api.get(f"/v2/orders/{order_id}/products").json()[0]
                shipments[order_id] = {"order_address_id": line["order_address_id"],
                                       "tracking_number": f"1Z{order_id}", "shipping_provider": "ups",
                                       "items": [{"order_product_id": line["id"], "quantity": 1}]}
        include = {"include": "consignments.line_items", "consignment_structure": "object"}
        pages = -(-args.orders // 250)
        adjustment = {"reason": "benchmark", "items": [
            {"location_id": 1, "product_id": 111 + n, "quantity": n} for n in range(args.batch)]}
        report: dict[str, Any] = {"orders": args.orders, "clients": args.clients}
        report["read_order"] = drive(store, args.clients, [
            (lambda api, o=o: api.get(f"/v2/orders/{o}", params=include).status_code)
            for o in order_ids])
        report["list_orders"] = drive(store, args.clients, [
            (lambda api, p=p: api.get("/v2/orders", params={
                "status_id": 11, "limit": 250, "page": p}).status_code)
            for p in list(range(1, pages + 1)) * 20])
        report["ship"] = drive(store, args.clients, [
            (lambda api, o=o: api.post(f"/v2/orders/{o}/shipments", json=shipments[o]).status_code)
            for o in order_ids])
        report["inventory"] = drive(store, args.clients, [
            (lambda api: api.put("/v3/inventory/adjustments/absolute",
                                 json=adjustment).status_code) for _ in range(20)])
        report["inventory"]["items_per_call"] = args.batch

        with WebhookReceiver() as receiver, store.client() as api:
            api.post("/v3/hooks", json={"scope": "store/order/created",
                                        "destination": receiver.url})
            created_at = {}
            for _ in range(args.webhooks):
                created_at[sandbox.create_order(store.hash, lines=lines[:1])] = time.time()
            received = receiver.wait_for(args.webhooks, timeout=60)
            delays = [request["time"] - created_at[request["json"]["data"]["id"]]
                      for request in receiver.received]
            # One at a time: the latency of a single event, without a queue ahead of it.
            singles = []
            for _ in range(20):
                before = len(receiver.received)
                started = time.time()
                sandbox.create_order(store.hash, lines=lines[:1])
                receiver.wait_for(before + 1, timeout=10)
                singles.append(receiver.received[-1]["time"] - started)
        report["webhook_delivery"] = {"events": args.webhooks, "received": len(delays),
                                      "all_received": received, **percentiles(delays),
                                      "mean_ms": round(statistics.mean(delays) * 1000, 2)}
        report["webhook_single"] = {"events": len(singles), **percentiles(singles)}
    json.dump(report, sys.stdout, indent=2)
    print()
    failed = any(part.get("failures") for part in report.values() if isinstance(part, dict))
    return 1 if failed or not received else 0


if __name__ == "__main__":
    raise SystemExit(main())
