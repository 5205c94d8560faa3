"""Process kills: DropStream's web, worker and scheduler processes SIGKILLed at random during a
steady order load, restarted as a supervisor would; at the end the invariant checker must find
0 orders lost, 0 duplicated, every shipment posted once and every acknowledged webhook stored.

The BigCommerce sandbox's shoppers place orders (the demo's mix, holds included) while a chaos
loop picks a random process every few seconds (fixed seed), kills it with SIGKILL and starts it
again after a random pause. Then the load stops and the run waits for the loop to settle.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/10 python chaos/process_kills.py --minutes 15 --kills 100

Recovery is waited for in real time by default: a killed worker's item comes back when its
lease lapses (``HEARTBEAT_LEASE``, 1 minute: nothing renews it any more) and is dispatched again
(``DISPATCH_LEASE``, 1 minute after its last dispatch), and store channels run on their
intervals. ``--catch-up`` instead ends those waits at once after the load (what
``tests/reliability`` does to stay short).
Needs PostgreSQL and Redis: a scratch database is created next to DATABASE_URL and dropped;
REDIS_URL's database is emptied first. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `chaos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos._servers import Hub, clean_up_on_sigterm, report_line, scratch_hub  # noqa: E402

log = logging.getLogger("chaos")


def run_kills(hub: Hub, *, seed: int, seconds: float, orders_per_minute: float, kills: int,
              gap: tuple[float, float] = (5.0, 15.0),
              restart_after: tuple[float, float] = (0.0, 2.0),
              catch_up: bool = False, settle_timeout: float = 900.0) -> dict[str, Any]:
    """Kill up to ``kills`` random processes during ``seconds`` of load; returns the figures and
    the checker's verdict (``report`` is the :class:`InvariantReport`)."""
    rng = random.Random(seed)
    names = sorted(hub.processes)
    shoppers = hub.shoppers(orders_per_minute).start()
    started = time.monotonic()
    fired: list[dict[str, Any]] = []
    next_kill = started + rng.uniform(*gap)
    try:
        while time.monotonic() - started < seconds:
            if len(fired) < kills and time.monotonic() >= next_kill:
                name = rng.choice(names)
                process = hub.processes[name]
                pause = rng.uniform(*restart_after)
                process.kill()
                fired.append({"at": round(time.monotonic() - started, 2), "process": name,
                              "down_seconds": round(pause, 2)})
                log.info("killed %s at %.1f s; restarting in %.1f s", name, fired[-1]["at"], pause)
                time.sleep(pause)
                process.start()
                next_kill = time.monotonic() + rng.uniform(*gap)
            time.sleep(0.05)
    finally:
        shoppers.stop()
    placed = shoppers.placed
    load_ended = time.monotonic()
    report, settle_seconds, evidence = hub.finish(settle_timeout, catch_up)
    return {
        "seed": seed, "orders_placed": placed, "kills": len(fired),
        "kills_by_process": {n: sum(1 for k in fired if k["process"] == n) for n in names},
        "load_seconds": round(load_ended - started, 1),
        "settled_seconds_after_load": round(settle_seconds, 1), "caught_up": catch_up,
        "webhook_attempts": hub.webhook_attempts(),
        "verdict": report.as_dict(), "kill_log": fired, "evidence": evidence, "report": report,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="load duration")
    parser.add_argument("--orders-per-minute", type=float, default=200.0)
    parser.add_argument("--kills", type=int, default=100, help="at most this many kills")
    parser.add_argument("--gap", type=float, nargs=2, default=(5.0, 15.0),
                        help="seconds between kills: uniform between these")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--catch-up", action="store_true",
                        help="end lease and channel waits at once after the load")
    parser.add_argument("--settle-timeout", type=float, default=900.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    clean_up_on_sigterm()
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("set DATABASE_URL (PostgreSQL) and REDIS_URL")
    with scratch_hub(os.environ.get("DATABASE_URL"), redis_url,
                     {"workers": args.workers, "seed": args.seed}) as hub:
        result = run_kills(hub, seed=args.seed, seconds=args.minutes * 60,
                           orders_per_minute=args.orders_per_minute, kills=args.kills,
                           gap=tuple(args.gap), catch_up=args.catch_up,
                           settle_timeout=args.settle_timeout)
        report = result.pop("report")
        print(report.summary(), file=sys.stderr)
        report_line({**result, "logs": str(hub.folder)})
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
