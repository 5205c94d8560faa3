"""Set-up checks: ask a store's (and its warehouse's) connector to check itself."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dropstream.connectors.types import SetupCheck
from dropstream.stores.models import Store


def run_setup_checks(session: Session, store: Store) -> list[SetupCheck]:
    """Run the storefront connector's checks, then the linked warehouse's; record the outcome."""
    raise NotImplementedError
