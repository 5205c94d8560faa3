"""The plugin surface: documented hooks, a test per hook, entry-point discovery, the allow-list
and disable switch, duplicate connector ids, and ``dropstream plugins``."""

from __future__ import annotations

import inspect
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pytest
from flask import Blueprint, Flask, current_app

from dropstream import hookimpl, hookspecs
from dropstream.app import create_app
from dropstream.cli import cli
from dropstream.connectors.base import ConnectorRole, TransientError
from dropstream.extensions import db
from dropstream.plugins import PluginError
from dropstream.state import get_state
from dropstream.stores.connections import store_connector
from dropstream.stores.credentials import write_credentials
from dropstream.testing import plugin as reference_plugin
from dropstream.testing.reference import ReferenceStore
from tests.factories import MerchantFactory, ProviderFactory, StoreFactory

ROOT = Path(__file__).resolve().parents[1]
TEST_ROOTS = [ROOT / "tests", *sorted((ROOT / "plugins").glob("*/tests"))]


# -------------------------------------------------------------------------------------------------
# The hook specifications police themselves
# -------------------------------------------------------------------------------------------------


def test_hook_names_are_every_hook_of_the_plugin_manager(app: Flask) -> None:
    pm = get_state(app).plugin_manager
    assert hookspecs.hook_names() == sorted(n for n in dir(pm.hook) if not n.startswith("_"))


