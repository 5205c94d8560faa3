"""Running the demo: sandboxes, seed, web server, workers, scheduler and shoppers — and stopping
all of them cleanly.

On the embedded default everything runs in this process (job threads, scheduler thread). With
``REDIS_URL`` set, jobs run in real ``dropstream worker`` processes started here, as in
production; the sandboxes are HTTP servers, so those processes reach them like any remote.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import func, select

from dropstream.demo.seed import DemoSetup, seed
from dropstream.demo_support import DemoContext
from dropstream.extensions import db
from dropstream.fulfillment.models import Shipment, ShipmentState
from dropstream.jobs.queue import RQQueue
from dropstream.jobs.scheduler import start_in_process
from dropstream.orders.models import Order
from dropstream.serving import make_server
from dropstream.state import get_state
from dropstream.stores.models import Store, StoreState
from dropstream.tenants.models import Provider
from dropstream.tenants.scope import unscoped

log = logging.getLogger(__name__)
DEMO_SLUG_PREFIX = "demo-"


@dataclass
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 5000
    orders_per_minute: float = 30.0
    seed: int = 7
    workers: int = 2
    #: Stop by itself after this many seconds (tests); None: until Ctrl-C.
    duration: float | None = None
    progress_every: float = 10.0
    #: Serve this inherited socket, already listening on ``host:port``, instead of binding.
    fd: int | None = None


@dataclass
class DemoRun:
    """Everything started, so it can all be stopped (in reverse order)."""

    demo: DemoContext
    setup: DemoSetup | None = None
    provider_id: int | None = None
    store_ids: list[int] = field(default_factory=list)
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        while self.stoppers:
            stopper = self.stoppers.pop()
            try:
                stopper()
            except Exception:  # noqa: BLE001 - stop everything else regardless
                log.exception("stopping part of the demo failed")


def run_demo(app: Flask, options: DemoOptions, say: Callable[[str], None] = print) -> DemoRun:
    """Run the demo until ``options.duration`` passes or Ctrl-C; returns the (stopped) run."""
    base = f"http://{'127.0.0.1' if options.host in ('0.0.0.0', '::') else options.host}:{options.port}"
    run = DemoRun(DemoContext(app=app, public_base_url=base, rng=random.Random(options.seed)))
    try:
        start(app, run, options, say)
        deadline = time.monotonic() + options.duration if options.duration else None
        next_report = time.monotonic() + options.progress_every
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            if time.monotonic() >= next_report:
                say(progress_line(app, run))
                next_report += options.progress_every
    except KeyboardInterrupt:
        say("Stopping…")
    finally:
        run.stop()
        say("DropStream demo stopped.")
    return run


def start(app: Flask, run: DemoRun, options: DemoOptions, say: Callable[[str], None]) -> None:
    # One line per HTTP request would bury the demo's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    hook = get_state(app).plugin_manager.hook
    hook.demo_start_services(demo=run.demo)
    for service in run.demo.services.values():
        run.stoppers.append(service.stop)
    with app.app_context():
        with unscoped(db.session):
            retire_earlier_demos()
        slug = f"{DEMO_SLUG_PREFIX}{datetime.now(UTC):%Y%m%d-%H%M%S}"
        run.setup = seed(db.session, run.demo, slug)
        db.session.commit()
        store_ids = [store.id for store in run.setup.stores]
        run.provider_id = run.setup.provider.id
        run.store_ids = store_ids
        lines = banner(app, run, options)
        # Keep plain values only: the seeded rows must not hold this session (or SQLite's lock).
        db.session.expunge_all()
        db.session.remove()
    start_jobs(app, run, options)
    server = make_server(options.host, options.port, app, fd=options.fd)
    thread = threading.Thread(target=server.serve_forever, name="dropstream-demo-web", daemon=True)
    thread.start()
    run.stoppers.append(lambda: (server.shutdown(), server.server_close()))
    from dropstream.demo.traffic import Shoppers

    shoppers = Shoppers(app, run.demo, store_ids, options.orders_per_minute).start()
    run.stoppers.append(shoppers.stop)
    for line in lines:
        say(line)


def start_jobs(app: Flask, run: DemoRun, options: DemoOptions) -> None:
    queue = get_state(app).queue
    if isinstance(queue, RQQueue):
        processes = [spawn_worker(app) for _ in range(options.workers)]
        run.stoppers.append(lambda: stop_processes(processes))
    else:
        queue.start()  # type: ignore[attr-defined]
        run.stoppers.append(queue.close)
    scheduler = start_in_process(app)
    run.stoppers.append(scheduler.stop)


def spawn_worker(app: Flask) -> subprocess.Popen[bytes]:
    """A real ``dropstream worker`` process configured like this app."""
    return subprocess.Popen(dropstream_command("worker"), env=process_env(app))


def dropstream_command(*args: str) -> list[str]:
    """The ``dropstream`` command with ``args``, run by this interpreter."""
    return [sys.executable, "-c", "from dropstream.cli import main; main()", *args]


def process_env(app: Flask) -> dict[str, str]:
    """The environment under which a ``dropstream`` process builds an app configured like this
    one (its database, Redis, keys, instance folder and public address)."""
    config = app.config
    return {**os.environ,
            "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": config["REDIS_URL"] or "",
            "SECRET_KEY": config["SECRET_KEY"], "ENCRYPTION_KEYS": ",".join(config["ENCRYPTION_KEYS"]),
            "DROPSTREAM_INSTANCE_PATH": config["INSTANCE_PATH"], "PUBLIC_BASE_URL": config["PUBLIC_BASE_URL"],
            "DROPSTREAM_ALLOW_LOOPBACK": "1" if config.get("ALLOW_LOOPBACK") else ""}


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()  # RQ's warm shutdown: the current job finishes
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def retire_earlier_demos() -> None:
    """Stores of an earlier demo (on a kept database) point at sandboxes that are gone:
    disconnect them so nothing keeps calling dead ports."""
    stale = db.session.scalars(select(Store).join(Provider, Provider.id == Store.provider_id).where(
        Store.state != StoreState.DISCONNECTED, Provider.slug.like(f"{DEMO_SLUG_PREFIX}%")))
    for store in stale:
        store.state = StoreState.DISCONNECTED
        store.state_reason = "Its demo sandbox stopped with an earlier demo run."
    db.session.commit()


def banner(app: Flask, run: DemoRun, options: DemoOptions) -> list[str]:
    setup = run.setup
    assert setup is not None
    base = run.demo.public_base_url
    lines = ["", "DropStream demo is running.",
             f"  console      {base}/  (sign in as {setup.admin.email} / {setup.password})",
             f"  API          {base}/api/v1/  docs {base}/api/v1/docs",
             f"  API key      {setup.api_key}   (send as 'Authorization: Bearer …'; shown once)",
             f"  warehouse    {setup.warehouse.name}",
             *[f"  store        {store.name}" for store in setup.stores],
             *[f"  sandbox      {service.name}: {service.url}" for service in run.demo.services.values()],
             f"  jobs         {'RQ workers on Redis' if isinstance(get_state(app).queue, RQQueue) else 'in-process threads'}",
             f"  shoppers     {options.orders_per_minute:g} orders a minute; some are held on purpose "
             "(a product without SKU, an unmapped shipping method)",
             "Press Ctrl-C to stop.", ""]
    return lines


def progress_line(app: Flask, run: DemoRun) -> str:
    with app.app_context(), unscoped(db.session):
        provider_id = run.provider_id
        statuses = Counter(dict(db.session.execute(
            select(Order.status, func.count()).where(Order.provider_id == provider_id).group_by(Order.status)).all()))
        posted = db.session.scalar(select(func.count()).select_from(Shipment).where(
            Shipment.provider_id == provider_id, Shipment.state == ShipmentState.POSTED)) or 0
        db.session.remove()
    shown = ", ".join(f"{count} {status.value.replace('_', ' ')}" for status, count in sorted(
        statuses.items(), key=lambda item: item[0].value)) or "no orders yet"
    return f"[{datetime.now():%H:%M:%S}] orders: {shown}; shipments posted to stores: {posted}"
