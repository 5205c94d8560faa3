"""Fault run: the store and the warehouse misbehave while orders flow.

For ``--fault-seconds`` a share (``--rate``) of every call to the BigCommerce sandbox fails in
one of its ways — 500, 502, 503 with Retry-After, 504, 429 without headers, 429 with the
quota's reset headers, connection reset before and after the work, a slow answer, a truncated
body, an HTML page with 200 — and the same share of calls to the WMS sandbox (503 with
Retry-After, 500, 429, a hang past the warehouse's timeout, a dropped connection, a lost reply
after the work, an HTML page, a truncated body). Meanwhile:

* a few orders are deleted from the store for good right after they are placed (404);
* one store's API account is revoked: the store must be paused and flagged with an alert, and
  called at most a few times after the revocation (``--max-calls-after-revocation``); the
  merchant then reconnects it with a new account, and its orders still arrive;
* in the full run, a few store calls hang past the client's 30 s read timeout;
* then the WMS refuses everything for ``--outage-seconds``.

Every order placed (but the deleted ones) must then reach the WMS once, ship and be posted once;
the checker must report nothing; no operation may take more than 8 attempts; after a 429 with
reset headers no call goes to that store before the reset.

    python chaos/upstream_faults.py                    # full size: 10 min of faults, 5 min outage
    python chaos/upstream_faults.py --orders 60 --fault-seconds 30 --outage-seconds 10

Runs on DATABASE_URL / REDIS_URL when set (scratch database; real worker processes), else on
the embedded default. Exit status 1 when the checker or a figure fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from random import Random
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

if __package__ in (None, ""):  # run as a script: make `chaos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.harness import ORDER_WORK, FaultRun, Options, finish, scratch_run  # noqa: E402
from dropstream.alerts.models import Alert  # noqa: E402
from dropstream.jobs.models import OutboxItem, OutboxState  # noqa: E402
from dropstream.jobs.outbox import MAX_ATTEMPTS  # noqa: E402
from dropstream.orders.models import Order  # noqa: E402
from dropstream.orders.statuses import OrderStatus  # noqa: E402
from dropstream.stores import channels, services  # noqa: E402
from dropstream.stores.models import Store, StoreState  # noqa: E402
from dropstream.stores.setup import run_setup_checks  # noqa: E402
from dropstream.tenants.scope import TenantScope  # noqa: E402

#: BigCommerce fault kinds and their share of the faults (retry_after where the kind takes one).
STORE_FAULTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("500", {}), ("502", {}), ("503", {"retry_after": 1}), ("504", {}), ("429", {}),
    ("429_reset", {"retry_after": 2}), ("reset", {}), ("reset_after", {}),
    ("slow", {"delay": 1.5}), ("truncated", {}), ("html", {}),
)
#: WMS fault kinds (``inject`` arguments).
WAREHOUSE_FAULTS: tuple[dict[str, Any], ...] = (
    {"kind": "error", "status": 503, "retry_after": 1}, {"kind": "error", "status": 500},
    {"kind": "error", "status": 429, "retry_after": 1}, {"kind": "slow", "seconds": 3.0},
    {"kind": "drop"}, {"kind": "lose_reply"}, {"kind": "garbage"}, {"kind": "truncated"},
)
#: A call already on its way when a 429 arrived may still land this long after it.
IN_FLIGHT_GRACE = 0.3


def upstream_faults(run: FaultRun, orders: int, *, seed: int, rate: float = 0.3,
                    fault_seconds: float = 600, outage_seconds: float = 300,
                    revoked_seconds: float = 60, deleted: int = 5, hangs: int = 0,
                    max_calls_after_revocation: int = 10, timeout: float = 900,
                    hurry: bool = False, every_kind_first: bool = False,
                    ) -> tuple[dict[str, Any], list[str], Any]:
    """The whole run on a started :class:`FaultRun`: (figures, failures beyond the checker's,
    the checker's report). ``hurry``: once the faults are over, skip backoff waits (small
    runs). ``every_kind_first``: the first warehouse calls meet every kind of fault once
    before chance takes over (a small run makes too few calls for chance to meet them all)."""
    rng = Random(seed)
    failures: list[str] = []
    started = time.monotonic()
    share = rate / len(STORE_FAULTS)
    for kind, extra in STORE_FAULTS:
        run.bigcommerce.inject(kind, count=None, probability=share, duration=fault_seconds, **extra)
    if hangs:  # past the client's 30 s read timeout
        run.bigcommerce.inject("slow", count=hangs, delay=35.0, probability=0.05,
                               duration=fault_seconds)
    for fault in WAREHOUSE_FAULTS if every_kind_first else ():
        run.wms.inject(times=1, **fault)
    for fault in WAREHOUSE_FAULTS:
        run.wms.inject(times=100_000, probability=rate / len(WAREHOUSE_FAULTS), **fault)
    run.note(f"faults on: {rate:.0%} of store and warehouse calls for {fault_seconds:g} s")

    victim = run.store_ids[-1]
    per_second = orders / fault_seconds
    placed: list[tuple[int, str]] = []
    purged: list[tuple[int, str]] = []
    revoked_at = reconnected_at = paused_after = first_refused_at = None
    calls_while_revoked = 0
    half = orders // 2
    for number in range(orders):
        due = started + number / per_second
        if due > time.monotonic():
            time.sleep(due - time.monotonic())
        (order,) = run.place_orders(1)
        if len(purged) < deleted and rng.random() < 2 * deleted / orders:
            run.bigcommerce.purge_order(run.hashes[order[0]], int(order[1]))
            purged.append(order)
        else:
            placed.append(order)
        if number == half // 2 and revoked_at is None:
            revoked_at = revoke(run, victim)
        if revoked_at is not None and paused_after is None and paused(run, victim):
            paused_after = time.time() - revoked_at
        if revoked_at is not None and reconnected_at is None \
                and time.time() - revoked_at > revoked_seconds and paused_after is not None:
            calls_while_revoked = calls_after(run, victim, revoked_at)
            first_refused_at = first_refused_call(run, victim, revoked_at)
            reconnected_at = reconnect(run, victim)
    if revoked_at is not None and reconnected_at is None:
        if not run.wait_for(lambda: paused(run, victim), timeout=60):
            failures.append("the store whose token was revoked was never paused")
        paused_after = paused_after or time.time() - revoked_at
        calls_while_revoked = calls_after(run, victim, revoked_at)
        first_refused_at = first_refused_call(run, victim, revoked_at)
        reconnected_at = reconnect(run, victim)
    left = fault_seconds - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)
    run.bigcommerce.clear_faults()
    run.wms.clear_faults()
    run.note("faults off")

    run.wms.outage(outage_seconds)
    run.note(f"WMS outage for {outage_seconds:g} s")
    outage_orders = run.place_orders(max(2, orders // 20))
    time.sleep(outage_seconds)
    if not run.wms.faults.fired.get("outage"):
        # A short outage can fall between calls (the orders placed in it still being read
        # from the store): it goes on until a call has met it, so the run has had one.
        run.wms.outage(60)
        if not run.wait_for(lambda: run.wms.faults.fired.get("outage", 0) > 0, timeout=60):
            failures.append("no warehouse call met the outage")
        run.wms.outage(0)
    run.note("WMS back")
    drained, drain_seconds, report = run.drain(timeout, hurry=hurry,
                                               until=lambda: not not_shipped(run))

    stats = [run.bigcommerce.stats(h) for h in run.hashes.values()]
    store_faults = Counter(c["fault"] for c in run.bigcommerce.call_log() if c["fault"])
    warehouse_faults = dict(run.wms.faults.fired)
    wms_calls = len(run.wms.requests())
    attempts, dead = work_attempts(run)
    unshipped = not_shipped(run)
    early = calls_before_reset(run)
    flagged = alerted(run, victim)
    if not drained:
        failures.append(f"not drained within {timeout:g} s")
    if unshipped:
        failures.append(f"{len(unshipped)} orders did not ship: {unshipped[:5]}")
        missing = [(int(key.split("/")[0]), key.split("/")[1].split(":")[0])
                   for key in unshipped if key.endswith("missing")]
        failures += run.explain(missing[:10])
    if attempts > MAX_ATTEMPTS or dead:
        failures.append(f"work took up to {attempts} attempts; {dead} items gave up")
    if calls_while_revoked > max_calls_after_revocation:
        failures.append(f"{calls_while_revoked} calls with the revoked token (at most "
                        f"{max_calls_after_revocation})")
    if not flagged:
        failures.append("no alert flags the store whose token was revoked")
    if early:
        failures.append(f"{len(early)} calls before a 429's reset: {early[:3]}")
    figures = {
        "seed": seed, "orders": len(placed) + len(outage_orders), "deleted_orders": len(purged),
        "store_calls": sum(s["calls"] for s in stats), "warehouse_calls": wms_calls,
        "store_faults": dict(sorted(store_faults.items())),
        "warehouse_faults": dict(sorted(warehouse_faults.items())),
        "faults_injected": sum(store_faults.values()) + sum(warehouse_faults.values()),
        "fault_share": round((sum(store_faults.values()) + sum(
            v for k, v in warehouse_faults.items() if k != "outage"))
            / max(1, sum(s["calls"] for s in stats) + wms_calls), 3),
        "outage_seconds": outage_seconds,
        "revoked_store_paused_after_seconds": round(paused_after or -1, 1),
        # DropStream learns of a revocation from the first call refused, which may come a while
        # after it (the revocation removes the store's webhooks; its calls may be waiting for
        # the quota): how long the pause took after that call, as this loop saw it.
        "paused_after_first_refused_call_seconds": (
            -1 if first_refused_at is None or paused_after is None
            else round(revoked_at + paused_after - first_refused_at, 1)),
        "calls_with_revoked_token": calls_while_revoked,
        "most_attempts_per_operation": attempts,
        "calls_before_429_reset": len(early),
        "time_to_drain_seconds": round(drain_seconds, 1),
        "events": [f"{time.strftime('%H:%M:%S', time.localtime(at))} {what}"
                   for at, what in run.events],
    }
    return figures, failures, report


def revoke(run: FaultRun, store_id: int) -> float:
    """Delete the store's API account in BigCommerce (its token stops working, its hooks go)."""
    store_hash = run.hashes[store_id]
    client_id = next(iter(run.bigcommerce.state.stores[store_hash].accounts))
    at = time.time()
    run.bigcommerce.revoke_api_account(store_hash, client_id)
    run.note(f"revoked the API account of store {store_hash}")
    return at


