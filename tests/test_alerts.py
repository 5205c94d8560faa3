"""Alerts are grouped: the same problem raised again counts one more occurrence of one alert,
and reopens it once resolved; a raise by another transaction meanwhile is counted too."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropstream.alerts.models import Alert
from dropstream.alerts.services import raise_alert, resolve_alerts
from dropstream.extensions import db
from dropstream.tenants.models import Merchant
from tests.factories import MerchantFactory, ProviderFactory


def _raise(session: Session, merchant: Merchant, message: str = "It failed.") -> Alert:
    return raise_alert(session, provider_id=merchant.provider_id, merchant_id=merchant.id,
                       group_key="store:1:forward_failed", code="forward_failed", message=message)


def test_the_same_problem_raised_again_is_one_alert_counted_and_reopened(app: object) -> None:
    merchant = MerchantFactory(provider_id=ProviderFactory().id)
    _raise(db.session, merchant)
    _raise(db.session, merchant, "It failed again.")
    db.session.commit()
    alert = db.session.scalars(select(Alert)).one()
    assert (alert.occurrences, alert.message) == (2, "It failed again.")

    resolve_alerts(db.session, merchant_id=merchant.id, group_key="store:1:forward_failed")
    _raise(db.session, merchant)
    db.session.commit()
    db.session.refresh(alert)
    assert (alert.occurrences, alert.resolved_at) == (1, None)


@pytest.mark.skipif(not (os.environ.get("DATABASE_URL") or "").startswith("postgres"),
                    reason="on SQLite the first transaction holds the only write lock: no other "
                    "can raise meanwhile (CI's PostgreSQL + Redis run executes this)")
def test_a_raise_by_another_transaction_meanwhile_is_counted(app: object) -> None:
    merchant = MerchantFactory(provider_id=ProviderFactory().id)
    _raise(db.session, merchant)
    db.session.commit()
    seen = db.session.scalars(select(Alert)).one()  # this transaction has read the alert
    assert seen.occurrences == 1

    with Session(db.engine) as other:
        _raise(other, merchant)
        other.commit()

    assert _raise(db.session, merchant).occurrences == 3
    db.session.commit()


@pytest.mark.skipif(not (os.environ.get("DATABASE_URL") or "").startswith("postgres"),
                    reason="on SQLite the first transaction holds the only write lock: no other "
                    "can raise meanwhile (CI's PostgreSQL + Redis run executes this)")
def test_a_new_problem_raised_by_two_transactions_at_once_is_one_alert_counted_twice(
        app: object) -> None:
    """Several workers meeting one new problem at once (a warehouse outage: every forward
    gives up): both look for the alert, find none, and open it. The second used to fail on the
    unique key, and the work that raised it failed with it."""
    import threading

    merchant = MerchantFactory(provider_id=ProviderFactory().id)
    db.session.commit()

    with Session(db.engine) as first:
        _raise(first, merchant, "It failed (first worker).")
        first.flush()  # its row is written, not committed: the second's insert waits for it
        committer = threading.Timer(0.5, first.commit)
        committer.start()
        with Session(db.engine) as second:
            _raise(second, merchant, "It failed (second worker).")
            second.commit()
        committer.join()

    alert = db.session.scalars(select(Alert)).one()
    assert (alert.occurrences, alert.message) == (2, "It failed (second worker).")
