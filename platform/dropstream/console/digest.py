"""Alert digests by e-mail: one message per batch of new alerts, never one per order.

When an alert opens (or opens again), :func:`schedule_digest` asks for a digest of that
merchant's alerts ``CONSOLE_DIGEST_MINUTES`` later, as outbox work in the same transaction.
The outbox's de-duplication makes every other alert opening meanwhile join the same pending
digest, so a burst of held orders becomes one e-mail. The digest goes to the users who asked
for it (:class:`~dropstream.console.models.AlertDigestPreference`): the merchant's own users and
the provider's staff.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, has_app_context
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dropstream.alerts.models import Alert
from dropstream.console.mail import send_mail
from dropstream.console.models import AlertDigestPreference
from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import LeasedWork
from dropstream.jobs.outbox import add_work
from dropstream.stores.models import Store
from dropstream.tenants.models import Merchant, User

DEFAULT_MINUTES = 10
MAX_LISTED = 50


def _subscribers(session: Session, provider_id: int, merchant_id: int) -> list[User]:
    return list(session.scalars(
        select(User).join(AlertDigestPreference, AlertDigestPreference.user_id == User.id)
        .where(AlertDigestPreference.enabled.is_(True), User.is_active.is_(True),
               User.provider_id == provider_id,
               or_(User.merchant_id.is_(None), User.merchant_id == merchant_id))))


def schedule_digest(session: Session, provider_id: int, merchant_id: int) -> None:
    """An alert of ``merchant_id`` opened: make sure a digest is on its way (if anyone wants one)."""
    if not _subscribers(session, provider_id, merchant_id):
        return
    minutes = DEFAULT_MINUTES
    if has_app_context():
        minutes = int(current_app.config.get("CONSOLE_DIGEST_MINUTES", DEFAULT_MINUTES))
    add_work(session, kind="alerts.digest", merchant_id=merchant_id, provider_id=provider_id,
             dedupe_key=f"alerts.digest:{merchant_id}", delay=timedelta(minutes=minutes))


def send_digest_job(item: LeasedWork) -> None:
    """Outbox handler ``alerts.digest``: e-mail the merchant's not-yet-notified open alerts."""
    session = db.session
    alerts = list(session.scalars(select(Alert).where(
        Alert.merchant_id == item.merchant_id, Alert.resolved_at.is_(None),
        Alert.notified_at.is_(None)).order_by(Alert.store_id, Alert.last_seen_at)))
    recipients = _subscribers(session, item.provider_id, item.merchant_id)
    if not alerts or not recipients:
        return
    merchant = session.get(Merchant, item.merchant_id)
    stores = {s.id: s.name for s in session.scalars(select(Store).where(Store.merchant_id == item.merchant_id))}
    lines = [f"{len(alerts)} new alert{'s' if len(alerts) != 1 else ''} for {merchant.name if merchant else 'a merchant'}:", ""]
    for alert in alerts[:MAX_LISTED]:
        where = stores.get(alert.store_id, "")
        lines.append(f"- [{alert.code}] {where + ': ' if where else ''}{alert.message} (x{alert.occurrences})")
    if len(alerts) > MAX_LISTED:
        lines.append(f"... and {len(alerts) - MAX_LISTED} more.")
    base = current_app.config.get("PUBLIC_BASE_URL", "").rstrip("/")
    lines += ["", f"Review them: {base}/console/alerts", "",
              "You get this because you asked for alert e-mails (My account in the console)."]
    # A mail failure raises: the runner retries the digest with backoff, nothing is marked sent.
    sent = send_mail([user.email for user in recipients], "DropStream: new alerts", "\n".join(lines))
    if not sent:
        return  # no mail server configured: the alerts stay unnotified, visible in the console
    now = utcnow()
    for alert in alerts:
        alert.notified_at = now
    for preference in session.scalars(select(AlertDigestPreference).where(
            AlertDigestPreference.user_id.in_([u.id for u in recipients]))):
        preference.last_sent_at = now


__all__ = ["schedule_digest", "send_digest_job"]
