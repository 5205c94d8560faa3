"""``plugins``: what this installation loaded, and the connectors each plugin registered."""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import with_appcontext

from dropstream.state import get_state


def plugin_report() -> list[dict[str, Any]]:
    """Loaded plugins in load order, each with its connectors (id, role, capabilities)."""
    state = get_state()
    report = []
    for plugin in state.plugins:
        connectors = [
            {"id": c.id, "name": c.name, "role": c.role.value,
             "capabilities": sorted(capability.value for capability in c.capabilities)}
            for c in state.connectors.all() if state.connectors.origin(c.id) == plugin.name
        ]
        report.append({"name": plugin.name, "module": plugin.module,
                       "distribution": plugin.distribution, "version": plugin.version,
                       "connectors": connectors})
    return report


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@with_appcontext
def plugins_command(as_json: bool) -> None:
    """List the loaded plugins and the connectors each one registered."""
    report = plugin_report()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not report:
        click.echo("No plugins loaded.")
    for plugin in report:
        source = (f"{plugin['distribution']} {plugin['version']}" if plugin["distribution"]
                  else "registered by the application")
        click.echo(f"{plugin['name']}: {plugin['module']} ({source})")
        if not plugin["connectors"]:
            click.echo("    no connectors")
        for connector in plugin["connectors"]:
            capabilities = ", ".join(connector["capabilities"]) or "none"
            click.echo(f"    {connector['id']} [{connector['role']}] {connector['name']}; "
                       f"capabilities: {capabilities}")
