"""Reading and writing a row's encrypted credentials. The only place that touches plaintext."""

from __future__ import annotations

import hashlib
from itertools import chain
from typing import Any

from sqlalchemy.orm import Session

from dropstream.security.senders import note_change
from dropstream.state import get_state
from dropstream.stores.models import HasCredentials


def write_credentials(row: HasCredentials, values: dict[str, Any]) -> None:
    """Seal ``values`` into ``row`` (which must have its id, so flush a new row first)."""
    if getattr(row, "id", None) is None:
        raise ValueError("flush the row before writing its credentials (the id binds the ciphertext)")
    row.credentials_ciphertext = get_state().secrets.seal(values, row.secret_context())


def read_credentials(row: HasCredentials) -> dict[str, Any]:
    if not row.credentials_ciphertext:
        return {}
    return get_state().secrets.open(row.credentials_ciphertext, row.secret_context())


def credentials_version(row: HasCredentials) -> str:
    """Which credentials ``row`` holds now, without revealing them (a digest of the sealed
    blob, which changes whenever they are written again)."""
    return hashlib.sha256((row.credentials_ciphertext or "").encode()).hexdigest()[:16]


def note_changed_senders(session: Session, flush_context: Any) -> None:
    """``after_flush`` listener: a row holding credentials (a store, a warehouse) was changed
    or deleted, so what inbound routes remember of their senders is forgotten when the
    transaction commits (:mod:`dropstream.security.senders`)."""
    for row in chain(session.deleted, session.dirty):
        if isinstance(row, HasCredentials) and (
            row in session.deleted or session.is_modified(row, include_collections=False)
        ):
            note_change(session)
            return
