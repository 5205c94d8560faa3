"""The harness the fault runs share: DropStream between a BigCommerce sandbox and a WMS sandbox,
all on loopback, wired the way ``dropstream demo`` wires them, then checked by
:mod:`dropstream.testing.invariants`.

A run serves DropStream over real HTTP (the sandboxes' webhooks and pushes reach it there),
runs its jobs in in-process threads on the embedded default or in real ``dropstream worker``
processes when ``REDIS_URL`` is set (as ``benchmarks/loop.py`` does), and ticks the scheduler.
Stores are created through the demo hooks (products, API account, webhooks, listings and
shipping rules of the demo catalogue); every order placed is a T-shirt and two mugs shipped
"Free Shipping", so each one must reach the warehouse, ship and be posted back.

    with FaultRun(Options(merchants=2), database_url, config) as run:
        run.place_orders(20)
        drained = run.drain(timeout=60)
        report = run.check()

The chaos scripts take a scratch database from :func:`scratch_run`; the small versions in
``tests/reliability`` pass the test session's database and configuration.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from chaos._servers import listening_socket
from dropstream.app import create_app
from dropstream.db import utcnow
from dropstream.demo.catalog import CATALOG, MUG, TEE
from dropstream.demo.runtime import spawn_worker, stop_processes
from dropstream.demo.seed import add_mappings
from dropstream.demo_support import DemoContext
from dropstream.extensions import db
from dropstream.jobs.models import InboxEvent, OutboxItem, OutboxState
from dropstream.jobs.queue import RQQueue
from dropstream.jobs.scheduler import start_in_process
from dropstream.state import get_state
from dropstream.stores.models import Channel, Store
from dropstream.tenants import services as tenants
from dropstream.tenants.scope import unscoped
from dropstream.testing.databases import scratch_database
from dropstream.testing.invariants import InvariantReport, bigcommerce_state, check, wms_state
from dropstream_bigcommerce.demo import EXTENSION, DemoState
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_wms_generic.sandbox import WmsSandbox

SHIPPING_METHOD = "Free Shipping"
#: Work that is the run's own business (not the scheduler's periodic channel runs).
ORDER_WORK = ("order.refresh", "order.forward", "order.mark_sent", "order.cancel",
              "shipment.post", "store.rescan_holds")


@dataclass
class Options:
    merchants: int = 2
    seed: int = 1
    #: ``dropstream worker`` processes, with REDIS_URL (else the app's in-process threads).
    workers: int = 2
    #: Seconds from order to the WMS's first parcel; a share ships in two parcels.
    ship_delay: float = 0.5
    partial_ratio: float = 0.3
    #: The sandbox's webhook retry schedule (60 s, 180 s, …) multiplied by this.
    webhook_retry_scale: float = 0.001
    #: How long a BigCommerce ``slow`` fault holds an answer by default.
    slow_seconds: float = 3.0
    scheduler_tick: float = 0.25
    #: Run interval of each channel, in seconds.
    orders_every: int = 30
    shipments_every: int = 1
    inventory_every: int = 2
    #: Poll orders (the sweep); False leaves webhooks as the only way in.
    sweep: bool = True
    inventory: bool = True
    #: The warehouse's read timeout (``timeout_seconds``), so a hang is a timeout soon.
    wms_timeout: float = 2.0
    #: Store API quota per 30 s window; None: the plan's (150).
    quota: int | None = None
    #: With REDIS_URL: run RQ workers as threads of this process instead of ``dropstream
    #: worker`` processes (tests that patch code the jobs run need this).
    thread_workers: bool = False
    #: Print the checker's counts every minute while draining (scripts).
    progress: bool = False
    #: Empty the Redis database before and after the run (tests: their own database; never
    #: in a script, whose REDIS_URL may be shared).
    flush_redis: bool = False
    #: Config entries for the app (on top of the run's own).
    config: dict[str, Any] = field(default_factory=dict)


class FaultRun:
    """DropStream, the two sandboxes, a provider with one warehouse and ``merchants`` stores."""

    def __init__(self, options: Options, database_url: str, config: dict[str, Any] | None = None,
                 *, redis_url: str | None = None) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self._stack = ExitStack()
        # The app's address is in its settings before it serves, so its port is taken now
        # (bound and listening) and served from later: a port only probed free could be taken
        # meanwhile (by a sandbox, or as a connection's own port) and the server not start.
        self._listener: socket.socket | None = listening_socket()
        self.port = int(self._listener.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        workdir = tempfile.mkdtemp(prefix="dropstream-chaos-")
        self.app = create_app({
            "SECRET_KEY": "chaos-run-secret-key-0123456789abcdef",
            "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "INSTANCE_PATH": workdir, "LOG_LEVEL": "WARNING",
            "REDIS_URL": redis_url,
            **(config or {}),
            "SQLALCHEMY_DATABASE_URI": database_url, "ALLOW_LOOPBACK": True,
            "PUBLIC_BASE_URL": self.base_url, **options.config,
        }, env={}, load_entry_points=True)
        self.bigcommerce = BigCommerceSandbox(seed=options.seed,
                                              webhook_retry_scale=options.webhook_retry_scale,
                                              slow_seconds=options.slow_seconds)
        self.wms = WmsSandbox(seed=options.seed, ship_delay=options.ship_delay,
                              partial_ratio=options.partial_ratio, tick=0.2)
        self.demo = DemoContext(app=self.app, public_base_url=self.base_url,
                                rng=random.Random(options.seed))
        self.store_ids: list[int] = []
        self.hashes: dict[int, str] = {}
        self.warehouse_id: int | None = None
        #: Orders placed: (store id, store order id).
        self.placed: list[tuple[int, str]] = []
        self._store_rows: dict[int, Store] = {}
        self._server: _Server | None = None
        #: The port, held while the receiver is down (:meth:`receiver_down`).
        self._reserved: socket.socket | None = None
        self._turn = 0  # round-robin over the stores, across calls
        self.events: list[tuple[float, str]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> FaultRun:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._listener is not None:  # never served from
            self._listener.close()
            self._listener = None
        self._stack.close()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()

    def _flush_redis(self) -> None:
        queue = get_state(self.app).queue
        if self.options.flush_redis and isinstance(queue, RQQueue):
            queue.connection.flushdb()

    def _start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._flush_redis()
        self._stack.callback(self._flush_redis)
        self.bigcommerce.start()
        self._stack.callback(self.bigcommerce.stop)
        self.wms.start()
        self._stack.callback(self.wms.stop)
        self.app.extensions[EXTENSION] = DemoState(self.bigcommerce)
        self.demo.add_service("BigCommerce sandbox", self.bigcommerce.base_url or "",
                              self.bigcommerce.stop)
        self.demo.add_service("wms", self.wms.url, self.wms.stop)
        self._seed()
        self._server = make_server(self.app, self.port, listener=self._listener)
        self._listener = None  # the server's now
        self._stack.callback(self._release_port)  # (after the receiver stops, below)
        self._stack.callback(self.receiver_down)
        queue = get_state(self.app).queue
        self._stack.callback(queue.close)  # last, after the workers stopped
        if isinstance(queue, RQQueue) and not self.options.thread_workers:
            processes = [spawn_worker(self.app) for _ in range(self.options.workers)]
            self._stack.callback(stop_processes, processes)
            scheduler = start_in_process(self.app, tick_seconds=self.options.scheduler_tick)
            self._stack.callback(scheduler.stop)
        else:
            # The in-process queue's threads, or an RQ worker in a thread, and the scheduler.
            from tests.console.browser import pipeline

            self._stack.enter_context(pipeline(self.app, tick=self.options.scheduler_tick))
        self.note("started")

    def _seed(self) -> None:
        options = self.options
        hook = get_state(self.app).plugin_manager.hook
        with self.app.app_context():
            db.create_all()
            provider = tenants.create_provider(db.session, "Chaos 3PL", f"chaos-{options.seed}")
            warehouse = hook.demo_create_warehouse(demo=self.demo, session=db.session,
                                                   provider=provider, catalog=CATALOG)
            warehouse.settings = {**warehouse.settings, "timeout_seconds": options.wms_timeout}
            intervals = {Channel.ORDERS: options.orders_every,
                         Channel.SHIPMENTS: options.shipments_every,
                         Channel.INVENTORY: options.inventory_every}
            enabled = {Channel.ORDERS: options.sweep, Channel.SHIPMENTS: True,
                       Channel.INVENTORY: options.inventory}
            for number in range(options.merchants):
                merchant = tenants.create_merchant(db.session, provider, f"Merchant {number}")
                store = hook.demo_create_store(demo=self.demo, session=db.session,
                                               merchant=merchant, warehouse=warehouse,
                                               catalog=CATALOG)
                add_mappings(db.session, store)
                for channel in store.channels:
                    channel.enabled = enabled[channel.channel]
                    channel.interval_seconds = intervals[channel.channel]
                    channel.next_run_at = utcnow()
                self.store_ids.append(store.id)
                self.hashes[store.id] = store.external_id or ""
            db.session.commit()
            self.warehouse_id = warehouse.id
            # Plain copies for placing orders, so traffic never waits for the database.
            self._store_rows = {sid: db.session.get(Store, sid) for sid in self.store_ids}
            db.session.expunge_all()
            db.session.remove()
        if options.quota is not None:
            for store_hash in self.hashes.values():
                self.bigcommerce.set_rate_limit(store_hash, quota=options.quota)

    # -- traffic -----------------------------------------------------------------------------

    def place_orders(self, count: int, rate: float | None = None,
                     stores: list[int] | None = None) -> list[tuple[int, str]]:
        """Place ``count`` orders round-robin over ``stores`` (default: all), ``rate`` a second
        (None: as fast as possible), as a checkout does (the sandbox's webhooks announce them)."""
        hook = get_state(self.app).plugin_manager.hook
        targets = stores or self.store_ids
        placed = []
        started = time.monotonic()
        rows = self._store_rows
        for number in range(count):
            if rate:
                due = started + number / rate
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
            store = rows[targets[self._turn % len(targets)]]
            self._turn += 1
            external_id = hook.demo_place_order(demo=self.demo, store=store,
                                                lines=[(TEE, 1), (MUG, 2)],
                                                shipping_method=SHIPPING_METHOD)
            placed.append((store.id, str(external_id)))
        self.placed += placed
        return placed

    def receiver_down(self) -> None:
        """Stop serving DropStream's web app (webhooks and pushes find the port closed); the
        workers and the scheduler go on."""
        if self._server is not None:
            self._server.stop()
            self._server = None
            self._reserved = _reserve(self.port)

    def _release_port(self) -> None:
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def receiver_up(self) -> None:
        """Serve it again, on the same address."""
        if self._server is None:
            listener, self._reserved = self._reserved, None
            if listener is not None:
                listener.listen(128)
            self._server = make_server(self.app, self.port, listener)

    def note(self, what: str) -> None:
        """A timestamped line for the run's log of chaos actions."""
        self.events.append((time.time(), what))

    # -- state -------------------------------------------------------------------------------

    def check(self, deliveries: list[dict[str, Any]] | None = None,
              warehouse: dict[str, Any] | None = None) -> InvariantReport:
        """The invariant checker over the sandboxes as they are now (or over ``warehouse``, a
        WMS snapshot the caller has already taken and judges by as well)."""
        return patiently(lambda: check(self.app, bigcommerce_state(self.bigcommerce),
                                       warehouse or wms_state(self.wms),
                                       deliveries=deliveries or ()))

    def db(self, work: Callable[[Any], Any]) -> Any:
        """``work(session)`` in an app context on every tenant's rows, committed, the session
        closed; tried again while SQLite is locked (see :func:`patiently`)."""
        def attempt() -> Any:
            with self.app.app_context(), unscoped(db.session):
                try:
                    result = work(db.session)
                    db.session.commit()
                    return result
                finally:
                    db.session.rollback()
                    db.session.remove()

        return patiently(attempt)

    def open_work(self) -> int:
        """Order and shipment work not yet done (due or waiting for a retry)."""
        return self.db(lambda session: session.scalar(
            select(func.count()).select_from(OutboxItem).where(
                OutboxItem.state == OutboxState.PENDING, OutboxItem.kind.in_(ORDER_WORK))) or 0)

    def hurry(self) -> None:
        """Make waiting work due now (small runs: skip backoff waits rather than sit them out)."""
        self.db(lambda session: session.execute(update(OutboxItem).where(
            OutboxItem.state == OutboxState.PENDING,
            OutboxItem.run_after > utcnow() + timedelta(seconds=1),
            OutboxItem.leased_until.is_(None) | (OutboxItem.leased_until < utcnow()))
            .values(run_after=utcnow(), dispatched_at=None)))

    def drain(self, timeout: float, *, deliveries: Callable[[], list[dict[str, Any]]] | None = None,
              hurry: bool = False, poll: float = 1.0,
              until: Callable[[], bool] | None = None) -> tuple[bool, float, InvariantReport]:
        """Wait until every order has shipped and been posted, stock agrees and no order work is
        open — judged by the checker itself — and ``until()`` holds, or ``timeout`` seconds pass.
        Returns (drained, seconds it took, the last report).

        The checker judges what happened, not what is still to come: a shipment DropStream has
        not polled yet breaks nothing. A run that needs every order through passes ``until``."""
        started = time.monotonic()
        report = InvariantReport()
        shown = started
        while True:
            if hurry:
                self.hurry()
            # Idle before and after one snapshot of the warehouse, judged on that snapshot: a
            # parcel shipped after the checker looked must not count as checked.
            idle_before = self.open_work() == 0
            warehouse = wms_state(self.wms)
            report = self.check(deliveries() if deliveries else None, warehouse)
            if self.options.progress and time.monotonic() - shown >= 60:
                shown = time.monotonic()
                broken = {k: v for k, v in report.counts().items() if v}
                print(f"[{time.strftime('%H:%M:%S')}] draining: {self.open_work()} order and "
                      f"shipment items open; {broken or 'invariants hold'}", file=sys.stderr)
            if report.ok and idle_before and self.warehouse_done(warehouse) \
                    and self.open_work() == 0 and self.bigcommerce.wait_for_webhooks(0) \
                    and (until is None or until()):
                return True, time.monotonic() - started, report
            if time.monotonic() - started > timeout:
                return False, time.monotonic() - started, report
            time.sleep(poll)

    @staticmethod
    def wait_for(condition: Callable[[], Any], timeout: float, poll: float = 0.2) -> bool:
        """Poll ``condition`` until it is true or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(poll)
        return True

    def warehouse_done(self, warehouse: dict[str, Any] | None = None) -> bool:
        """Every order the WMS holds (in ``warehouse``, a snapshot, or now) has shipped or was
        cancelled. Its pushes may still be waiting: they are one path of two (DropStream polls
        shipments and stock as well), and a big run's backlog of them drains at the sandbox's
        pace, one request at a time."""
        orders = (warehouse or wms_state(self.wms))["orders"]
        return all(o["status"] in ("shipped", "cancelled") for o in orders)

    def explain(self, keys: list[tuple[int, str]]) -> list[str]:
        """What is known of orders that did not arrive: the store's answers to DropStream's reads
        of each (status and injected fault), the webhooks about it that DropStream stored, and
        its re-read work."""
        def work(session: Any) -> dict[tuple[int, str], tuple[int, list[str]]]:
            found = {}
            for store_id, external_id in keys:
                hints = sum(1 for payload in session.scalars(select(InboxEvent.payload).where(
                    InboxEvent.store_id == store_id))
                    if str((payload or {}).get("data", {}).get("id")) == external_id)
                items = [f"{item.state.value}/{item.attempts}/{item.last_error or '-'}"[:160]
                         for item in session.scalars(select(OutboxItem).where(
                             OutboxItem.dedupe_key == f"order.refresh:{store_id}:{external_id}"))]
                found[(store_id, external_id)] = (hints, items)
            return found

        known = self.db(work)
        lines = []
        for store_id, external_id in keys:
            store_hash = self.hashes.get(store_id, "?")
            reads = [f"{c['status']}{'/' + c['fault'] if c['fault'] else ''}"
                     for c in self.bigcommerce.call_log(store_hash)
                     if c["path"].endswith(f"/v2/orders/{external_id}") and c["method"] == "GET"]
            hints, items = known[(store_id, external_id)]
            lines.append(f"store {store_hash} order {external_id}: reads {reads or 'none'}; "
                         f"{hints} webhooks stored; re-read work {items or 'none'}")
        return lines

    def stores(self) -> dict[int, dict[str, Any]]:
        """Each store's state and reason (paused, active …)."""
        return self.db(lambda session: {
            s.id: {"state": s.state.value, "reason": s.state_reason}
            for s in session.scalars(select(Store))})


def _reserve(port: int, patience: float = 5.0) -> socket.socket | None:
    """A socket bound to ``port`` but not listening (a connection to it is refused), so that
    the port stays the run's while its receiver is down: free, any socket on the machine could
    take it as its own local port meanwhile, and the receiver could not come back on it (seen
    in CI: "Port … is in use"). The stopped server's last connections may hold it a moment;
    None if they still do after ``patience`` seconds (the receiver then binds it anew)."""
    deadline = time.monotonic() + patience
    while True:
        reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            reserved.bind(("127.0.0.1", port))
            return reserved
        except OSError:
            reserved.close()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)


