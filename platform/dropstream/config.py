"""Settings, read from the environment (12-factor) with an optional ``.env`` file.

``load_settings()`` is pure: it reads a mapping (``os.environ`` by default) and returns a plain
dict for ``app.config``. ``create_app`` calls it and then :func:`finalize_secrets`, which refuses to
start in production without real keys and, on the embedded default, creates local keys once.
Nothing here runs at import time.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

log = logging.getLogger(__name__)

#: Environment variables DropStream reads, with what each one is for. The README's configuration
#: table is generated from the same words, so keep them short and exact.
ENVIRONMENT = {
    "DROPSTREAM_ENV": "'production' or 'development' (default). Production refuses to start "
    "without SECRET_KEY and ENCRYPTION_KEYS.",
    "DATABASE_URL": "SQLAlchemy URL, e.g. postgresql+psycopg://user@host/dropstream. "
    "Default: a SQLite file in the instance folder.",
    "REDIS_URL": "redis://host:6379/0 to run jobs through RQ workers. Unset: the embedded "
    "in-process queue.",
    "SECRET_KEY": "Signs browser sessions. At least 32 characters.",
    "ENCRYPTION_KEYS": "Comma-separated Fernet keys for credentials at rest: the first "
    "encrypts, all decrypt (rotation).",
    "PUBLIC_BASE_URL": "The address stores and warehouses reach DropStream at "
    "(webhooks, OAuth callbacks). Default: http://127.0.0.1:5000.",
    "DROPSTREAM_PLUGINS": "Comma-separated allow-list of entry-point plugin names to load. "
    "Unset: all installed.",
    "DROPSTREAM_DISABLE_PLUGINS": "Comma-separated plugin names not to load.",
    "DROPSTREAM_INSTANCE_PATH": "Folder for the SQLite file and local keys. Default: ./instance.",
    "DROPSTREAM_LOG_LEVEL": "Logging level (default INFO).",
    "DROPSTREAM_LOG_FORMAT": "'json' for one JSON object per log line (with tenant and job ids); "
    "default 'text'.",
    "METRICS_TOKEN": "When set, /metrics requires 'Authorization: Bearer <token>'.",
    "DROPSTREAM_ALLOW_LOOPBACK": "'1' lets connectors call http://127.0.0.1 (local sandboxes: the "
    "demo, tests). Never set it in production.",
    "SMTP_URL": "Mail server for invitations and alert digests, e.g. smtp://user:password@host:587 "
    "(STARTTLS) or smtps://…:465. Unset: the console shows invitation links instead.",
    "MAIL_FROM": "Sender address of DropStream's e-mails. Default: dropstream@localhost.",
    "DROPSTREAM_HISTORY_DAYS": "Days finished work and received webhooks are kept for "
    "operators to look up, then deleted (default 30, at least 3). Orders and their timelines "
    "stay.",
    "BIGCOMMERCE_APP_CLIENT_ID": "Client id of your DropStream app in BigCommerce's Developer "
    "Portal, for merchants who install the app. Unset: stores connect with API accounts only.",
    "BIGCOMMERCE_APP_CLIENT_SECRET": "That app's client secret (exchanges install codes, verifies "
    "signed callbacks).",
    "BIGCOMMERCE_LOGIN_URL": "BigCommerce's login and token service. Default: "
    "https://login.bigcommerce.com.",
}

LOCAL_KEYS_FILE = "local-keys.json"


class ConfigError(RuntimeError):
    """A setting is missing or malformed. The message names the variable and the fix."""


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def load_settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read DropStream's settings from ``env`` (default: ``os.environ`` plus ``.env``)."""
    if env is None:
        from dotenv import dotenv_values

        env = {**{k: v for k, v in dotenv_values(".env").items() if v is not None}, **os.environ}
    mode = env.get("DROPSTREAM_ENV", "development").strip().lower()
    if mode not in ("production", "development"):
        raise ConfigError(
            f"DROPSTREAM_ENV={mode!r} is not understood: use 'production' or 'development'."
        )
    instance = Path(env.get("DROPSTREAM_INSTANCE_PATH") or "instance").resolve()
    settings: dict[str, Any] = {
        "DROPSTREAM_ENV": mode,
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL") or f"sqlite:///{instance / 'dropstream.db'}",
        "REDIS_URL": env.get("REDIS_URL") or None,
        "SECRET_KEY": env.get("SECRET_KEY") or None,
        "ENCRYPTION_KEYS": _csv(env.get("ENCRYPTION_KEYS")),
        "PUBLIC_BASE_URL": (env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "PLUGINS_ALLOW": _csv(env.get("DROPSTREAM_PLUGINS")) or None,
        "PLUGINS_DISABLE": _csv(env.get("DROPSTREAM_DISABLE_PLUGINS")),
        "LOG_LEVEL": (env.get("DROPSTREAM_LOG_LEVEL") or "INFO").upper(),
        "LOG_FORMAT": (env.get("DROPSTREAM_LOG_FORMAT") or "text").strip().lower(),
        "METRICS_TOKEN": env.get("METRICS_TOKEN") or None,
        "ALLOW_LOOPBACK": (env.get("DROPSTREAM_ALLOW_LOOPBACK") or "").strip().lower() in ("1", "true", "yes"),
        "SMTP_URL": env.get("SMTP_URL") or None,
        "MAIL_FROM": env.get("MAIL_FROM") or "dropstream@localhost",
        "BIGCOMMERCE_APP_CLIENT_ID": env.get("BIGCOMMERCE_APP_CLIENT_ID") or None,
        "BIGCOMMERCE_APP_CLIENT_SECRET": env.get("BIGCOMMERCE_APP_CLIENT_SECRET") or None,
        "BIGCOMMERCE_LOGIN_URL": (env.get("BIGCOMMERCE_LOGIN_URL")
                                  or "https://login.bigcommerce.com").rstrip("/"),
        "HISTORY_DAYS": _history_days(env.get("DROPSTREAM_HISTORY_DAYS")),
    }
    url = settings["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgres://") or url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; the bare scheme would ask for psycopg2.
        settings["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + url.split("://", 1)[1]
    return settings


#: Days of work history kept (``jobs/retention.py``). BigCommerce re-sends an unacknowledged
#: webhook for up to 48 hours: its inbox record must still be there to turn the copy away.
DEFAULT_HISTORY_DAYS = 30
MIN_HISTORY_DAYS = 3


def _history_days(value: str | None) -> int:
    if value is None or not value.strip():
        return DEFAULT_HISTORY_DAYS
    try:
        days = int(value.strip())
    except ValueError:
        raise ConfigError(f"DROPSTREAM_HISTORY_DAYS={value!r} is not a whole number of days: "
                          f"use, say, {DEFAULT_HISTORY_DAYS}.") from None
    if days < MIN_HISTORY_DAYS:
        raise ConfigError(
            f"DROPSTREAM_HISTORY_DAYS={days} is too short: use at least {MIN_HISTORY_DAYS} (a "
            "store re-sends a webhook for up to 48 hours, and its record must still be there "
            "to turn the copy away).")
    return days


def finalize_secrets(config: dict[str, Any]) -> None:
    """Make sure SECRET_KEY and ENCRYPTION_KEYS are usable, or raise :class:`ConfigError`.

    Production: both must be given and valid. Development (the embedded default): missing ones
    are generated once into ``<instance>/local-keys.json`` (mode 0600) and reused, with a warning,
    so a restart can still decrypt what it stored.
    """
    production = config.get("DROPSTREAM_ENV") == "production"
    missing = [name for name in ("SECRET_KEY", "ENCRYPTION_KEYS") if not config.get(name)]
    if missing and production:
        raise ConfigError(
            "DropStream is in production mode and "
            + " and ".join(missing)
            + (" is" if len(missing) == 1 else " are")
            + " not set. Set SECRET_KEY to a random string of at least 32 characters and "
            "ENCRYPTION_KEYS to one or more keys from `dropstream keys generate`."
        )
    if missing:
        local = _local_keys(Path(config["INSTANCE_PATH"]))
        if not config.get("SECRET_KEY"):
            config["SECRET_KEY"] = local["SECRET_KEY"]
        if not config.get("ENCRYPTION_KEYS"):
            config["ENCRYPTION_KEYS"] = [local["ENCRYPTION_KEY"]]
        log.warning(
            "Using local development keys from %s; set SECRET_KEY and ENCRYPTION_KEYS for "
            "anything but a trial.",
            Path(config["INSTANCE_PATH"]) / LOCAL_KEYS_FILE,
        )
    if production and config.get("ALLOW_LOOPBACK"):
        raise ConfigError("DROPSTREAM_ALLOW_LOOPBACK is for local sandboxes; unset it in production.")
    if len(config["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY is shorter than 32 characters: use a longer random value.")
    for position, key in enumerate(config["ENCRYPTION_KEYS"], start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"ENCRYPTION_KEYS entry {position} is not a Fernet key (32 url-safe base64 bytes): "
                "create one with `dropstream keys generate`."
            ) from None


def _local_keys(instance: Path) -> dict[str, str]:
    path = instance / LOCAL_KEYS_FILE
    if path.exists():
        return json.loads(path.read_text())
    instance.mkdir(parents=True, exist_ok=True)
    keys = {"SECRET_KEY": secrets.token_urlsafe(48), "ENCRYPTION_KEY": Fernet.generate_key().decode()}
    # Create with 0600 from the start so the keys are never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle)
    return keys
