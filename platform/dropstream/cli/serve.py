"""``dropstream serve``: the web application (API, console, connector webhooks and callbacks) in
a process of its own, as the production layout runs it beside ``dropstream worker`` and
``dropstream scheduler`` processes.

It uses Werkzeug's server with connections kept open and threads kept between them
(:mod:`dropstream.serving`): enough for one machine, the demo and the reliability runs (which
kill it and start it again). A WSGI server on ``wsgi:app`` (gunicorn, uWSGI) serves the same
application in production. On the embedded default (no REDIS_URL) nothing else could run the
jobs, so this process also runs the in-process workers and the scheduler.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--quiet", is_flag=True, help="No line per request on stderr.")
@click.option("--fd", type=int, default=None,
              help="Serve on this inherited socket, already listening, instead of binding "
                   "--host and --port (socket activation: a supervisor that holds the port keeps "
                   "it through restarts, and no other program can take it meanwhile).")
@with_appcontext
def serve_command(host: str, port: int, quiet: bool, fd: int | None) -> None:
    """Serve DropStream's web application until stopped (Ctrl-C or SIGTERM)."""
    from dropstream.heap import freeze_startup_objects
    from dropstream.jobs.queue import InProcessQueue
    from dropstream.jobs.scheduler import start_in_process
    from dropstream.serving import make_server
    from dropstream.state import get_state

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if fd is not None:
        host, port = listening_on(fd)
    server = make_server(host, port, app, fd=fd)
    if fd is not None:
        os.close(fd)  # the server serves from its own copy of the socket
    stoppers = []
    queue = get_state(app).queue
    if isinstance(queue, InProcessQueue):
        queue.start()
        stoppers.append(queue.close)
        stoppers.append(start_in_process(app).stop)

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt  # leaves serve_forever below, in the main thread

    signal.signal(signal.SIGTERM, stop)
    freeze_startup_objects()
    click.echo(f"DropStream serving on http://{host}:{server.port}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        for stopper in reversed(stoppers):
            stopper()


def listening_on(fd: int) -> tuple[str, int]:
    """The address of the inherited socket ``fd`` (its family as the socket says, not as
    --host would)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as inherited:
            if inherited.type != socket.SOCK_STREAM or inherited.family not in (
                    socket.AF_INET, socket.AF_INET6):
                raise click.UsageError(f"--fd {fd} is not a TCP socket.")
            host, port = inherited.getsockname()[:2]
    except OSError as error:
        raise click.UsageError(f"--fd {fd} is not an open socket: {error.strerror}.") from None
    return host, port
