"""``keys``: the Fernet keys that encrypt credentials at rest."""

from __future__ import annotations

import click
from cryptography.fernet import Fernet
from flask.cli import AppGroup

from dropstream.extensions import db
from dropstream.security.rotation import rotate_credentials
from dropstream.security.secrets import SecretError
from dropstream.state import get_state

keys = AppGroup("keys", help="Encryption keys for credentials at rest (ENCRYPTION_KEYS).")


@keys.command("generate", with_appcontext=False)
def generate() -> None:
    """Print a new key for ENCRYPTION_KEYS."""
    click.echo(Fernet.generate_key().decode())


@keys.command("rotate")
def rotate() -> None:
    """Re-encrypt every stored credential under the first key of ENCRYPTION_KEYS.

    To replace a key: put a new key first in ENCRYPTION_KEYS and keep the old one after it,
    restart, run this command, then remove the old key. All rows change in one transaction:
    if one cannot be decrypted, nothing changes.
    """
    try:
        counts = rotate_credentials(db.session, get_state().secrets)
    except SecretError as error:
        db.session.rollback()
        raise click.ClickException(f"{error} Nothing was changed.") from None
    db.session.commit()
    for table, count in counts.items():
        click.echo(f"{table}: {count}")
    click.echo(f"Re-encrypted {sum(counts.values())} credential value(s) under the first key.")
