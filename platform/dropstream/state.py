"""The per-app DropStream state kept in ``app.extensions["dropstream"]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pluggy
from flask import Flask, current_app

if TYPE_CHECKING:
    from dropstream.jobs.queue import JobQueue
    from dropstream.plugins import ConnectorRegistry, LoadedPlugin
    from dropstream.security.secrets import SecretBox


@dataclass
class DropStreamState:
    plugin_manager: pluggy.PluginManager
    plugins: list[LoadedPlugin]
    connectors: ConnectorRegistry
    secrets: SecretBox
    queue: JobQueue


def get_state(app: Flask | None = None) -> DropStreamState:
    return (app or current_app).extensions["dropstream"]
