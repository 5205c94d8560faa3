"""The security suite's app: the core with every built-in connector plugin (reference,
BigCommerce, generic WMS) and the BigCommerce app configured, so the plugins' inbound routes
(webhooks, install and signed callbacks, WMS pushes) are attacked along with the API and the
console."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from dropstream.app import create_app
from dropstream.extensions import db
from dropstream.state import get_state
from dropstream.testing import plugin as reference_plugin
from dropstream_bigcommerce import plugin as bigcommerce_plugin
from dropstream_wms_generic import plugin as wms_plugin
from tests.conftest import _empty_everything

BC_CLIENT_ID = "dropstream-app-client"
BC_CLIENT_SECRET = "dropstream-app-secret-0123456789abcdef"
PLUGINS = [("reference", reference_plugin), ("bigcommerce", bigcommerce_plugin),
           ("wms_generic", wms_plugin)]


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Any]:
    config = {**app_config, "BIGCOMMERCE_APP_CLIENT_ID": BC_CLIENT_ID,
              "BIGCOMMERCE_APP_CLIENT_SECRET": BC_CLIENT_SECRET,
              "BIGCOMMERCE_RETRY_DELAYS": (0.01, 0.02)}
    app = create_app(config, env={}, plugins=PLUGINS, load_entry_points=False)
    with app.app_context():
        _empty_everything(app)
        yield app
        db.session.remove()
        get_state(app).queue.close()
        db.engine.dispose()


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """DropStream on a free loopback port (for sandboxes that call it), also its public URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    previous, app.config["PUBLIC_BASE_URL"] = app.config["PUBLIC_BASE_URL"], base
    try:
        yield base
    finally:
        app.config["PUBLIC_BASE_URL"] = previous
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
