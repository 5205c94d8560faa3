"""The ``dropstream`` command line.

It is a :class:`flask.cli.FlaskGroup` around :func:`dropstream.app.create_app`, built lazily:
core commands that need no application (``keys generate``, ``--help`` of a sub-command) work
even when the configuration is incomplete, and the application is created only when a command
needs it.

Plugin commands: ``create_app`` calls the ``register_commands`` hook with the application's own
command group (``app.cli``), and FlaskGroup merges that group into ``dropstream`` when it loads
the application. So a plugin's commands come from the very plugin manager the application uses
(the same allow-list and disable switch, the same explicit plugins in tests) and nothing is
registered on a process-wide object.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException, routes_command, shell_command
from flask_migrate.cli import db as db_group

from dropstream import __version__
from dropstream.cli.demo import demo_command
from dropstream.cli.jobs import scheduler_command, worker_command
from dropstream.cli.keys import keys
from dropstream.cli.plugins import plugins_command
from dropstream.cli.serve import serve_command
from dropstream.cli.tenants import api_keys, merchants, providers, users


def load_app() -> Flask:
    """Build the application from the environment for a command that needs one."""
    from dropstream.app import create_app
    from dropstream.config import ConfigError
    from dropstream.plugins import PluginError

    try:
        return create_app()
    except (ConfigError, PluginError) as error:
        # A usage error with the message that names the setting or plugin, not a traceback.
        raise NoAppException(str(error)) from None


cli = FlaskGroup(
    name="dropstream",
    create_app=load_app,
    # `run` would serve without job workers: `dropstream serve` runs them on the embedded default.
    add_default_commands=False,
    add_version_option=False,
    # Settings read `.env` themselves (without overriding the environment or changing directory).
    load_dotenv=False,
    help="DropStream: orders from online stores to warehouses, shipments and stock back.\n\n"
    "Settings come from environment variables (see the README); a command that needs the "
    "application builds it from them.",
)
cli = click.version_option(__version__, prog_name="dropstream")(cli)
# FlaskGroup's --app would be ignored (the factory above always wins): don't offer it.
cli.params = [param for param in cli.params if param.name != "app"]

cli.add_command(db_group, "db")
for command in (providers, merchants, users, api_keys, keys, plugins_command, worker_command,
                scheduler_command, serve_command, demo_command, shell_command, routes_command):
    cli.add_command(command)


def main() -> None:
    """Entry point of the ``dropstream`` console script."""
    cli.main(prog_name="dropstream")


__all__ = ["cli", "load_app", "main"]
