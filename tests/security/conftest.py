"""The security suite's app: the core with every built-in connector plugin (reference,
BigCommerce, generic WMS) and the BigCommerce app configured, so the plugins' inbound routes
(webhooks, install and signed callbacks, WMS pushes) are attacked along with the API and the
console."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from dropstream.testing import plugin as reference_plugin
from dropstream_bigcommerce import plugin as bigcommerce_plugin
from dropstream_wms_generic import plugin as wms_plugin
from tests.conftest import _test_config, live_server
from tests.conftest import running_app as shared_running_app

BC_CLIENT_ID = "dropstream-app-client"
BC_CLIENT_SECRET = "dropstream-app-secret-0123456789abcdef"
PLUGINS = [
    ("reference", reference_plugin),
    ("bigcommerce", bigcommerce_plugin),
    ("wms_generic", wms_plugin),
]


def security_config(config: dict[str, object]) -> dict[str, object]:
    return {
        **config,
        "BIGCOMMERCE_APP_CLIENT_ID": BC_CLIENT_ID,
        "BIGCOMMERCE_APP_CLIENT_SECRET": BC_CLIENT_SECRET,
        # Never the real BigCommerce: a test that needs the token endpoint starts the
        # sandbox and points here; any other call out fails at once on loopback.
        "BIGCOMMERCE_LOGIN_URL": "http://127.0.0.1:9",
        "BIGCOMMERCE_RETRY_DELAYS": (0.01, 0.02),
    }


@contextlib.contextmanager
def running_app(config: dict[str, object], *, empty: bool = True) -> Iterator[Any]:
    """An app with every plugin, in its context, on empty tables unless ``empty=False`` (the
    same database under other settings, as after a restart) — the core fixture's recipe."""
    with shared_running_app(security_config(config), empty=empty, plugins=PLUGINS) as app:
        yield app


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Any]:
    with running_app(app_config) as app:
        yield app


@pytest.fixture(scope="module")
def module_app(_schema: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One app for a whole module whose tests each leave the data as they found it (or change
    only what the next test does not look at); never combined with ``app`` in one test."""
    with running_app(_test_config(_schema, tmp_path_factory.mktemp("instance"))) as app:
        yield app


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """DropStream on a free loopback port (for sandboxes that call it), also its public URL."""
    with live_server(app) as base:
        yield base
