"""Two stock snapshots of one SKU recorded at the same moment (a WMS's push and the stock poll):
the newer one stays, whichever commits last. (Both read the stored level before either wrote;
the older snapshot, judged against the old value, wrote over the newer.)"""

from __future__ import annotations

import threading
import time
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
        try:
            together.wait()  # both have read the level (unless the database made one wait)
        except threading.BrokenBarrierError:
            pass
        if skus and threading.current_thread().name == "older":
            time.sleep(0.3)  # and the older snapshot commits last
        return levels

    monkeypatch.setattr(services, "_levels_for", read_together)
    failures: list[BaseException] = []

    def worker(quantity: int, minutes_ago: int) -> None:
        with app.app_context():
            try:
                store = db.session.get(Store, store_id)
                moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
                level = StockLevelData("A", quantity, moment)
                services.record_stock(db.session, store, StockSnapshot((level,), None))
                db.session.commit()
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(5, 1), name="newer"),
               threading.Thread(target=worker, args=(7, 5), name="older")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert failures == []
    db.session.expire_all()
    assert db.session.scalars(select(StockLevel.quantity)).all() == [5]