def reconnect(run: FaultRun, store_id: int) -> float:
    """What the merchant does: a new API account, entered in DropStream; the set-up checks
    (which register the webhooks again); resume."""
    store_hash = run.hashes[store_id]
    account = run.bigcommerce.create_api_account(store_hash)
    credentials = {"store_hash": store_hash, "client_id": account["client_id"],
                   "client_secret": account["client_secret"],
                   "access_token": account["access_token"]}

    def enter(session: Any) -> None:
        store = session.get(Store, store_id)
        services.update_store(session, TenantScope(store.provider_id), store,
                              {"credentials": credentials})
        session.commit()
        run_setup_checks(session, store)
        channels.resume_store(session, store)

    run.db(enter)
    run.note(f"store {store_hash} reconnected with a new API account and resumed")
    return time.time()


def paused(run: FaultRun, store_id: int) -> bool:
    return run.stores()[store_id]["state"] == StoreState.PAUSED.value


def calls_after(run: FaultRun, store_id: int, moment: float) -> int:
    """Calls to the store since ``moment`` made with a token it no longer has."""
    return sum(1 for call in run.bigcommerce.call_log(run.hashes[store_id])
               if call["time"] >= moment and call["token_store"] is None)


def first_refused_call(run: FaultRun, store_id: int, moment: float) -> float | None:
    """When the store first refused a call made with its revoked token, after ``moment``."""
    return min((call["time"] for call in run.bigcommerce.call_log(run.hashes[store_id])
                if call["time"] >= moment and call["token_store"] is None), default=None)


