"""Raising alerts (grouped, counted) and resolving them when their cause is fixed."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dropstream.alerts.models import Alert
from dropstream.db import insert_unless_conflict, utcnow


def raise_alert(
    session: Session, *, provider_id: int, merchant_id: int, group_key: str, code: str,
    message: str, store_id: int | None = None, order_id: int | None = None,
    severity: str = "error",
) -> Alert:
    """Open (or re-open and count) the alert for ``group_key``."""
    now = utcnow()
    alert = _locked(session, merchant_id, group_key)
    if alert is None:
        # Inserted unless another transaction opened the same alert at this moment (several
        # workers meeting one problem at once): that one is then counted, as any open alert.
        insert = insert_unless_conflict(session, Alert, ("merchant_id", "group_key"))
        opened = session.execute(insert, dict(
            provider_id=provider_id, merchant_id=merchant_id, group_key=group_key, code=code,
            message=message, store_id=store_id, order_id=order_id, severity=severity,
            occurrences=1, first_seen_at=now, last_seen_at=now)).first()
        if opened is not None:
            _alert_opened(session, provider_id, merchant_id)
            return session.get(Alert, opened.id)
        alert = _locked(session, merchant_id, group_key)
    if alert.resolved_at is not None:
        alert.resolved_at = None
        alert.first_seen_at = now
        alert.occurrences = 0
        alert.notified_at = None
        _alert_opened(session, provider_id, merchant_id)
    alert.occurrences += 1
    alert.last_seen_at = now
    alert.message = message
    alert.order_id = order_id or alert.order_id
    return alert


def _locked(session: Session, merchant_id: int, group_key: str) -> Alert | None:
    # Locked and read fresh: the session may hold the alert as it was before another
    # transaction counted it, or before a resolve (an UPDATE the session's copy never saw).
    return session.scalar(
        select(Alert).where(Alert.merchant_id == merchant_id, Alert.group_key == group_key)
        .with_for_update().execution_options(populate_existing=True)
    )


def resolve_alerts(session: Session, *, merchant_id: int, group_key: str | None = None,
                   prefix: str | None = None) -> int:
    """Resolve the open alert(s) for a key (or every key starting with ``prefix``)."""
    condition = Alert.group_key == group_key if group_key is not None else Alert.group_key.startswith(prefix or "")
    return session.execute(
        update(Alert)
        .where(Alert.merchant_id == merchant_id, Alert.resolved_at.is_(None), condition)
        .values(resolved_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def _alert_opened(session: Session, provider_id: int, merchant_id: int) -> None:
    # People who asked for alert e-mails get one digest per batch (the console owns them).
    from dropstream.console.digest import schedule_digest

    schedule_digest(session, provider_id, merchant_id)
