"""The per-app plugin manager and the connector registry it fills.

``build_plugin_manager`` follows pluggy's host recipe: add the hook specifications, register
plugins given explicitly (tests, embedding applications), load the ``dropstream`` entry points
(filtered by the allow-list / disable switch), then ``check_pending`` so a typo in a hook name
fails loudly. The manager lives in ``app.extensions["dropstream"]``; nothing is global.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
from marshmallow import Schema

from dropstream import hookspecs
from dropstream.connectors.base import (
    ConnectorClass,
    ConnectorRole,
    StorefrontConnector,
    WarehouseConnector,
)

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "dropstream"


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered something invalid."""


@dataclass(frozen=True)
class LoadedPlugin:
    name: str
    module: str
    distribution: str | None
    version: str | None


def build_plugin_manager(
    *,
    allow: Sequence[str] | None = None,
    disable: Sequence[str] = (),
    extra: Iterable[tuple[str, ModuleType | object]] = (),
    load_entry_points: bool = True,
) -> tuple[pluggy.PluginManager, list[LoadedPlugin]]:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    loaded: list[LoadedPlugin] = []
    for name, plugin in extra:
        if name in disable:
            continue
        pm.register(plugin, name=name)
        loaded.append(LoadedPlugin(name, getattr(plugin, "__name__", repr(plugin)), None, None))
    if load_entry_points:
        for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if entry_point.name in disable or (allow is not None and entry_point.name not in allow):
                log.info("plugin %s not loaded (allow-list / disable switch)", entry_point.name)
                continue
            if pm.has_plugin(entry_point.name):
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:  # a broken plugin must say which one it is
                raise PluginError(f"plugin {entry_point.name!r} ({entry_point.value}) failed to import: {exc}") from exc
            pm.register(plugin, name=entry_point.name)
            dist = entry_point.dist
            loaded.append(LoadedPlugin(entry_point.name, entry_point.value,
                                       dist.name if dist else None, dist.version if dist else None))
    pm.check_pending()
    return pm, loaded


class UnknownConnector(LookupError):
    pass


class ConnectorRegistry:
    """Connector classes by id, as registered by plugins for one app."""

    def __init__(self, classes: Iterable[tuple[str, ConnectorClass]]) -> None:
        self._classes: dict[str, ConnectorClass] = {}
        self._origin: dict[str, str] = {}
        for plugin_name, cls in classes:
            _validate_connector_class(cls, plugin_name)
            if cls.id in self._classes:
                raise PluginError(
                    f"connector id {cls.id!r} is registered twice: by {self._origin[cls.id]!r} and "
                    f"by {plugin_name!r}; uninstall or disable one of them"
                )
            self._classes[cls.id] = cls
            self._origin[cls.id] = plugin_name

    @classmethod
    def from_plugin_manager(cls, pm: pluggy.PluginManager) -> ConnectorRegistry:
        pairs: list[tuple[str, ConnectorClass]] = []
        for impl in pm.hook.register_connectors.get_hookimpls():
            for connector in impl.function() or []:
                pairs.append((impl.plugin_name, connector))
        return cls(pairs)

    def get(self, connector_id: str, role: ConnectorRole | None = None) -> ConnectorClass:
        cls = self._classes.get(connector_id)
        if cls is None or (role is not None and cls.role is not role):
            raise UnknownConnector(connector_id)
        return cls

    def of_role(self, role: ConnectorRole) -> list[ConnectorClass]:
        return [c for c in self._classes.values() if c.role is role]

    def all(self) -> list[ConnectorClass]:
        return list(self._classes.values())

    def origin(self, connector_id: str) -> str:
        return self._origin[connector_id]


def _validate_connector_class(cls: Any, plugin_name: str) -> None:
    where = f"connector {getattr(cls, '__name__', cls)!r} from plugin {plugin_name!r}"
    if not isinstance(cls, type) or not issubclass(cls, (StorefrontConnector, WarehouseConnector)):
        raise PluginError(f"{where} must subclass StorefrontConnector or WarehouseConnector")
    for attribute in ("id", "name", "settings_schema", "credentials_schema"):
        if not getattr(cls, attribute, None):
            raise PluginError(f"{where} does not set {attribute!r}")
    for attribute in ("settings_schema", "credentials_schema"):
        schema = getattr(cls, attribute)
        if not (isinstance(schema, type) and issubclass(schema, Schema)):
            raise PluginError(f"{where}: {attribute} must be a marshmallow Schema class")
