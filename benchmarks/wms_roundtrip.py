"""Benchmark: the generic WMS connector against its sandbox over real loopback HTTP.

No database: this measures the connector and the protocol (JSON mapping, schema validation, the
guarded outbound session) and the sandbox, not the core pipeline (see core_pipeline.py). For N
orders it creates each one (twice: the repeat must be answered with the existing order), then
ships them all and reads every shipment back page by page, then reads the full stock snapshot.
With ``--no-dedupe`` the WMS does not de-duplicate and the connector looks each reference up
first. With ``--batch N`` the orders (and their repeats) go N a call through
``POST /v1/orders/batch``, as forwards that queue up for a store do. It reports per-operation latency percentiles, throughput, and duplicated or missing
orders (must be 0).

    python benchmarks/wms_roundtrip.py --orders 500
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dropstream.connectors.base import ConnectorContext
from dropstream.connectors.types import Address, WarehouseLine, WarehouseOrder
from dropstream.net.outbound import OutboundPolicy
from dropstream_wms_generic.client import Auth, WmsClient
from dropstream_wms_generic.connector import GenericWmsConnector
from dropstream_wms_generic.sandbox import WmsSandbox


class BenchConnector(GenericWmsConnector):
    """The connector with the loopback-allowing policy a sandbox needs (no app here)."""

    def client(self) -> WmsClient:
        settings = self.settings
        return WmsClient(
            settings["base_url"],
            Auth("bearer", token=self.context.credentials["token"]),
            OutboundPolicy(allow_loopback=True),
        )


def timed(samples: list[float], call: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - start)
    return result


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--lines", type=int, default=3, help="lines per order")
    parser.add_argument("--no-dedupe", action="store_true", help="a WMS that does not de-duplicate")
    parser.add_argument("--batch", type=int, default=1, help="orders per create call (1-100)")
    args = parser.parse_args()
    if not 1 <= args.batch <= 100 or (args.batch > 1 and args.no_dedupe):
        parser.error("--batch takes 1 to 100, and batches need a WMS that de-duplicates")

    timings: dict[str, list[float]] = {
        "create": [],
        "repeat": [],
        "shipments_page": [],
        "stock_page": [],
    }
    with WmsSandbox(auto=False, ship_delay=0, partial_ratio=0.25, dedupe=not args.no_dedupe) as wms:
        wms.set_stock("BENCH", {f"SKU-{n}": 1_000_000 for n in range(args.lines * 10)})
        connector = BenchConnector(
            ConnectorContext(
                "wms_generic",
                1,
                {
                    "base_url": wms.url,
                    "default_account": "BENCH",
                    "dedupes_references": not args.no_dedupe,
                    "batch_create": args.batch > 1,
                    "shipments_page_size": 100,
                    "stock_page_size": 500,
                },
                {"token": "wms-token"},
            )
        )
        orders = []
        for n in range(args.orders):
            orders.append(WarehouseOrder(
                reference=f"DS-1-{n}",
                order_number=str(n),
                placed_at=datetime.now(UTC),
                ship_to=Address(
                    name="Ada Lovelace",
                    street1="12 Analytical Row",
                    city="London",
                    postal_code="N1 9GU",
                    country_code="GB",
                ),
                ship_code="GRND",
                lines=tuple(
                    WarehouseLine(str(i), f"SKU-{(n + i) % (args.lines * 10)}", 1 + i)
                    for i in range(args.lines)
                ),
            ))
        started = time.perf_counter()
        if args.batch > 1:
            for start in range(0, len(orders), args.batch):
                batch = orders[start : start + args.batch]
                made = timed(timings["create"], lambda batch=batch: connector.forward_orders(batch))
                again = timed(timings["repeat"], lambda batch=batch: connector.forward_orders(batch))
                if not all(a.created and not b.created for a, b in zip(made, again, strict=True)):
                    raise SystemExit(f"a batch was not answered as created, then found: {made}")
        else:
            for order in orders:
                timed(timings["create"], lambda order=order: connector.forward_order(order))
                timed(timings["repeat"], lambda order=order: connector.forward_order(order))
        forward_seconds = time.perf_counter() - started
        for order in wms.orders():
            wms.ship(order["reference"])
        shipments, cursor, started = 0, None, time.perf_counter()
        while True:
            page = timed(
                timings["shipments_page"], lambda cursor=cursor: connector.fetch_shipments(cursor)
            )
            shipments += len(page.shipments)
            cursor = page.cursor
            if not page.more:
                break
        read_seconds = time.perf_counter() - started
        cursor, levels = None, 0
        while True:
            snapshot = timed(
                timings["stock_page"],
                lambda cursor=cursor: connector.fetch_inventory(cursor, full=True),
            )
            levels += len(snapshot.levels)
            cursor = snapshot.cursor
            if not snapshot.more:
                break
        references = [o["reference"] for o in wms.orders()]
    report = {
        "orders": args.orders,
        "lines_per_order": args.lines,
        "dedupe": not args.no_dedupe,
        "orders_per_create_call": args.batch,
        "forward_orders_per_second": round(args.orders * 2 / forward_seconds, 1),
        "shipments_read_per_second": round(shipments / read_seconds, 1),
        "shipments": shipments,
        "stock_levels": levels,
        "duplicated_orders": len(references) - len(set(references)),
        "missing_orders": args.orders - len(set(references)),
        "latency": {name: percentiles(samples) for name, samples in timings.items() if samples},
    }
    print(json.dumps(report, indent=2))
    return 0 if report["duplicated_orders"] == report["missing_orders"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
