"""Fault run: webhooks that never come, and a receiver down long enough to lose its hooks.

The BigCommerce sandbox silently drops a share (``--drop``) of its webhook deliveries for the
whole run. Part-way, DropStream's web server is stopped for ``--outage-seconds``: every
delivery meanwhile fails, BigCommerce's retry schedule (scaled by ``--retry-scale`` so that it
runs out within the outage) is exhausted and the hooks are deactivated, as after ~48 h of a
real outage. Orders keep coming before, during and after. DropStream's polling sweep must
import every order anyway (and every one must ship), and switch the hooks back on.

Reported: orders, deliveries dropped and failed, hooks seen deactivated and active at the end,
how many orders only the sweep brought in, and how long after the receiver came back the last
order was imported (against the sweep's interval).

    python chaos/reconciliation.py                     # full size: 2,000 orders, 5 min outage
    python chaos/reconciliation.py --orders 100 --outage-seconds 20 --retry-scale 0.0001

Runs on DATABASE_URL / REDIS_URL when set (scratch database; real worker processes), else on
the embedded default. Exit status 1 when the checker or a figure fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

if __package__ in (None, ""):  # run as a script: make `chaos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.harness import FaultRun, Options, finish, scratch_run  # noqa: E402
from dropstream.jobs.models import InboxEvent  # noqa: E402
from dropstream.orders.models import Order  # noqa: E402


def reconciliation(run: FaultRun, orders: int, *, drop: float = 0.2,
                   outage_seconds: float = 300, rate: float = 10.0, timeout: float = 900,
                   hurry: bool = False) -> tuple[dict[str, Any], list[str], Any]:
    """The whole run on a started :class:`FaultRun` (with a sweep and a scaled retry
    schedule): (figures, failures beyond the checker's, the checker's report)."""
    failures: list[str] = []
    run.bigcommerce.inject("drop_webhooks", count=None, probability=drop, duration=10**6)
    run.note(f"dropping {drop:.0%} of webhooks")
    third = orders // 3
    run.place_orders(third, rate=rate)

    run.receiver_down()
    down_at = time.monotonic()
    run.note("receiver down")
    deactivated: set[int] = set()
    during = orders - 2 * third
    for number in range(during):
        run.place_orders(1)
        deactivated |= inactive_hooks(run)
        _sleep_until(down_at + (number + 1) * outage_seconds / (during + 1))
    while time.monotonic() < down_at + outage_seconds:
        deactivated |= inactive_hooks(run)
        time.sleep(0.2)
    run.receiver_up()
    up_at = time.time()
    run.note(f"receiver up; {len(deactivated)} hooks were seen deactivated")
    missed = set(run.placed)  # placed before the receiver came back
    run.place_orders(third, rate=rate)
    run.wait_for(lambda: missed <= imported(run), timeout=timeout, poll=0.5)
    missed_in_after = time.time() - up_at

    expected = set(run.placed)
    run.wait_for(lambda: expected <= imported(run), timeout=timeout, poll=0.5)
    all_in_after = time.time() - up_at
    drained, drain_seconds, report = run.drain(timeout, hurry=hurry)
    hooks = [hook for store_hash in run.hashes.values()
             for hook in run.bigcommerce.hooks(store_hash)]
    still_off = [hook["id"] for hook in hooks if not hook["is_active"]]
    deliveries = run.bigcommerce.webhook_deliveries()
    hinted = hinted_orders(run)
    if not drained:
        failures.append(f"not drained within {timeout:g} s")
    if not expected <= imported(run):
        never = sorted(expected - imported(run))
        failures.append(f"{len(never)} orders never imported")
        failures += run.explain(never[:10])
    if not deactivated:
        failures.append("the outage never got a hook deactivated (retry schedule too long?)")
    if still_off:
        failures.append(f"hooks still deactivated at the end: {still_off}")
    figures = {
        "orders": len(run.placed),
        "deliveries": len(deliveries),
        "dropped": sum(1 for d in deliveries if d["state"] == "dropped"),
        "failed_or_cancelled": sum(1 for d in deliveries if d["state"] in ("failed", "cancelled")),
        "hooks_seen_deactivated": len(deactivated), "hooks": len(hooks),
        "hooks_active_at_end": len(hooks) - len(still_off),
        "orders_only_the_sweep_found": len(expected - hinted),
        "outage_seconds": outage_seconds,
        "sweep_interval_seconds": run.options.orders_every,
        "earlier_orders_all_imported_seconds_after_receiver_up": round(missed_in_after, 1),
        "all_imported_seconds_after_receiver_up": round(all_in_after, 1),
        "time_to_drain_seconds": round(drain_seconds, 1),
    }
    return figures, failures, report


def _sleep_until(moment: float) -> None:
    if moment > time.monotonic():
        time.sleep(moment - time.monotonic())


def inactive_hooks(run: FaultRun) -> set[int]:
    return {hook["id"] for store_hash in run.hashes.values()
            for hook in run.bigcommerce.hooks(store_hash) if not hook["is_active"]}


def imported(run: FaultRun) -> set[tuple[int, str]]:
    return run.db(lambda session: set(session.execute(select(Order.store_id, Order.external_id))))


def hinted_orders(run: FaultRun) -> set[tuple[int, str]]:
    """Orders a webhook told DropStream about (an inbox row names them)."""
    return run.db(lambda session: {
        (store_id, str((payload.get("data") or {}).get("id")))
        for store_id, payload in session.execute(select(InboxEvent.store_id, InboxEvent.payload))
        if isinstance(payload, dict)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--merchants", type=int, default=10)
    parser.add_argument("--drop", type=float, default=0.2, help="share of webhooks dropped")
    parser.add_argument("--outage-seconds", type=float, default=300)
    parser.add_argument("--retry-scale", type=float, default=0.0012,
                        help="BigCommerce's ~48 h retry schedule times this (must fit the outage)")
    parser.add_argument("--sweep-seconds", type=int, default=30)
    parser.add_argument("--rate", type=float, default=10.0, help="orders a second")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (REDIS_URL)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to drain, at most")
    args = parser.parse_args()
    options = Options(merchants=args.merchants, seed=args.seed, workers=args.workers, progress=True,
                      orders_every=args.sweep_seconds,
                      webhook_retry_scale=args.retry_scale, ship_delay=2.0, shipments_every=2,
                      inventory_every=10)
    with scratch_run(options, "dropstream_reconcile") as run:
        figures, failures, report = reconciliation(
            run, args.orders, drop=args.drop, outage_seconds=args.outage_seconds,
            rate=args.rate, timeout=args.timeout)
    return finish("reconciliation", {"seed": args.seed, **figures}, report, failures)


if __name__ == "__main__":
    raise SystemExit(main())
