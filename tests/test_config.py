"""Settings: production refuses to start without real keys; development makes local ones once;
importing DropStream does nothing by itself."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dropstream.app import create_app
from dropstream.config import ENVIRONMENT, LOCAL_KEYS_FILE, ConfigError, load_settings

SECRET = "a-production-secret-key-of-more-than-32-chars"


def _production(tmp_path: Path, **env: str) -> dict[str, str]:
    return {"DROPSTREAM_ENV": "production", "DROPSTREAM_INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}", **env}


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"ENCRYPTION_KEYS": Fernet.generate_key().decode()}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": SECRET}, "ENCRYPTION_KEYS is not set"),
        ({}, "SECRET_KEY and ENCRYPTION_KEYS are not set"),
    ],
)
def test_production_refuses_to_start_without_keys(tmp_path: Path, given: dict[str, str],
                                                   missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        create_app(env=_production(tmp_path, **given))
    # Refusing means refusing: no local keys were made to paper over the gap.
    assert not (tmp_path / "instance" / LOCAL_KEYS_FILE).exists()


def test_a_malformed_encryption_key_is_named_by_position(tmp_path: Path) -> None:
    keys = f"{Fernet.generate_key().decode()},not-a-fernet-key"
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS entry 2 is not a Fernet key") as raised:
        create_app(env=_production(tmp_path, SECRET_KEY=SECRET, ENCRYPTION_KEYS=keys))
    assert "not-a-fernet-key" not in str(raised.value)  # a key, even a broken one, is not echoed


def test_production_starts_with_its_keys(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    app = create_app(env=_production(tmp_path, SECRET_KEY=SECRET, ENCRYPTION_KEYS=key),
                     load_entry_points=False)
    assert app.config["ENCRYPTION_KEYS"] == [key]
    assert not (tmp_path / "instance" / LOCAL_KEYS_FILE).exists()


def test_development_creates_local_keys_once_and_reuses_them(tmp_path: Path) -> None:
    env = {"DROPSTREAM_INSTANCE_PATH": str(tmp_path / "instance")}
    first = create_app(env=env, load_entry_points=False)
    keys_file = tmp_path / "instance" / LOCAL_KEYS_FILE
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    stored = json.loads(keys_file.read_text())
    assert first.config["SECRET_KEY"] == stored["SECRET_KEY"]
    assert first.config["ENCRYPTION_KEYS"] == [stored["ENCRYPTION_KEY"]]

    second = create_app(env=env, load_entry_points=False)
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    assert second.config["ENCRYPTION_KEYS"] == first.config["ENCRYPTION_KEYS"]
    assert json.loads(keys_file.read_text()) == stored


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://user:pw@db.example:5432/dropstream", "postgresql+psycopg://user:pw@db.example:5432/dropstream"),
        ("postgresql://user@db.example/dropstream", "postgresql+psycopg://user@db.example/dropstream"),
        ("postgresql+psycopg://user@db.example/dropstream", "postgresql+psycopg://user@db.example/dropstream"),
    ],
)
def test_database_url_is_normalised_to_psycopg3(given: str, expected: str) -> None:
    assert load_settings({"DATABASE_URL": given})["SQLALCHEMY_DATABASE_URI"] == expected


IMPORT_EVERYTHING = textwrap.dedent("""
    import importlib, json, pkgutil, socket, sqlite3, sys, threading

    opened = []
    def refuse(what):
        def call(*args, **kwargs):
            opened.append(what)
            raise OSError(f"{what} opened at import time")
        return call

    socket.socket.connect = refuse("socket")
    socket.create_connection = refuse("socket")
    sqlite3.connect = refuse("sqlite")
    import psycopg
    psycopg.connect = refuse("postgresql")
    psycopg.Connection.connect = classmethod(refuse("postgresql"))

    names = []
    for package in sys.argv[1:]:
        root = importlib.import_module(package)
        names.append(package)
        for module in pkgutil.walk_packages(root.__path__, prefix=package + "."):
            importlib.import_module(module.name)
            names.append(module.name)
    print(json.dumps({"modules": names, "opened": opened, "threads": threading.active_count()}))
""")


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    packages = ["dropstream"] + [
        name for name in ("dropstream_bigcommerce", "dropstream_wms_generic")
        if importlib.util.find_spec(name) is not None
    ]
    env = {
        **os.environ,
        "DROPSTREAM_INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'instance' / 'x.db'}",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "PYTHONDONTWRITEBYTECODE": "1",  # the interpreter's caches are not ours to count
    }
    result = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING, *packages], cwd=workdir,
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "dropstream.app" in report["modules"] and "dropstream.cli" in report["modules"]
    assert report["opened"] == []
    assert report["threads"] == 1
    assert list(workdir.iterdir()) == []
    assert not (tmp_path / "instance").exists()


def test_the_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name, meaning in ENVIRONMENT.items():
        assert f"| `{name}` | {meaning} |" in readme, f"README's configuration table lacks {name}"


@pytest.mark.parametrize(("given", "days"), [(None, 30), ("", 30), (" 7 ", 7), ("3", 3)])
def test_history_days_default_to_thirty(given: str | None, days: int) -> None:
    env = {} if given is None else {"DROPSTREAM_HISTORY_DAYS": given}
    assert load_settings(env)["HISTORY_DAYS"] == days


@pytest.mark.parametrize(("given", "message"), [
    ("a month", "DROPSTREAM_HISTORY_DAYS='a month' is not a whole number of days"),
    ("2", "DROPSTREAM_HISTORY_DAYS=2 is too short: use at least 3"),
    ("-30", "DROPSTREAM_HISTORY_DAYS=-30 is too short"),
])
def test_history_days_too_short_or_not_a_number_are_refused(given: str, message: str) -> None:
    """Kept fewer days than a store re-sends a webhook, a copy would be taken for new."""
    with pytest.raises(ConfigError, match=message):
        load_settings({"DROPSTREAM_HISTORY_DAYS": given})
