"""Restarts: PostgreSQL restarted (``pg_ctl -m immediate`` and ``-m fast``) and Redis restarted
without saving (``SHUTDOWN NOSAVE``) or flushed (``FLUSHALL``) while orders flow; afterwards the
invariant checker must find 0 orders lost, 0 duplicated, every acknowledged webhook stored, and
every process still running (pools reconnect, workers reconnect, the relay re-enqueues from the
database what Redis forgot).

The servers are the run's own: a PostgreSQL cluster made with ``initdb`` in a temporary folder
and a ``redis-server`` without persistence, each on a free loopback port. The machine's shared
PostgreSQL and Redis are never used, so nothing here can restart or flush them.

    python chaos/restarts.py --pg-restarts 20 --redis-restarts 10 --redis-flushes 5

Faults come in a shuffled order (fixed seed), one every ``--gap`` seconds (uniform), each outage
lasting ``--down`` seconds; the load continues throughout and for one gap after the last fault.
Recovery is waited for in real time unless ``--catch-up`` ends the lease and channel waits at
once after the load. Run as root (``initdb`` runs as the ``postgres`` user) or as a user who may
run ``initdb`` and ``pg_ctl``.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `chaos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos._servers import (  # noqa: E402
    Hub,
    PrivatePostgres,
    PrivateRedis,
    clean_up_on_sigterm,
    report_line,
    running_hub,
)

log = logging.getLogger("chaos")
KINDS = ("pg_immediate", "pg_fast", "redis_restart", "redis_flushall")


def plan(rng: random.Random, counts: dict[str, int]) -> list[str]:
    """The faults in a shuffled order, PostgreSQL's two modes alternating among themselves."""
    faults = [kind for kind in ("redis_restart", "redis_flushall") for _ in range(counts[kind])]
    pg = ["pg_immediate" if n % 2 == 0 else "pg_fast"
          for n in range(counts["pg_immediate"] + counts["pg_fast"])]
    faults += pg
    rng.shuffle(faults)
    return faults


def inject(kind: str, postgres: PrivatePostgres, redis: PrivateRedis, down: float) -> None:
    if kind == "pg_immediate":
        postgres.restart("immediate", down)
    elif kind == "pg_fast":
        postgres.restart("fast", down)
    elif kind == "redis_restart":
        redis.restart(down)
    elif kind == "redis_flushall":
        redis.flushall()
    else:
        raise ValueError(kind)


def run_restarts(hub: Hub, postgres: PrivatePostgres, redis: PrivateRedis, *, seed: int,
                 counts: dict[str, int], orders_per_minute: float,
                 gap: tuple[float, float] = (20.0, 40.0), down: tuple[float, float] = (2.0, 10.0),
                 catch_up: bool = False, settle_timeout: float = 900.0) -> dict[str, Any]:
    """Inject the planned faults under load; returns the figures and the checker's verdict
    (``report``)."""
    rng = random.Random(seed)
    faults = plan(rng, counts)
    shoppers = hub.shoppers(orders_per_minute).start()
    started = time.monotonic()
    fired: list[dict[str, Any]] = []
    try:
        for kind in faults:
            time.sleep(rng.uniform(*gap))
            outage = rng.uniform(*down)
            at = time.monotonic() - started
            inject(kind, postgres, redis, outage)
            fired.append({"at": round(at, 1), "fault": kind,
                          "seconds": round(time.monotonic() - started - at, 1)})
            log.info("%s at %.1f s (%.1f s)", kind, at, fired[-1]["seconds"])
        time.sleep(rng.uniform(*gap))  # load goes on after the last fault
    finally:
        shoppers.stop()
    load_seconds = time.monotonic() - started
    exited = sorted(name for name, process in hub.processes.items() if not process.alive)
    report, settle_seconds, evidence = hub.finish(settle_timeout, catch_up)
    return {
        "seed": seed, "orders_placed": shoppers.placed, "faults": len(fired),
        "faults_by_kind": {kind: sum(1 for f in fired if f["fault"] == kind) for kind in KINDS},
        "load_seconds": round(load_seconds, 1),
        "settled_seconds_after_load": round(settle_seconds, 1), "caught_up": catch_up,
        "webhook_attempts": hub.webhook_attempts(),
        "processes_that_exited": exited, "verdict": report.as_dict(), "fault_log": fired,
        "evidence": evidence, "report": report,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-restarts", type=int, default=20,
                        help="PostgreSQL restarts, alternately immediate and fast")
    parser.add_argument("--redis-restarts", type=int, default=10)
    parser.add_argument("--redis-flushes", type=int, default=5)
    parser.add_argument("--orders-per-minute", type=float, default=100.0)
    parser.add_argument("--gap", type=float, nargs=2, default=(20.0, 40.0))
    parser.add_argument("--down", type=float, nargs=2, default=(2.0, 10.0))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--catch-up", action="store_true")
    parser.add_argument("--settle-timeout", type=float, default=900.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    clean_up_on_sigterm()
    counts = {"pg_immediate": (args.pg_restarts + 1) // 2, "pg_fast": args.pg_restarts // 2,
              "redis_restart": args.redis_restarts, "redis_flushall": args.redis_flushes}
    folder = Path(tempfile.mkdtemp(prefix="dropstream-restarts-"))
    postgres = PrivatePostgres(folder / "postgres")
    redis = PrivateRedis(folder / "redis")
    try:
        postgres.start()
        redis.start()
        with running_hub(postgres.url, redis.url, {"workers": args.workers, "seed": args.seed},
                         folder=folder / "hub") as hub:
            result = run_restarts(hub, postgres, redis, seed=args.seed, counts=counts,
                                  orders_per_minute=args.orders_per_minute, gap=tuple(args.gap),
                                  down=tuple(args.down), catch_up=args.catch_up,
                                  settle_timeout=args.settle_timeout)
    finally:
        redis.destroy()
        postgres.destroy()
    report = result.pop("report")
    print(report.summary(), file=sys.stderr)
    report_line(result)
    return 0 if report.ok and not result["processes_that_exited"] else 1


if __name__ == "__main__":
    sys.exit(main())
