"""What the chaos runs start, kill and restart: private PostgreSQL and Redis servers, and
DropStream as production runs it — a ``dropstream serve`` web process, ``dropstream worker``
processes and a ``dropstream scheduler`` process — with the BigCommerce and WMS sandboxes and
the demo's shoppers in the harness's own process (the checker reads the sandboxes from there).

Everything listens on 127.0.0.1 only. The private servers live in a temporary folder and on
free ports, so a run may restart or flush them; the shared PostgreSQL and Redis of the machine
are never touched (a run on them only creates and drops its own scratch database).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet

log = logging.getLogger("chaos")


def free_port() -> int:
    """A loopback port free now, for a program that binds it itself (PostgreSQL, Redis): it may
    be taken before that program starts. DropStream's web process is handed a socket already
    listening instead (:func:`listening_socket`, ``dropstream serve --fd``)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_socket() -> socket.socket:
    """A socket listening on a free loopback port, held from now on: nothing else can take the
    port before the server that is to serve it starts, or while it restarts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 30.0,
             every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(every)
    raise TimeoutError(f"{what} did not come up within {timeout:g} s")


class CommandFailed(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr or self.output or ''}".rstrip()


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise CommandFailed(done.returncode, command, done.stdout, done.stderr)
    return done


# ------------------------------------------------------------------------------------------------
# Private PostgreSQL and Redis
# ------------------------------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (``initdb`` into ``folder``, run as the ``postgres`` user)
    on a free loopback port; ``stop(mode)`` / ``start()`` are ``pg_ctl``'s."""

    def __init__(self, folder: Path) -> None:
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                          key=lambda p: int(p.split("/")[4]))
        if not versions:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bin = Path(versions[-1]).parent
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return _run([*prefix, *command])

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(self.folder, user.pw_uid, user.pw_gid)
                # A temporary folder is root's alone: let the postgres user through it.
                for parent in self.folder.parents:
                    if parent == Path(tempfile.gettempdir()):
                        break
                    if not parent.stat().st_mode & 0o001:
                        parent.chmod(parent.stat().st_mode | 0o001)
            self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                              "-A", "trust", "--no-sync", "-E", "UTF8")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                   "-c fsync=off -c max_connections=200")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                          str(self.folder / "server.log"), "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` aborts (crash recovery at the next start); ``fast`` rolls back open
        transactions and shuts down cleanly."""
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                          "-t", "60", "stop")

    def restart(self, mode: str, down_seconds: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A throwaway ``redis-server`` on a free loopback port, without persistence: a restart
    comes back empty, as a Redis that lost its memory does."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--logfile",
             str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("Redis", self.ping)
        return self

    def ping(self) -> bool:
        from redis import Redis

        with Redis.from_url(self.url, socket_timeout=1) as connection:
            return bool(connection.ping())

    def shutdown_nosave(self) -> None:
        """``SHUTDOWN NOSAVE``: everything in memory is gone."""
        from redis import Redis
        from redis.exceptions import ConnectionError as RedisConnectionError

        with Redis.from_url(self.url, socket_timeout=5) as connection:
            try:
                connection.shutdown(nosave=True)
            except RedisConnectionError:
                pass  # the server closed the connection as it went
        if self.process is not None:
            self.process.wait(timeout=30)
            self.process = None

    def flushall(self) -> None:
        from redis import Redis

        with Redis.from_url(self.url, socket_timeout=5) as connection:
            connection.flushall()

    def restart(self, down_seconds: float = 0.0) -> None:
        self.shutdown_nosave()
        time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# DropStream's processes
# ------------------------------------------------------------------------------------------------


@dataclass
class HubProcess:
    """One ``dropstream`` process (``serve``, ``worker`` or ``scheduler``): started, SIGKILLed,
    restarted like a supervisor does; its output goes to ``<folder>/<name>.log``."""

    name: str
    args: list[str]
    env: dict[str, str]
    folder: Path
    popen: subprocess.Popen[bytes] | None = None
    kills: int = 0
    #: The socket the process serves (``serve --fd``), held here across its restarts.
    listener: socket.socket | None = None

    def start(self) -> HubProcess:
        from dropstream.demo.runtime import dropstream_command

        args, inherited = list(self.args), ()
        if self.listener is not None:
            args += ["--fd", str(self.listener.fileno())]
            inherited = (self.listener.fileno(),)
        with open(self.folder / f"{self.name}.log", "ab") as output:
            self.popen = subprocess.Popen(dropstream_command(*args), env=self.env,
                                          stdout=output, stderr=subprocess.STDOUT,
                                          pass_fds=inherited)
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, transactions die with the connection."""
        if self.alive:
            self.popen.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
            self.popen.wait()  # type: ignore[union-attr]
            self.kills += 1

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a worker finishes its job first), then SIGKILL if it takes too long."""
        if not self.alive:
            return
        self.popen.terminate()  # type: ignore[union-attr]
        try:
            self.popen.wait(timeout=timeout)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class HubConfig:
    database_url: str
    redis_url: str
    workers: int = 2
    #: Seeds the demo's shoppers (their baskets) and the sandboxes.
    seed: int = 7
    #: Seconds from a WMS order to its first parcel (the demo's 8 s is slow for a short run).
    ship_delay: float = 1.0


@dataclass
class Hub:
    """DropStream on one machine, as production runs it, plus what a run needs around it."""

    config: HubConfig
    folder: Path
    app: Any = None
    demo: Any = None
    setup: Any = None
    processes: dict[str, HubProcess] = field(default_factory=dict)
    store_ids: list[int] = field(default_factory=list)
    #: The stores as detached rows, for placing orders without DropStream's database.
    stores: list[Any] = field(default_factory=list)
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Hub:
        from dropstream.app import create_app
        from dropstream.demo.runtime import process_env
        from dropstream.demo.seed import seed
        from dropstream.demo_support import DemoContext
        from dropstream.extensions import db
        from dropstream.state import get_state
        from dropstream.stores.models import Store
        from dropstream.testing import invariants, jobs  # noqa: F401 - loaded now, not mid-run

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        listener = listening_socket()
        self.stoppers.append(listener.close)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        self.app = create_app({
            "SQLALCHEMY_DATABASE_URI": self.config.database_url,
            "REDIS_URL": self.config.redis_url,
            "SECRET_KEY": "chaos-secret-key-0123456789abcdef-0123456789",
            "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "INSTANCE_PATH": str(self.folder / "instance"), "ALLOW_LOOPBACK": True,
            "PUBLIC_BASE_URL": base, "LOG_LEVEL": "WARNING",
        }, env={})
        # The run's Redis database starts empty: a job left by another run would name its rows.
        get_state(self.app).queue.connection.flushdb()
        self.demo = DemoContext(app=self.app, public_base_url=base,
                                rng=random.Random(self.config.seed))
        hook = get_state(self.app).plugin_manager.hook
        hook.demo_start_services(demo=self.demo)
        self.stoppers += [service.stop for service in self.demo.services.values()]
        self.wms_admin("configure", ship_delay=self.config.ship_delay)
        with self.app.app_context():
            db.create_all()
            self.setup = seed(db.session, self.demo, "chaos")
            db.session.commit()
            self.store_ids = [store.id for store in self.setup.stores]
            # Detached copies: shoppers place orders in the store sandbox with them even while
            # DropStream's database is down (a store does not depend on it).
            self.stores = [db.session.get(Store, store_id) for store_id in self.store_ids]
            db.session.expunge_all()
            db.session.remove()
        env = {**process_env(self.app), "DROPSTREAM_LOG_LEVEL": "WARNING"}
        self.processes["web"] = HubProcess("web", ["serve", "--quiet"], env, self.folder,
                                           listener=listener)
        self.processes["scheduler"] = HubProcess("scheduler", ["scheduler"], env, self.folder)
        for number in range(self.config.workers):
            self.processes[f"worker-{number}"] = HubProcess(f"worker-{number}", ["worker"], env,
                                                            self.folder)
        for process in self.processes.values():
            process.start()
        wait_for("the web process", lambda: requests.get(f"{base}/healthz", timeout=2).ok, 60)
        return self

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        while self.stoppers:
            try:
                self.stoppers.pop()()
            except Exception:  # noqa: BLE001 - stop everything else regardless
                log.exception("stopping part of the hub failed")
        if self.app is not None:
            from dropstream.extensions import db

            with self.app.app_context():
                db.engine.dispose()
            self.app.extensions["dropstream"].queue.close()

    # -- the sandboxes ---------------------------------------------------------------------------

    @property
    def bigcommerce(self) -> Any:
        return self.app.extensions["dropstream_bigcommerce.demo"].sandbox

    @property
    def wms_url(self) -> str:
        return self.demo.services["wms"].url

    def wms_admin(self, operation: str, **arguments: Any) -> Any:
        """Call one of the WMS sandbox's admin operations (``configure``, ``inject`` …)."""
        with requests.post(f"{self.demo.services['wms'].url}/_sandbox/{operation}",
                           json=arguments, timeout=30) as response:
            response.raise_for_status()
            return response.json()["result"]

    def wms_orders(self) -> list[dict[str, Any]]:
        with requests.get(f"{self.wms_url}/_sandbox/orders", timeout=30) as response:
            return response.json()["result"]

    # -- traffic and recovery ---------------------------------------------------------------------

    def shoppers(self, per_minute: float) -> Any:
        """The demo's shoppers (the demo's mix of baskets, holds included; seeded by the hub's
        seed), placing orders until stopped — also while DropStream's database is down."""
        from dropstream.demo.traffic import Shoppers
        from dropstream.state import get_state

        hub = self

        class StoreShoppers(Shoppers):
            def place_one(self) -> str | None:
                lines, method = self.basket()
                order_id = get_state(hub.app).plugin_manager.hook.demo_place_order(
                    demo=hub.demo, store=hub.stores[self.placed % len(hub.stores)], lines=lines,
                    shipping_method=method)
                self.placed += 1
                return order_id

        return StoreShoppers(self.app, self.demo, self.store_ids, per_minute)

    def place_order(self, store_number: int = 0) -> str:
        """One ordinary order (a T-shirt and two mugs, a mapped shipping method) in a store."""
        from dropstream.demo.catalog import MUG, TEE
        from dropstream.state import get_state

        return str(get_state(self.app).plugin_manager.hook.demo_place_order(
            demo=self.demo, store=self.stores[store_number], lines=[(TEE, 1), (MUG, 2)],
            shipping_method="Free Shipping"))

    def catch_up(self) -> None:
        """What time does after an outage: every dead worker's lease runs out, every backoff
        wait ends and every store channel (sweeps, shipment and stock polls) comes due. Call
        only when no worker runs."""
        from dropstream.extensions import db
        from dropstream.stores.models import StoreChannel
        from dropstream.tenants.scope import unscoped
        from dropstream.testing.jobs import end_leases, make_due

        with self.app.app_context():
            end_leases()
            make_due()
            with unscoped(db.session):
                db.session.query(StoreChannel).update({"next_run_at": None})
                db.session.commit()
            db.session.remove()

    def finish(self, settle_timeout: float, catch_up: bool) -> tuple[Any, float, str | None]:
        """End a run: optionally let time pass for dead workers' leases (the workers stopped
        warm meanwhile, so a job in progress finishes), then wait for the work to settle.
        Returns the checker's report, the seconds it took, and where the evidence of a failed
        run was saved."""
        if catch_up:
            workers = [p for name, p in self.processes.items() if name.startswith("worker")]
            for worker in workers:
                worker.stop()
            self.catch_up()
            for worker in workers:
                worker.start()
        report, settle_seconds = self.settle(settle_timeout)
        evidence = None if report.ok else str(self.save_evidence(self.folder / "evidence.json"))
        return report, settle_seconds, evidence

    def job_running(self, kind: str) -> bool:
        """Whether a worker holds work of ``kind`` right now (its run lease is live)."""
        from sqlalchemy import func, select

        from dropstream.db import utcnow
        from dropstream.extensions import db
        from dropstream.jobs.models import OutboxItem, OutboxState
        from dropstream.tenants.scope import unscoped

        with self.app.app_context(), unscoped(db.session):
            held = db.session.scalar(select(func.count()).select_from(OutboxItem).where(
                OutboxItem.kind == kind, OutboxItem.state == OutboxState.PENDING,
                OutboxItem.leased_until > utcnow()))
            db.session.remove()
        return bool(held)

    def pending_work(self) -> int:
        from sqlalchemy import func, select

        from dropstream.extensions import db
        from dropstream.jobs.models import OutboxItem, OutboxState
        from dropstream.tenants.scope import unscoped

        with self.app.app_context(), unscoped(db.session):
            count = db.session.scalar(select(func.count()).select_from(OutboxItem).where(
                OutboxItem.state == OutboxState.PENDING)) or 0
            db.session.remove()
        return count

    def webhook_attempts(self) -> dict[str, int]:
        """The BigCommerce sandbox's delivery attempts by outcome: acknowledged (2xx), refused
        (DropStream answered 5xx, e.g. while its database was down) and unanswered (no
        connection, e.g. while the web process was down); the refused and unanswered ones
        were retried by the sandbox."""
        counts = {"acknowledged": 0, "refused_5xx": 0, "unanswered": 0, "other": 0}
        for delivery in self.bigcommerce.webhook_deliveries():
            for attempt in delivery["attempts"]:
                status = attempt.get("status")
                key = ("unanswered" if status is None else "acknowledged" if 200 <= status < 300
                       else "refused_5xx" if status >= 500 else "other")
                counts[key] += 1
        return counts

    def check(self) -> Any:
        from dropstream.testing.invariants import bigcommerce_state, check, wms_state

        return check(self.app, bigcommerce_state(self.bigcommerce), wms_state(self.wms_url))

    def save_evidence(self, path: Path) -> Path:
        """Everything needed to explain a broken verdict after the run is gone, as JSON: both
        sandboxes' state documents, and DropStream's orders (with their timelines), shipments,
        inbox rows and pending work."""
        from sqlalchemy import select

        from dropstream.extensions import db
        from dropstream.fulfillment.models import Shipment
        from dropstream.jobs.models import InboxEvent, OutboxItem, OutboxState
        from dropstream.orders.models import Order
        from dropstream.tenants.scope import unscoped
        from dropstream.testing.invariants import bigcommerce_state, wms_state

        def row(obj: Any) -> dict[str, Any]:
            return {c.key: getattr(obj, c.key) for c in obj.__table__.columns
                    if c.key != "credentials_ciphertext"}

        with self.app.app_context(), unscoped(db.session):
            database = {
                "orders": [{**row(o), "events": [row(e) for e in o.events]}
                           for o in db.session.scalars(select(Order))],
                "shipments": [row(s) for s in db.session.scalars(select(Shipment))],
                "inbox": [row(e) for e in db.session.scalars(select(InboxEvent))],
                "pending_work": [row(w) for w in db.session.scalars(select(OutboxItem).where(
                    OutboxItem.state != OutboxState.DONE))],
            }
            db.session.remove()
        path.write_text(json.dumps({"bigcommerce": bigcommerce_state(self.bigcommerce),
                                    "wms": wms_state(self.wms_url), "dropstream": database},
                                   default=str, indent=1))
        return path

    def settle(self, timeout: float) -> tuple[Any, float]:
        """Wait until the loop is quiet — every WMS order shipped (or cancelled), no pending
        work, no webhook in flight — and the checker is satisfied; then check once more.
        Returns the final report and the seconds it took (the report as it stands on timeout)."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            quiet = (self.bigcommerce.wait_for_webhooks(0.5)
                     and all(o["status"] in ("shipped", "cancelled") for o in self.wms_orders())
                     and self.pending_work() == 0)
            if quiet and self.check().ok:
                time.sleep(1.0)  # anything still moving would show in a second look
                report = self.check()
                if report.ok:
                    return report, time.monotonic() - started
            time.sleep(0.5)
        return self.check(), time.monotonic() - started


@contextmanager
def running_hub(database_url: str, redis_url: str, config: dict[str, Any] | None = None,
                folder: Path | None = None) -> Iterator[Hub]:
    """A started :class:`Hub` on ``database_url`` (an empty PostgreSQL database: its tables are
    created) and ``redis_url`` (its database is emptied); stopped afterwards."""
    if not database_url.startswith(("postgres", "postgresql")):
        raise RuntimeError("chaos runs need PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    folder = Path(folder or tempfile.mkdtemp(prefix="dropstream-chaos-"))
    folder.mkdir(parents=True, exist_ok=True)
    hub = Hub(HubConfig(database_url=database_url, redis_url=redis_url, **(config or {})), folder)
    try:
        yield hub.start()
    finally:
        hub.stop()


@contextmanager
def scratch_hub(database_url: str | None, redis_url: str, config: dict[str, Any] | None = None,
                folder: Path | None = None) -> Iterator[Hub]:
    """:func:`running_hub` on a scratch database made next to ``database_url`` (a shared
    server's), dropped afterwards."""
    from dropstream.testing.databases import scratch_database

    if not database_url or not database_url.startswith(("postgres", "postgresql")):
        raise RuntimeError("chaos runs need PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    folder = Path(folder or tempfile.mkdtemp(prefix="dropstream-chaos-"))
    with scratch_database(database_url, folder, "dropstream_chaos") as url:
        with running_hub(url, redis_url, config, folder) as hub:
            yield hub


def clean_up_on_sigterm() -> None:
    """SIGTERM (``timeout``, a CI runner) ends a run like Ctrl-C does: through its ``finally``
    blocks, so no private server, DropStream process or scratch database is left behind."""
    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def report_line(data: dict[str, Any]) -> None:
    """One JSON line on stdout: the run's figures and verdict."""
    print(json.dumps(data, indent=2, default=str))
    sys.stdout.flush()
