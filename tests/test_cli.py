"""The ``dropstream`` command: tenants and access, keys, jobs processes and the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import select

from dropstream.app import create_app
from dropstream.cli import cli
from dropstream.extensions import db
from dropstream.security.keys import hash_api_key
from dropstream.security.secrets import SecretBox, SecretError
from dropstream.state import get_state
from dropstream.stores.credentials import read_credentials, write_credentials
from dropstream.stores.models import Store, Warehouse
from dropstream.tenants.models import ApiKey, Merchant, Provider, Role, User
from dropstream.tenants.services import authenticate_api_key
from dropstream.testing import plugin as reference_plugin
from tests.factories import StoreFactory
from tests.tenancy import make_tenant

PASSWORD = "a long enough password"


def invoke(runner: Any, *args: str, input: str | None = None) -> Result:
    result = runner.invoke(cli, list(args), input=input)
    return result


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


# -------------------------------------------------------------------------------------------------
# Tenants and access
# -------------------------------------------------------------------------------------------------


def test_create_provider_merchant_users_and_an_api_key(runner: Any) -> None:
    ok(invoke(runner, "providers", "create", "Acme Fulfillment"))
    provider = db.session.scalar(select(Provider))
    assert (provider.name, provider.slug) == ("Acme Fulfillment", "acme-fulfillment")

    result = ok(invoke(runner, "merchants", "create", "--provider", "acme-fulfillment",
                       "Bob's Goods"))
    merchant = db.session.scalar(select(Merchant))
    assert f"id {merchant.id}" in result.output and merchant.provider_id == provider.id

    ok(invoke(runner, "users", "create", "--provider", "acme-fulfillment",
              "--role", "provider_admin", "Admin@Acme.test", input=f"{PASSWORD}\n{PASSWORD}\n"))
    ok(invoke(runner, "users", "create", "--provider", "acme-fulfillment",
              "--merchant", str(merchant.id), "--role", "merchant_viewer", "--password-stdin",
              "viewer@bob.test", input=f"{PASSWORD}\n"))
    users = {u.email: u for u in db.session.scalars(select(User))}
    assert users["admin@acme.test"].role is Role.PROVIDER_ADMIN
    assert users["admin@acme.test"].merchant_id is None
    assert users["viewer@bob.test"].merchant_id == merchant.id
    assert PASSWORD not in (users["admin@acme.test"].password_hash or "")

    result = ok(invoke(runner, "api-keys", "create", "--user", "admin@acme.test",
                       "--name", "deploy"))
    plaintext = result.stdout.strip()
    assert plaintext.startswith("ds_") and "\n" not in plaintext
    assert "cannot be shown again" in result.stderr
    assert authenticate_api_key(db.session, plaintext) == users["admin@acme.test"]

    # The database holds the hash and the public prefix, never the key.
    key = db.session.scalar(select(ApiKey))
    assert key.key_hash == hash_api_key(plaintext)
    stored = [str(getattr(key, column.key)) for column in ApiKey.__table__.columns]
    assert not any(plaintext in value for value in stored)


def test_the_password_prompt_asks_twice(runner: Any) -> None:
    ok(invoke(runner, "providers", "create", "Acme", "--slug", "acme"))
    result = invoke(runner, "users", "create", "--provider", "acme", "--role", "provider_staff",
                    "staff@acme.test", input=f"{PASSWORD}\nsomething else entirely\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert db.session.scalar(select(User)) is None


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        (["merchants", "create", "--provider", "nope", "Shop"], None,
         "No provider with slug 'nope'."),
        (["providers", "create", "Acme again", "--slug", "acme"], None,
         "A provider with slug 'acme' exists already."),
        (["users", "create", "--provider", "acme", "--role", "merchant_admin", "--password-stdin",
          "m@acme.test"], f"{PASSWORD}\n", "Merchant users need a merchant."),
        (["users", "create", "--provider", "acme", "--merchant", "999", "--role", "merchant_admin",
          "--password-stdin", "m@acme.test"], f"{PASSWORD}\n",
         "Provider 'acme' has no merchant 999."),
        (["users", "create", "--provider", "acme", "--role", "provider_admin", "--password-stdin",
          "a@acme.test"], "short\n", "Passwords need at least 12 characters."),
        (["users", "create", "--provider", "acme", "--role", "provider_admin", "--password-stdin",
          "a@acme.test"], "\n", "--password-stdin: standard input has no password."),
        (["api-keys", "create", "--user", "ghost@acme.test"], None,
         "No user with e-mail 'ghost@acme.test'."),
    ],
)
def test_mistakes_are_reported_without_a_traceback(runner: Any, args: list[str], input: str | None,
                                                   message: str) -> None:
    ok(invoke(runner, "providers", "create", "Acme", "--slug", "acme"))
    result = invoke(runner, *args, input=input)
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output
    assert "Traceback" not in result.output
    assert db.session.scalar(select(User)) is None


# -------------------------------------------------------------------------------------------------
# Encryption keys
# -------------------------------------------------------------------------------------------------


def test_keys_generate_prints_a_fernet_key(runner: Any) -> None:
    key = ok(invoke(runner, "keys", "generate")).output.strip()
    Fernet(key)  # raises if it is not one


@contextmanager
def app_with_keys(app_config: dict[str, object], keys: list[str]) -> Iterator[Flask]:
    """The same database under another ENCRYPTION_KEYS (as after a restart with new settings)."""
    app = create_app({**app_config, "ENCRYPTION_KEYS": keys}, env={},
                     plugins=[("reference", reference_plugin)], load_entry_points=False)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            get_state(app).queue.close()
            db.engine.dispose()


def test_keys_rotate_lets_the_old_key_be_removed(app: Flask, app_config: dict[str, object]) -> None:
    old, new = app.config["ENCRYPTION_KEYS"][0], Fernet.generate_key().decode()
    tenant = make_tenant("acme")
    write_credentials(tenant.store, {"token": "store-token"})
    write_credentials(tenant.warehouse, {"token": "wms-token"})
    db.session.commit()
    store_id, warehouse_id = tenant.store.id, tenant.warehouse.id
    sealed_before = tenant.store.credentials_ciphertext
    db.session.remove()

    with app_with_keys(app_config, [new, old]) as rotating:
        result = ok(invoke(rotating.test_cli_runner(), "keys", "rotate"))
        assert "stores: 1" in result.output and "warehouses: 1" in result.output
        assert "Re-encrypted 2 credential value(s)" in result.output
        assert "store-token" not in result.output

    with app_with_keys(app_config, [new]):
        store = db.session.get(Store, store_id)
        warehouse = db.session.get(Warehouse, warehouse_id)
        assert read_credentials(store) == {"token": "store-token"}
        assert read_credentials(warehouse) == {"token": "wms-token"}
        # Without rotation the old ciphertext would be unreadable now.
        with pytest.raises(SecretError):
            SecretBox([new]).open(sealed_before, store.secret_context())


def test_keys_rotate_changes_nothing_if_a_value_cannot_be_decrypted(
    app: Flask, app_config: dict[str, object],
) -> None:
    tenant = make_tenant("acme")
    write_credentials(tenant.store, {"token": "store-token"})
    db.session.commit()
    sealed = tenant.store.credentials_ciphertext
    db.session.remove()

    with app_with_keys(app_config, [Fernet.generate_key().decode()]) as wrong:
        result = invoke(wrong.test_cli_runner(), "keys", "rotate")
        assert result.exit_code == 1
        assert f"stores row {tenant.store.id}" in result.output
        assert "Nothing was changed" in result.output
        assert db.session.get(Store, tenant.store.id).credentials_ciphertext == sealed


def test_a_ciphertext_copied_to_another_row_does_not_open(app: Flask) -> None:
    tenant = make_tenant("acme")
    other = StoreFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                         with_channels=False)
    write_credentials(tenant.store, {"token": "store-token"})
    other.credentials_ciphertext = tenant.store.credentials_ciphertext
    db.session.commit()
    with pytest.raises(SecretError, match="another record"):
        read_credentials(other)


# -------------------------------------------------------------------------------------------------
# The command without an application, and the job processes
# -------------------------------------------------------------------------------------------------


def _dropstream(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from dropstream.cli import main; main()", *args]
    return subprocess.run(command, env={**os.environ, **env}, cwd=cwd, capture_output=True,
                          text=True, check=False)


def test_help_and_keys_generate_work_before_the_configuration_does(tmp_path: Path) -> None:
    production = {"DROPSTREAM_ENV": "production", "DROPSTREAM_INSTANCE_PATH": str(tmp_path / "i"),
                  "SECRET_KEY": "", "ENCRYPTION_KEYS": ""}
    generated = _dropstream("keys", "generate", env=production, cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    Fernet(generated.stdout.strip())

    shown = _dropstream("--help", env=production, cwd=tmp_path)
    assert shown.returncode == 0
    assert "keys" in shown.stdout and "providers" in shown.stdout
    assert "SECRET_KEY and ENCRYPTION_KEYS are not set" in shown.stderr

    failed = _dropstream("plugins", env=production, cwd=tmp_path)
    assert failed.returncode != 0
    assert "SECRET_KEY and ENCRYPTION_KEYS are not set" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_worker_needs_redis_or_runs_a_burst(app: Flask, runner: Any) -> None:
    result = invoke(runner, "worker", "--burst")
    if app.config["REDIS_URL"]:
        ok(result)
    else:
        assert result.exit_code == 1
        assert "REDIS_URL is not set" in result.output


def test_scheduler_runs_the_scheduler_for_this_app(app: Flask, runner: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Flask] = []
    monkeypatch.setattr("dropstream.jobs.scheduler.run_scheduler", calls.append)
    ok(invoke(runner, "scheduler"))
    assert calls == [app]