def alerted(run: FaultRun, store_id: int) -> bool:
    return bool(run.db(lambda session: session.scalar(
        select(func.count()).select_from(Alert).where(
            Alert.store_id == store_id, Alert.code == "auth_failed"))))


def work_attempts(run: FaultRun) -> tuple[int, int]:
    """The most attempts any order or shipment operation took, and how many gave up."""
    def count(session: Any) -> tuple[int, int]:
        most = session.scalar(select(func.max(OutboxItem.attempts)).where(
            OutboxItem.kind.in_(ORDER_WORK))) or 0
        dead = session.scalar(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.kind.in_(ORDER_WORK), OutboxItem.state == OutboxState.DEAD)) or 0
        return most, dead

    return run.db(count)


def not_shipped(run: FaultRun) -> list[str]:
    """Orders placed (and not deleted) that DropStream does not show as shipped."""
    statuses = run.db(lambda session: {(o.store_id, o.external_id): o.status
                                       for o in session.scalars(select(Order))})
    purged = {(sid, str(oid)) for sid, h in run.hashes.items()
              for oid in run.bigcommerce.state.stores[h].purged_orders}
    return [f"{store_id}/{external_id}: "
            f"{getattr(statuses.get((store_id, external_id)), 'value', 'missing')}"
            for store_id, external_id in run.placed
            if (store_id, external_id) not in purged
            and statuses.get((store_id, external_id)) is not OrderStatus.SHIPPED]


