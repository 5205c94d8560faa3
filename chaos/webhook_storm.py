"""Fault run: duplicate and out-of-order webhooks.

Orders are placed in the BigCommerce sandbox with its webhooks switched off (and no polling
sweep), so the only way DropStream learns of them is this script: it delivers each order's
``store/order/created``, ``store/order/statusUpdated`` (to Awaiting Fulfillment) and
``store/order/updated`` over HTTP to DropStream's real webhook endpoint, signed as BigCommerce
signs them, 1–9 copies of each (fewer copies more likely), all shuffled, a share of orders with
their updates before their create, from several senders at once; a refused delivery is retried
as BigCommerce would. After the orders have shipped, a share of events is delivered once more,
late. The checker must then find 0 lost and 0 duplicated, one inbox row per distinct event, and
nothing changed by the late copies.

    python chaos/webhook_storm.py                      # full size: 600 orders, ~9,000 deliveries
    python chaos/webhook_storm.py --orders 50 --seed 3

Runs on DATABASE_URL / REDIS_URL when set (scratch database; real worker processes), else on
the embedded default. Exit status 1 when the checker or a figure fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import threading
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from random import Random
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

if __package__ in (None, ""):  # run as a script: make `chaos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.harness import FaultRun, Options, finish, scratch_run  # noqa: E402
from dropstream.jobs.models import InboxEvent  # noqa: E402
from dropstream.stores.credentials import read_credentials  # noqa: E402
from dropstream.stores.models import Store  # noqa: E402
from dropstream_bigcommerce.connector import WEBHOOK_SECRET_HEADER  # noqa: E402
from dropstream_bigcommerce.hooks import PATH  # noqa: E402
from dropstream_bigcommerce.sandbox.delivery import signature  # noqa: E402

#: Weights of 1…9 copies of one event: most events come once or twice, a few many times.
COPY_WEIGHTS = (30, 20, 14, 10, 8, 6, 5, 4, 3)
#: A refused delivery is sent again this many times (BigCommerce retries for ~48 h).
SEND_ATTEMPTS = 6
AWAITING_FULFILLMENT = 11


@dataclass
class Event:
    """One webhook event; each copy is delivered with the same payload and ``webhook-id``."""

    store_hash: str
    order_id: int
    scope: str
    payload: dict[str, Any]
    message_id: str


@dataclass
class Storm:
    """Deliveries made, in the sandbox's delivery shape (for the checker), and figures."""

    deliveries: list[dict[str, Any]] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def events_for(run: FaultRun, placed: list[tuple[int, str]]) -> list[Event]:
    """Three events per order, as BigCommerce sends them for a checkout."""
    events = []
    for store_id, external_id in placed:
        store_hash = run.hashes[store_id]
        store_number = str(run.bigcommerce.state.stores[store_hash].store_id)
        order_id = int(external_id)
        for scope, data in (
                ("store/order/created", {"type": "order", "id": order_id}),
                ("store/order/statusUpdated", {"type": "order", "id": order_id, "status": {
                    "previous_status_id": 0, "new_status_id": AWAITING_FULFILLMENT}}),
                ("store/order/updated", {"type": "order", "id": order_id})):
            digest = hashlib.sha1(json.dumps(data, separators=(",", ":")).encode()).hexdigest()
            payload = {"scope": scope, "store_id": store_number, "data": data, "hash": digest,
                       "created_at": int(time.time()), "producer": f"stores/{store_hash}"}
            message = hashlib.sha1(f"{scope}{store_hash}{order_id}".encode()).hexdigest()
            events.append(Event(store_hash, order_id, scope, payload, f"msg_{message}"))
    return events


def schedule(events: list[Event], rng: Random, updates_first: float) -> list[Event]:
    """1–9 copies of each event, shuffled; for a share of orders every update comes before any
    copy of its create."""
    copies = [event for event in events
              for _ in range(rng.choices(range(1, 10), weights=COPY_WEIGHTS)[0])]
    rng.shuffle(copies)
    orders = sorted({(e.store_hash, e.order_id) for e in events})
    for key in rng.sample(orders, round(len(orders) * updates_first)):
        slots = [i for i, e in enumerate(copies) if (e.store_hash, e.order_id) == key]
        mine = [copies[i] for i in slots]
        ordered = ([e for e in mine if e.scope != "store/order/created"]
                   + [e for e in mine if e.scope == "store/order/created"])
        for slot, event in zip(slots, ordered, strict=True):
            copies[slot] = event
    return copies