@pytest.mark.parametrize("hook", hookspecs.hook_names())
def test_every_hook_is_documented_with_each_argument(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    doc = inspect.getdoc(spec) or ""
    assert doc.strip(), f"hook {hook} has no docstring"
    for name in inspect.signature(spec).parameters:
        assert re.search(rf":param {name}:", doc), f"hook {hook} does not document {name!r}"


def _hook_test_names() -> set[str]:
    names: set[str] = set()
    for root in TEST_ROOTS:
        for path in root.rglob("test_*.py"):
            names.update(re.findall(r"^\s*def (test_hook_\w+)", path.read_text(), re.MULTILINE))
    return names


@pytest.mark.parametrize("hook", hookspecs.hook_names())
def test_every_hook_has_a_test(hook: str) -> None:
    names = _hook_test_names()
    where = ", ".join(str(root.relative_to(ROOT)) for root in TEST_ROOTS)
    assert any(name == f"test_hook_{hook}" or name.startswith(f"test_hook_{hook}_")
               for name in names), f"no test named test_hook_{hook} in {where}"


# -------------------------------------------------------------------------------------------------
# Registration hooks
# -------------------------------------------------------------------------------------------------


def _app(app_config: dict[str, object], plugins: list[tuple[str, object]],
         env: dict[str, str] | None = None, load_entry_points: bool = False) -> Flask:
    return create_app(app_config, env=env or {}, plugins=plugins,
                      load_entry_points=load_entry_points)


@contextmanager
def running(app: Flask) -> Iterator[Flask]:
    """An app context for a second app in a test; nothing it flushed is kept."""
    with app.app_context():
        try:
            yield app
        finally:
            db.session.rollback()
            db.session.remove()
            get_state(app).queue.close()
            db.engine.dispose()


class OtherStore(ReferenceStore):
    id = "other-store"
    name = "Another store"


def test_hook_register_connectors(app_config: dict[str, object]) -> None:
    class Plugin:
        @hookimpl
        def register_connectors(self) -> list[type]:
            return [OtherStore]

    app = _app(app_config, [("reference", reference_plugin), ("other", Plugin())])
    registry = get_state(app).connectors
    assert registry.get("other-store", ConnectorRole.STOREFRONT) is OtherStore
    assert registry.origin("other-store") == "other"
    assert registry.origin("reference-store") == "reference"


def test_hook_register_blueprints(app_config: dict[str, object]) -> None:
    blueprint = Blueprint("other_connector", __name__, url_prefix="/connectors/other")
    blueprint.add_url_rule("/ping", "ping", lambda: {"pong": True})

    class Plugin:
        @hookimpl
        def register_blueprints(self) -> list[Blueprint]:
            return [blueprint]

    app = _app(app_config, [("other", Plugin())])
    response = app.test_client().get("/connectors/other/ping")
    assert response.status_code == 200
    assert response.get_json() == {"pong": True}


def test_hook_register_commands(app_config: dict[str, object]) -> None:
    @click.command("hello")
    @click.argument("name")
    def hello(name: str) -> None:
        """Say hello from inside the app."""
        click.echo(f"hello {name} from {current_app.config['PUBLIC_BASE_URL']}")

    class Plugin:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            cli.add_command(hello)

    app = _app(app_config, [("greeter", Plugin())])
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["hello", "ada"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello ada from http://dropstream.test\n"
    assert "hello" in runner.invoke(cli, ["--help"]).output

    # Commands belong to the app whose plugins registered them, not to the process.
    without = _app(app_config, []).test_cli_runner().invoke(cli, ["hello", "ada"])
    assert without.exit_code != 0
    assert "No such command 'hello'" in without.output


# -------------------------------------------------------------------------------------------------
# A third-party plugin, discovered through a real entry point
# -------------------------------------------------------------------------------------------------

THIRDPARTY_MODULE = "thirdparty_demo_plugin"
THIRDPARTY_SOURCE = textwrap.dedent('''
    """A connector package someone else published."""
    from marshmallow import Schema, fields

    from dropstream import hookimpl
    from dropstream.connectors.base import Capability, StorefrontConnector, TransientError
    from dropstream.connectors.types import SetupCheck


    class Settings(Schema):
        shop = fields.String(required=True)


    class Credentials(Schema):
        api_key = fields.String(required=True, load_only=True)


    class ThirdPartyStore(StorefrontConnector):
        id = CONNECTOR_ID
        name = "Third-party demo store"
        capabilities = frozenset({Capability.IMPORT_ORDERS})
        settings_schema = Settings
        credentials_schema = Credentials

        def setup_checks(self):
            accepted = self.context.credentials.get("api_key") == "tp-secret-key"
            shop = self.context.settings["shop"]
            return [SetupCheck("credentials", f"API key accepted by {shop}", accepted)]

        def fetch_orders(self, cursor):
            raise TransientError(f"503 from upstream for key {self.context.credentials['api_key']}")


    @hookimpl
    def register_connectors():
        return [ThirdPartyStore]
''')


@pytest.fixture
def thirdparty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Install a third-party distribution into ``tmp_path`` the way pip lays one out: a
    ``*.dist-info`` folder with METADATA and entry_points.txt, next to its module."""

    def install(connector_id: str = "thirdparty-store") -> None:
        dist_info = tmp_path / "thirdparty_demo-0.1.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: thirdparty-demo\nVersion: 0.1\n")
        (dist_info / "entry_points.txt").write_text(
            f"[dropstream]\nthirdparty_demo = {THIRDPARTY_MODULE}\n")
        (tmp_path / f"{THIRDPARTY_MODULE}.py").write_text(
            THIRDPARTY_SOURCE.replace("CONNECTOR_ID", repr(connector_id)))
        monkeypatch.syspath_prepend(str(tmp_path))

    yield install
    sys.modules.pop(THIRDPARTY_MODULE, None)


def _loaded(app: Flask) -> dict[str, Any]:
    return {plugin.name: plugin for plugin in get_state(app).plugins}


def test_a_third_party_plugin_is_discovered_and_its_connector_used_like_a_reference_one(
    app: Flask, app_config: dict[str, object], thirdparty: Callable[..., None],
) -> None:
    thirdparty()
    other = _app(app_config, [("reference", reference_plugin)], load_entry_points=True)
    plugin = _loaded(other)["thirdparty_demo"]
    assert plugin.module == THIRDPARTY_MODULE
    assert (plugin.distribution, plugin.version) == ("thirdparty-demo", "0.1")
    assert get_state(other).connectors.origin("thirdparty-store") == "thirdparty_demo"

    with running(other):
        provider = ProviderFactory()
        merchant = MerchantFactory(provider_id=provider.id)
        store = StoreFactory(provider_id=provider.id, merchant_id=merchant.id,
                             connector_id="thirdparty-store", settings={"shop": "tp-shop"},
                             with_channels=False)
        write_credentials(store, {"api_key": "tp-secret-key"})

        connector = store_connector(store)
        (check,) = connector.setup_checks()
        assert check.passed and check.title == "API key accepted by tp-shop"
        # Wrapped like every connector: errors are tagged with their row, secrets redacted.
        with pytest.raises(TransientError) as raised:
            connector.fetch_orders(None)
        assert raised.value.owner == ("store", store.id)  # type: ignore[attr-defined]
        assert "tp-secret-key" not in raised.value.message


def test_the_allow_list_loads_only_the_named_plugins(
    app_config: dict[str, object], thirdparty: Callable[..., None],
) -> None:
    thirdparty()
    only = _app(app_config, [], env={"DROPSTREAM_PLUGINS": "thirdparty_demo"},
                load_entry_points=True)
    assert list(_loaded(only)) == ["thirdparty_demo"]
    others = _app(app_config, [], env={"DROPSTREAM_PLUGINS": "bigcommerce, wms_generic"},
                  load_entry_points=True)
    assert "thirdparty_demo" not in _loaded(others)
    assert "thirdparty-store" not in {c.id for c in get_state(others).connectors.all()}


def test_the_disable_switch_skips_a_plugin(
    app_config: dict[str, object], thirdparty: Callable[..., None],
) -> None:
    thirdparty()
    assert "thirdparty_demo" in _loaded(_app(app_config, [], load_entry_points=True))
    disabled = _app(app_config, [("reference", reference_plugin)],
                    env={"DROPSTREAM_DISABLE_PLUGINS": "thirdparty_demo"}, load_entry_points=True)
    assert "thirdparty_demo" not in _loaded(disabled)
    assert "reference" in _loaded(disabled)


def test_duplicate_connector_ids_fail_naming_both_plugins(
    app_config: dict[str, object], thirdparty: Callable[..., None],
) -> None:
    thirdparty(connector_id="reference-store")
    with pytest.raises(PluginError) as raised:
        _app(app_config, [("reference", reference_plugin)], load_entry_points=True)
    message = str(raised.value)
    assert "'reference-store'" in message
    assert "'reference'" in message and "'thirdparty_demo'" in message


def test_plugins_command_lists_plugins_with_their_connectors(
    app_config: dict[str, object], thirdparty: Callable[..., None],
) -> None:
    thirdparty()
    app = _app(app_config, [("reference", reference_plugin)], load_entry_points=True)
    runner = app.test_cli_runner()

    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "reference: dropstream.testing.plugin (registered by the application)" in result.output
    assert "    reference-wms [warehouse] " in result.output
    assert ("thirdparty_demo: thirdparty_demo_plugin (thirdparty-demo 0.1)\n"
            "    thirdparty-store [storefront] Third-party demo store; "
            "capabilities: import_orders\n") in result.output

    report = {p["name"]: p for p in json.loads(runner.invoke(cli, ["plugins", "--json"]).output)}
    assert report["thirdparty_demo"]["connectors"] == [{
        "id": "thirdparty-store", "name": "Third-party demo store", "role": "storefront",
        "capabilities": ["import_orders"],
    }]
    # The built-in connector plugins come through their entry points like any other.
    for name, distribution in (("bigcommerce", "dropstream-bigcommerce"),
                               ("wms_generic", "dropstream-wms-generic")):
        assert report[name]["distribution"].replace("_", "-") == distribution
        assert report[name]["module"] == f"dropstream_{name}.plugin"
