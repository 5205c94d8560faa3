"""Two stock snapshots of one SKU recorded at the same moment (a WMS's push and the stock poll):
the newer one stays, whichever commits last. (Both read the stored level before either wrote;
the older snapshot, judged against the old value, wrote over the newer.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dropstream.connectors.types import StockLevelData, StockSnapshot
from dropstream.extensions import db
from dropstream.inventory import services
from dropstream.inventory.models import StockLevel
from dropstream.stores.models import Store
from tests.pipeline.conftest import Loop, loop  # noqa: F401 - the fixture
from tests.reliability.concurrency import meet, run_at_once


def test_an_older_snapshot_recorded_at_the_same_moment_never_wins(
        app: Any, loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    then = datetime.now(UTC) - timedelta(hours=1)
    first = StockSnapshot((StockLevelData("A", 10, then),), None)
    services.record_stock(db.session, loop.store, first)
    store_id = loop.store.id
    db.session.commit()  # nothing of this session may hold the database while the workers run

    together = threading.Barrier(2, timeout=2)
    read = services._levels_for

    def read_together(session: Any, store: Any, skus: list[str]) -> Any:
        levels = read(session, store, skus)
        meet(together)  # both have read the level
        if threading.current_thread().name == "older":
            time.sleep(0.3)  # and the older snapshot commits last
        return levels

    monkeypatch.setattr(services, "_levels_for", read_together)

    def records(quantity: int, minutes_ago: int) -> Callable[[], None]:
        level = StockLevelData("A", quantity, datetime.now(UTC) - timedelta(minutes=minutes_ago))
        return lambda: services.record_stock(
            db.session, db.session.get(Store, store_id), StockSnapshot((level,), None))

    assert run_at_once(app, [("newer", records(5, 1)), ("older", records(7, 5))]) == []
    db.session.expire_all()
    assert db.session.scalars(select(StockLevel.quantity)).all() == [5]


def test_the_first_snapshots_of_a_new_sku_recorded_at_the_same_moment_both_succeed(
        app: Any, loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A SKU the warehouse reports for the first time, by its push and by the stock poll at
    once (seen in the upstream-faults run, on a warehouse's first minute): both find no stored
    level. The second INSERT used to fail on the unique key, and the push was answered 500.
    Now both succeed, one level is stored, and it holds the newer quantity."""
    store_id = loop.store.id
    db.session.commit()  # nothing of this session may hold the database while the workers run

    together = threading.Barrier(2, timeout=2)
    read = services._levels_for
    first_reads: set[str] = set()

    def read_together(session: Any, store: Any, skus: list[str]) -> Any:
        levels = read(session, store, skus)
        name = threading.current_thread().name
        if name not in first_reads:  # both have looked for the level, and found none
            first_reads.add(name)
            meet(together)
            if name == "older":
                time.sleep(0.3)  # and the older snapshot writes last
        return levels

    monkeypatch.setattr(services, "_levels_for", read_together)

    def records(quantity: int, minutes_ago: int) -> Callable[[], None]:
        as_of = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        level = StockLevelData("NEW-1", quantity, as_of)
        return lambda: services.record_stock(
            db.session, db.session.get(Store, store_id), StockSnapshot((level,), None))

    assert run_at_once(app, [("newer", records(5, 1)), ("older", records(7, 5))]) == []
    db.session.expire_all()
    assert db.session.scalars(select(StockLevel.quantity)).all() == [5]
