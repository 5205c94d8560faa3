"""S2, key rotation at scale: with 200 stores and warehouses holding encrypted credentials (some
written under the old key, some after the new key was put first), ``dropstream keys rotate``
re-encrypts every one; with the old key then removed from ``ENCRYPTION_KEYS`` everything still
decrypts, and no value anywhere in the database is still encrypted under the old key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text

from dropstream.cli import cli
from dropstream.extensions import db
from dropstream.security.secrets import SecretError
from dropstream.stores.credentials import read_credentials, write_credentials
from dropstream.stores.models import Store, Warehouse
from dropstream.tenants.scope import unscoped
from tests.factories import MerchantFactory, ProviderFactory, StoreFactory, WarehouseFactory
from tests.security.conftest import running_app

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
PER_KIND = 100  # stores, and warehouses
LATE = 10  # rows written after the restart with the new key first, before the rotation
#: A Fernet token: version byte 0x80 and a timestamp's high bytes, base64url (``gAAAAA``…).
FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-]{40,}={0,2}")


def keyed_app(app_config: dict[str, object], keys: list[str], *, empty: bool = False) -> Any:
    """The database under ``ENCRYPTION_KEYS = keys`` (a restart with new settings)."""
    return running_app({**app_config, "ENCRYPTION_KEYS": keys}, empty=empty)


def _credentials(kind: str, index: int) -> dict[str, str]:
    if kind == "store":
        return {
            "store_hash": f"s{index}",
            "access_token": f"token-{kind}-{index}",
            "client_secret": f"secret-{kind}-{index}",
            "webhook_secret": f"hook-{index}",
        }
    return {
        "token": f"token-{kind}-{index}",
        "inbound_key": f"inbound-{index}",
        "signing_secret": f"signing-{index}",
    }


def _make_rows(count: int, start: int = 0) -> dict[tuple[str, int], dict[str, str]]:
    provider = ProviderFactory()
    merchant = MerchantFactory(provider_id=provider.id)
    written: dict[tuple[str, int], dict[str, str]] = {}
    for index in range(start, start + count):
        warehouse = WarehouseFactory(
            provider_id=provider.id, connector_id="wms_generic" if index % 2 else "reference-wms"
        )
        store = StoreFactory(
            provider_id=provider.id,
            merchant_id=merchant.id,
            warehouse_id=warehouse.id,
            connector_id="bigcommerce" if index % 2 else "reference-store",
            with_channels=False,
        )
        for row, kind in ((store, "store"), (warehouse, "warehouse")):
            write_credentials(row, _credentials(kind, index))
            written[(kind, row.id)] = _credentials(kind, index)
    db.session.commit()
    return written


def _fernet_tokens() -> list[tuple[str, str, str]]:
    """Every Fernet token anywhere in the database — any column of any table, JSON included:
    (table, column, token). Read raw, without the models' types."""
    found = []
    for table in db.metadata.sorted_tables:
        result = db.session.execute(text(f'SELECT * FROM "{table.name}"'))
        for row in result.mappings():
            for column, value in row.items():
                rendered = value if isinstance(value, str) else json.dumps(value, default=str)
                found += [(table.name, column, token) for token in FERNET_TOKEN.findall(rendered)]
    db.session.rollback()
    return found


def test_rotation_re_encrypts_everything_and_the_old_key_can_go(
    app_config: dict[str, object],
) -> None:
    with keyed_app(app_config, [OLD], empty=True):
        written = _make_rows(PER_KIND - LATE)

    with keyed_app(app_config, [NEW, OLD]) as rotating:
        written |= _make_rows(LATE, start=PER_KIND)  # new writes use the new key at once
        result = rotating.test_cli_runner().invoke(
            cli, ["keys", "rotate"]
        )  # `dropstream keys rotate`
        assert result.exit_code == 0, result.output
        assert f"stores: {PER_KIND}" in result.output and f"warehouses: {PER_KIND}" in result.output
        assert f"Re-encrypted {2 * PER_KIND} credential value(s)" in result.output
        assert "token-" not in result.output and "secret-" not in result.output

    with keyed_app(app_config, [NEW]):
        with unscoped(db.session):
            rows = [*db.session.scalars(select(Store)), *db.session.scalars(select(Warehouse))]
            opened = {
                (("store" if isinstance(row, Store) else "warehouse"), row.id): read_credentials(
                    row
                )
                for row in rows
            }
        assert opened == written and len(opened) == 2 * PER_KIND
        tokens = _fernet_tokens()
        assert len(tokens) == 2 * PER_KIND
        assert {(table, column) for table, column, _ in tokens} == {
            ("stores", "credentials_ciphertext"),
            ("warehouses", "credentials_ciphertext"),
        }
        old, new = Fernet(OLD.encode()), Fernet(NEW.encode())
        for table, column, token in tokens:
            new.decrypt(token.encode())
            with pytest.raises(InvalidToken):
                old.decrypt(token.encode())
        # Rotated values are still bound to their rows: one copied elsewhere does not open.
        first, second = rows[0], rows[1]
        first.credentials_ciphertext = second.credentials_ciphertext
        with pytest.raises(SecretError, match="another record"):
            read_credentials(first)
        db.session.rollback()
