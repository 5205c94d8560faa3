"""Running a store's set-up checks from the console and keeping the result for the dashboard."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropstream.connectors.types import SetupCheck
from dropstream.console.models import SetupResult
from dropstream.db import utcnow
from dropstream.stores.models import Store
from dropstream.stores.setup import run_setup_checks


def run_and_record(session: Session, store: Store) -> list[SetupCheck]:
    """Run the checks (which may activate a store still setting up) and record them."""
    checks = run_setup_checks(session, store)
    result = session.scalar(select(SetupResult).where(SetupResult.store_id == store.id))
    if result is None:
        result = SetupResult(provider_id=store.provider_id, merchant_id=store.merchant_id,
                             store_id=store.id)
        session.add(result)
    result.checked_at = utcnow()
    result.passed = all(c.passed for c in checks if c.required)
    result.checks = [{**asdict(c), "details": list(c.details)} for c in checks]
    return checks


def last_checks(session: Session, store: Store) -> SetupResult | None:
    return session.scalar(select(SetupResult).where(SetupResult.store_id == store.id))


def details_of(result: SetupResult | None, *words: str) -> list[tuple[dict, list[str]]]:
    """The recorded checks whose key mentions one of ``words``, with their details."""
    if result is None:
        return []
    return [(check, list(check.get("details") or [])) for check in result.checks
            if any(word in check.get("key", "") for word in words)]