class _Server:
    def __init__(self, app: Any, port: int, listener: socket.socket | None = None) -> None:
        from werkzeug.serving import make_server as werkzeug_server

        fd = None if listener is None else listener.fileno()
        self.server = werkzeug_server("127.0.0.1", port, app, threaded=True, fd=fd)
        if listener is not None:
            listener.close()  # the server serves from its own copy, and closes it on stop
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def make_server(app: Any, port: int, listener: socket.socket | None = None) -> _Server:
    """DropStream served on ``127.0.0.1:port`` from a thread (from ``listener``, a socket
    already listening there, when given)."""
    return _Server(app, port, listener)


def patiently(read: Callable[[], Any], attempts: int = 10) -> Any:
    """``read()``, again after a pause while SQLite says it is locked: on the embedded default
    a job holding the write lock through a slow upstream call makes other writers wait past the
    busy timeout, and the harness must outlast that as DropStream's own jobs do."""
    for attempt in range(attempts):
        try:
            return read()
        except OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


@contextmanager
def scratch_run(options: Options, prefix: str) -> Iterator[FaultRun]:
    """A run on a scratch database of the kind DATABASE_URL names (SQLite without it), with
    REDIS_URL's workers when set; the database is dropped afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    # Stopped from outside (timeout, kill): still stop the workers and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with scratch_database(os.environ.get("DATABASE_URL"), workdir, prefix) as url:
        with FaultRun(options, url, redis_url=os.environ.get("REDIS_URL") or None) as run:
            yield run


def finish(name: str, figures: dict[str, Any], report: InvariantReport,
           extra_failures: list[str] | None = None) -> int:
    """Print the figures and the checker's report; the exit status (1 when anything broke)."""
    failures = list(extra_failures or [])
    print(json.dumps({"run": name, **figures, "invariants": report.counts()}, indent=2))
    print(report.summary())
    for failure in failures:
        print(f"FAILED: {failure}")
    return 0 if report.ok and not failures else 1

