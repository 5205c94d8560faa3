"""The BigCommerce plugin is its own distribution, found through its ``dropstream`` entry point.

(No ``conftest.py`` or ``__init__.py`` here: the core's fixtures live in the repository's
``tests/`` package, and a second ``tests`` package would clash with it.)
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from cryptography.fernet import Fernet

from dropstream.app import create_app
from dropstream.state import get_state


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_entry_point_is_discovered_and_loaded_by_create_app(tmp_path: Path) -> None:
    (entry_point,) = metadata.entry_points(group="dropstream", name="bigcommerce")
    assert entry_point.value == "dropstream_bigcommerce.plugin"
    assert entry_point.dist is not None
    assert _normalized(entry_point.dist.name) == "dropstream-bigcommerce"

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'plugin.db'}",
            "SECRET_KEY": "plugin-test-secret-key-0123456789abcdef",
            "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "INSTANCE_PATH": str(tmp_path),
        },
        env={},
        load_entry_points=True,
    )

    state = get_state(app)
    loaded = {plugin.name: plugin for plugin in state.plugins}
    assert loaded["bigcommerce"].module == "dropstream_bigcommerce.plugin"
    assert _normalized(loaded["bigcommerce"].distribution or "") == "dropstream-bigcommerce"
    assert state.plugin_manager.has_plugin("bigcommerce")
