"""``worker`` and ``scheduler``: the processes that run DropStream's background work."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from dropstream.jobs.queue import QUEUES


@click.command("worker")
@click.option("--queue", "-q", "queues", multiple=True, type=click.Choice(QUEUES),
              help="Queue to listen to (repeatable). Default: all, most urgent first.")
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool) -> None:
    """Run a worker taking jobs from Redis (REDIS_URL). Start as many as you need."""
    from dropstream.heap import freeze_startup_objects
    from dropstream.jobs.worker import run_worker  # the job machinery loads only when used

    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException(
            "REDIS_URL is not set: the embedded default runs jobs inside the web process "
            "(`dropstream demo`), so there is nothing for a worker to take.")
    freeze_startup_objects()
    run_worker(current_app._get_current_object(), list(queues) or list(QUEUES), burst)  # type: ignore[attr-defined]


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduler: store channels on their intervals and the outbox relay."""
    from dropstream.heap import freeze_startup_objects
    from dropstream.jobs.scheduler import run_scheduler

    freeze_startup_objects()
    run_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]