def deliver(run: FaultRun, copies: list[Event], storm: Storm, senders: int) -> None:
    """Send every copy from ``senders`` threads, each copy retried until DropStream says 2xx."""
    secrets = _secrets(run)
    url = f"{run.base_url}{PATH}"
    position = iter(range(len(copies)))
    position_lock = threading.Lock()

    def work() -> None:
        with requests.Session() as session:
            session.trust_env = False
            while True:
                with position_lock:
                    index = next(position, None)
                if index is None:
                    return
                _send(session, url, copies[index], secrets[copies[index].store_hash], storm)

    threads = [threading.Thread(target=work, name=f"storm-{n}") for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _send(session: requests.Session, url: str, event: Event, secret: tuple[str, str],
          storm: Storm) -> None:
    header_secret, client_secret = secret
    body = json.dumps(event.payload).encode()
    attempts = []
    for attempt in range(SEND_ATTEMPTS):
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", WEBHOOK_SECRET_HEADER: header_secret,
                   "webhook-id": event.message_id, "webhook-timestamp": stamp,
                   "webhook-signature": signature(client_secret, event.message_id, stamp, body)}
        started = time.monotonic()
        try:
            with session.post(url, data=body, headers=headers, timeout=30) as response:
                status, answer = response.status_code, response.text[:500]
        except requests.RequestException as error:
            status, answer = None, type(error).__name__
        elapsed = (time.monotonic() - started) * 1000
        attempts.append({"time": time.time(), "status": status, "answer": answer})
        if status is not None and 200 <= status < 300:
            with storm.lock:
                storm.ack_ms.append(elapsed)
            break
        time.sleep(0.2 * 2 ** attempt)
    with storm.lock:
        storm.deliveries.append({"id": f"storm-{len(storm.deliveries) + 1}",
                                 "store_hash": event.store_hash, "scope": event.scope,
                                 "payload": event.payload, "attempts": attempts})


def _secrets(run: FaultRun) -> dict[str, tuple[str, str]]:
    """Per store hash: the secret header DropStream gave its hooks, and the account's client
    secret BigCommerce signs with."""
    def read(session: Any) -> dict[str, tuple[str, str]]:
        found = {}
        for store_id in run.store_ids:
            credentials = read_credentials(session.get(Store, store_id))
            found[run.hashes[store_id]] = (str(credentials["webhook_secret"]),
                                           str(credentials["client_secret"]))
        return found

    return run.db(read)


def inbox_rows(run: FaultRun) -> int:
    return run.db(lambda session: session.scalar(select(func.count()).select_from(InboxEvent)
                                                 .where(InboxEvent.topic.like("store/order/%"))))


def storm(run: FaultRun, orders: int, *, seed: int, senders: int = 8,
          updates_first: float = 0.2, late: float = 0.05, timeout: float = 600,
          hurry: bool = False) -> tuple[dict[str, Any], list[str], Any]:
    """The whole run on a started :class:`FaultRun` (webhooks off, no sweep): (figures,
    failures beyond the checker's, the checker's report)."""
    rng = Random(seed)
    for store_hash in run.hashes.values():
        run.bigcommerce.deactivate_hooks(store_hash)
    placed = run.place_orders(orders)
    events = events_for(run, placed)
    copies = schedule(events, rng, updates_first)
    result = Storm()
    started = time.monotonic()
    deliver(run, copies, result, senders)
    sending = time.monotonic() - started
    run.note(f"delivered {len(copies)} copies of {len(events)} events")
    drained, drain_seconds, report = run.drain(timeout, deliveries=lambda: result.deliveries,
                                               hurry=hurry)
    wms_before = len(run.wms.orders())
    # Late redeliveries: a share of events once more, after their orders shipped.
    again = rng.sample(events, max(1, round(len(events) * late)))
    deliver(run, again, result, senders)
    run.note(f"redelivered {len(again)} events late")
    drained_again, _, report = run.drain(min(timeout, 120), deliveries=lambda: result.deliveries,
                                         hurry=hurry)
    # One event: its scope, time and hash (the hash covers only ``data``, which the creation
    # and an update of one order share).
    distinct = len({(e.store_hash, e.scope, e.payload["created_at"], e.payload["hash"])
                    for e in events})
    failures = []
    rows = inbox_rows(run)
    if rows != distinct:
        failures.append(f"{rows} inbox rows for {distinct} distinct events")
    if len(run.wms.orders()) != wms_before:
        failures.append(f"late copies changed the WMS: {wms_before} → "
                        f"{len(run.wms.orders())} orders")
    if not (drained and drained_again):
        failures.append(f"not drained within {timeout:g} s")
    refused = sum(1 for d in result.deliveries for a in d["attempts"]
                  if a["status"] is None or not 200 <= a["status"] < 300)
    ack = sorted(result.ack_ms)
    figures = {
        "seed": seed, "orders": orders, "events": len(events),
        "deliveries": len(copies) + len(again), "late_redeliveries": len(again),
        "copies_per_event": dict(sorted(Counter(Counter(
            (e.store_hash, e.scope, e.order_id) for e in copies).values()).items())),
        "orders_updates_before_create": round(orders * updates_first),
        "attempts_refused_then_retried": refused,
        "sending_seconds": round(sending, 1),
        "ack_p50_ms": round(statistics.median(ack)) if ack else None,
        "ack_p95_ms": round(ack[int(0.95 * (len(ack) - 1))]) if ack else None,
        "time_to_drain_seconds": round(drain_seconds, 1),
        "inbox_rows": rows, "distinct_events": distinct,
        "wms_orders": len(run.wms.orders()),
    }
    return figures, failures, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="worker processes (REDIS_URL)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--timeout", type=float, default=900, help="seconds to drain, at most")
    args = parser.parse_args()
    options = Options(merchants=args.merchants, seed=args.seed, workers=args.workers, progress=True,
                      sweep=False, ship_delay=2.0)
    with scratch_run(options, "dropstream_storm") as run:
        figures, failures, report = storm(run, args.orders, seed=args.seed, senders=args.senders,
                                          timeout=args.timeout)
    return finish("webhook storm", figures, report, failures)


if __name__ == "__main__":
    raise SystemExit(main())
