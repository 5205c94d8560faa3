"""``dropstream demo``: the whole loop on one machine, with nothing to configure.

It builds its own application (loopback sandboxes allowed, a fresh SQLite file unless
``DATABASE_URL`` is set), migrates it and hands over to :mod:`dropstream.demo.runtime`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import flask_migrate

from dropstream.config import load_settings


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--orders-per-minute", default=30.0, show_default=True, type=float,
              help="How many orders the demo's shoppers place.")
@click.option("--workers", default=2, show_default=True, type=int,
              help="`dropstream worker` processes to start when REDIS_URL is set.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed of the shoppers.")
@click.option("--duration", type=float, default=None, help="Stop by itself after this many seconds.")
@click.option("--fd", type=int, default=None,
              help="Serve on this inherited socket, already listening, instead of binding "
                   "--host and --port (as `dropstream serve --fd`).")
def demo_command(host: str, port: int, orders_per_minute: float, workers: int, seed: int,
                 duration: float | None, fd: int | None) -> None:
    """Run DropStream with the store and warehouse sandboxes and let orders flow, until Ctrl-C.

    On the embedded default (no DATABASE_URL / REDIS_URL) everything runs in this process on a
    fresh SQLite file; with them set, it uses PostgreSQL and real `dropstream worker` processes.
    Prints the console and API addresses, a login and an API key.
    """
    from dropstream.app import create_app
    from dropstream.cli.serve import listening_on
    from dropstream.demo.runtime import DemoOptions, run_demo

    if fd is not None:
        host, port = listening_on(fd)
    public = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    overrides: dict[str, object] = {"ALLOW_LOOPBACK": True, "PUBLIC_BASE_URL": public}
    if not os.environ.get("DATABASE_URL"):
        overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{fresh_sqlite_file()}"
    app = create_app(overrides)
    with app.app_context():
        flask_migrate.upgrade()
    run_demo(app, DemoOptions(host=host, port=port, orders_per_minute=orders_per_minute,
                              seed=seed, workers=workers, duration=duration, fd=fd),
             say=click.echo)


def fresh_sqlite_file() -> Path:
    """The demo's own database in the instance folder, emptied at every start."""
    path = Path(load_settings()["INSTANCE_PATH"]) / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path