def calls_before_reset(run: FaultRun) -> list[str]:
    """Calls to a store after it answered 429 with reset headers and before that reset."""
    early = []
    for store_hash in run.hashes.values():
        calls = sorted(run.bigcommerce.call_log(store_hash), key=lambda c: c["time"])
        for refusal in (c for c in calls if c["fault"] == "429_reset"):
            reset_at = refusal["time"] + 2  # the injected retry_after
            early += [f"{store_hash} {c['method']} {c['path']} {c['time'] - refusal['time']:.2f}s "
                      f"after the 429" for c in calls
                      if refusal["time"] + IN_FLIGHT_GRACE < c["time"] < reset_at]
    return early


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.3, help="share of calls that fail")
    parser.add_argument("--fault-seconds", type=float, default=600)
    parser.add_argument("--outage-seconds", type=float, default=300)
    parser.add_argument("--revoked-seconds", type=float, default=60)
    parser.add_argument("--hangs", type=int, default=3, help="store calls held past 30 s")
    parser.add_argument("--max-calls-after-revocation", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="worker processes (REDIS_URL)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to drain, at most")
    args = parser.parse_args()
    options = Options(merchants=args.merchants, seed=args.seed, workers=args.workers, progress=True,
                      orders_every=10, ship_delay=2.0,
                      shipments_every=2, inventory_every=5)
    with scratch_run(options, "dropstream_upstream") as run:
        figures, failures, report = upstream_faults(
            run, args.orders, seed=args.seed, rate=args.rate, fault_seconds=args.fault_seconds,
            outage_seconds=args.outage_seconds, revoked_seconds=args.revoked_seconds,
            hangs=args.hangs, max_calls_after_revocation=args.max_calls_after_revocation,
            timeout=args.timeout)
    return finish("upstream faults", figures, report, failures)


if __name__ == "__main__":
    raise SystemExit(main())
