"""Re-encrypting every stored credential under the first key (``dropstream keys rotate``)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropstream.extensions import db
from dropstream.security.secrets import SecretBox, SecretError
from dropstream.stores.models import HasCredentials
from dropstream.tenants.scope import unscoped


def credential_models() -> list[type[HasCredentials]]:
    """Every mapped model holding an encrypted credentials blob, plugin models included."""
    models = {mapper.class_ for mapper in db.Model.registry.mappers
              if issubclass(mapper.class_, HasCredentials)}
    return sorted(models, key=lambda model: model.__tablename__)  # type: ignore[attr-defined]


def rotate_credentials(session: Session, box: SecretBox) -> dict[str, int]:
    """Re-encrypt each row's credentials under ``box``'s first key, in the caller's transaction.

    The sealed context (table, tenant, row id) travels inside the token unchanged, so a rotated
    value still opens only in its own row. Returns the number of rows per table.

    :raises SecretError: a value cannot be decrypted with any configured key (the message names
        the row); the caller rolls back so that no row is left half-rotated.
    """
    counts: dict[str, int] = {}
    with unscoped(session):  # system work: every tenant's rows
        for model in credential_models():
            table = model.__tablename__  # type: ignore[attr-defined]
            rows = session.execute(
                select(model.id, model.credentials_ciphertext)  # type: ignore[attr-defined]
                .where(model.credentials_ciphertext.is_not(None))
            ).all()
            changes = []
            for row_id, token in rows:
                if not token:
                    continue
                try:
                    changes.append({"id": row_id, "credentials_ciphertext": box.rotate(token)})
                except SecretError:
                    raise SecretError(
                        f"{table} row {row_id}: its credentials cannot be decrypted with any key "
                        "in ENCRYPTION_KEYS (was a key removed too early?)."
                    ) from None
            if changes:
                session.execute(update(model), changes)
            counts[table] = len(changes)
    return counts
