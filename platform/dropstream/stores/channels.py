"""Running a store's channels: on schedule, now, paused and resumed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dropstream.stores.models import Store, StoreChannel


def run_now(session: Session, channel: StoreChannel, full: bool = False) -> None:
    """Queue a run of ``channel`` now (``full``: inventory full sync / orders backfill)."""
    raise NotImplementedError


def set_channel(session: Session, channel: StoreChannel, *, enabled: bool | None = None,
                paused: bool | None = None, interval_seconds: int | None = None) -> StoreChannel:
    raise NotImplementedError


def pause_store(session: Session, store: Store, reason: str) -> None:
    raise NotImplementedError


def resume_store(session: Session, store: Store) -> None:
    raise NotImplementedError
