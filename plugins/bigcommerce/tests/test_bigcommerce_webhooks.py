"""The webhook route over real HTTP: deliveries from the sandbox stored once and committed
before the 200; replays, forgeries and malformed bodies refused with a 4xx and no trace; our own
status changes echoing back ignored; a database outage answered 503 so BigCommerce retries."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from bigcommerce_support import add_products, app, sandbox, served, shop, wire
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from tests.conftest import _schema, app_config, database_url
from tests.pipeline.conftest import recorded_rollbacks, recorded_statements

from dropstream.extensions import db
from dropstream.jobs.models import InboxEvent, OutboxItem
from dropstream.jobs.queue import RQQueue
from dropstream.security import senders
from dropstream.state import get_state
from dropstream.testing import plugin as reference_plugin
from dropstream.stores.credentials import read_credentials, write_credentials
from dropstream.stores.models import Store, StoreState
from dropstream.stores.services import delete_store
from dropstream_bigcommerce import plugin as bigcommerce_plugin
from dropstream_bigcommerce.connector import WEBHOOK_SECRET_HEADER
from dropstream_bigcommerce.sandbox.testing import SandboxStore


def _count(model: type) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def wired(app: Any, shop: SandboxStore, served: str) -> Any:
    add_products(shop, ("HOOK-1", "product"))
    return wire(shop)


def _post(
    served: str, body: Any, secret: str | None, raw: bytes | None = None, **extra: str
) -> requests.Response:
    db.session.commit()  # hold no transaction (SQLite's write lock) while DropStream answers
    headers = {"Content-Type": "application/json", **extra}
    if secret is not None:
        headers[WEBHOOK_SECRET_HEADER] = secret
    with requests.post(
        f"{served}/connectors/bigcommerce/webhooks",
        timeout=10,
        headers=headers,
        data=raw if raw is not None else json.dumps(body),
    ) as response:
        response.content  # noqa: B018 - read it all before the connection closes
        return response


def test_a_delivery_is_stored_once_and_queues_one_read(wired: Any, served: str) -> None:
    order_id = wired.shop.sandbox.create_order(wired.shop.hash, lines=[{"sku": "HOOK-1"}])
    wired.deliver_webhooks()

    deliveries = wired.shop.sandbox.webhook_deliveries(wired.shop.hash)
    assert {d["scope"] for d in deliveries} == {"store/order/created", "store/order/statusUpdated"}
    assert all(d["state"] == "delivered" and d["attempts"][-1]["status"] == 200 for d in deliveries)
    assert _count(InboxEvent) == 2
    refreshes = db.session.scalars(
        select(OutboxItem).where(OutboxItem.kind == "order.refresh")
    ).all()
    assert [r.payload["external_id"] for r in refreshes] == [str(order_id)]  # two hints, one read

    # BigCommerce sends the same event again (same hash): acknowledged, nothing new.
    secret = read_credentials(wired.store)["webhook_secret"]
    again = _post(served, deliveries[0]["payload"], secret)
    assert again.status_code == 200 and again.json() == {"received": True, "duplicate": True}
    assert _count(InboxEvent) == 2 and _count(OutboxItem) == 1


def _payload(wired: Any, **change: Any) -> dict[str, Any]:
    return {
        "scope": "store/order/statusUpdated",
        "store_id": "1001",
        "data": {
            "type": "order",
            "id": 42,
            "status": {"previous_status_id": 0, "new_status_id": 11},
        },
        "hash": "0f1e2d3c4b5a69788796a5b4c3d2e1f001234567",
        "created_at": 1561479335,
        "producer": f"stores/{wired.shop.hash}",
        **change,
    }


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("no secret", 401),
        ("wrong secret", 401),
        ("another store's producer", 401),
        ("not json", 400),
        ("a list", 400),
        ("no hash", 400),
        ("no producer", 400),
        ("bad producer", 400),
        ("order id not a number", 400),
        ("too big", 413),
        ("bad signature", 401),
    ],
)
def test_forged_or_malformed_deliveries_are_refused_without_a_trace(
    wired: Any, served: str, case: str, status: int
) -> None:
    secret = read_credentials(wired.store)["webhook_secret"]
    body: Any = _payload(wired)
    raw = None
    if case == "no secret":
        secret = None
    elif case == "wrong secret":
        secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    elif case == "another store's producer":
        body = _payload(wired, producer="stores/someoneelse")
    elif case == "not json":
        raw = b"{scope: store/order/created"
    elif case == "a list":
        body = [body]
    elif case == "no hash":
        body.pop("hash")
    elif case == "no producer":
        body.pop("producer")
    elif case == "bad producer":
        body["producer"] = "stores/../../admin"
    elif case == "order id not a number":
        body["data"]["id"] = "42 OR 1=1"
    elif case == "too big":
        body["padding"] = "x" * 70_000
    extra = {}
    if case == "bad signature":  # the right secret header, but a signature that does not verify
        extra = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,AAAA",
        }
    answer = _post(served, body, secret, raw, **extra)
    assert answer.status_code == status, answer.text
    assert "error" in answer.json() and secret not in answer.text if secret else True
    assert _count(InboxEvent) == 0 and _count(OutboxItem) == 0


def test_status_changes_dropstream_does_not_import_at_are_acknowledged_and_dropped(
    wired: Any, served: str
) -> None:
    secret = read_credentials(wired.store)["webhook_secret"]
    echo = _payload(
        wired,
        data={"type": "order", "id": 42, "status": {"previous_status_id": 11, "new_status_id": 9}},
    )
    with recorded_rollbacks() as rollbacks:
        answer = _post(served, echo, secret)
    assert answer.status_code == 200 and answer.json()["received"] is False
    # Ended with a commit: a rollback would make psycopg forget the statements it prepared on
    # the connection, and about half of a store's deliveries are such echoes.
    assert rollbacks == []
    cancelled = _payload(
        wired,
        hash="feedfacefeedface",
        data={"type": "order", "id": 42, "status": {"previous_status_id": 9, "new_status_id": 5}},
    )
    assert _post(served, cancelled, secret).json()["received"] is True  # a cancellation matters
    assert _count(InboxEvent) == 1


def _echo(wired: Any, n: int) -> dict[str, Any]:
    status = {"previous_status_id": 11, "new_status_id": 9}
    return _payload(wired, hash=f"echo{n:04d}", data={"type": "order", "id": 42, "status": status})


def test_a_known_store_s_echoes_cost_no_database_work_and_are_still_checked(
    wired: Any, served: str
) -> None:
    secret = read_credentials(wired.store)["webhook_secret"]
    assert _post(served, _echo(wired, 1), secret).status_code == 200  # the store is looked up
    with recorded_statements() as statements:
        answer = _post(served, _echo(wired, 2), secret)
        forged = _post(served, _echo(wired, 3), secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert answer.status_code == 200 and answer.json()["received"] is False
    assert forged.status_code == 401  # remembered or not, the secret must match
    # The echo ran no statement at all; the forgery made DropStream look the store up again
    # (its secret might have been replaced), and only that.
    assert len([s for s in statements if s.startswith("SELECT")]) == 1, statements
    assert not [s for s in statements if s.startswith(("INSERT", "UPDATE"))]


def test_a_store_s_new_secret_works_at_once_and_the_old_one_is_then_refused(
    wired: Any, served: str
) -> None:
    old = read_credentials(wired.store)["webhook_secret"]
    assert _post(served, _echo(wired, 1), old).status_code == 200  # remembered with the old one
    new = "n" * 43
    write_credentials(wired.store, {**read_credentials(wired.store), "webhook_secret": new})
    db.session.commit()

    assert _post(served, _payload(wired), new).json() == {"received": True, "duplicate": False}
    assert _post(served, _echo(wired, 2), old).status_code == 401
    assert _count(InboxEvent) == 1


def test_a_deleted_store_s_deliveries_are_refused_at_once(wired: Any, served: str) -> None:
    secret = read_credentials(wired.store)["webhook_secret"]
    assert _post(served, _echo(wired, 1), secret).status_code == 200  # remembered
    store = db.session.get(Store, wired.store.id)
    store.state = StoreState.PAUSED
    delete_store(db.session, store)
    db.session.commit()

    assert _post(served, _echo(wired, 2), secret).status_code == 401
    assert _post(served, _payload(wired), secret).status_code == 401
    assert _count(InboxEvent) == 0 and _count(OutboxItem) == 0


def test_a_newly_monitored_status_is_imported_at_once(wired: Any, served: str) -> None:
    secret = read_credentials(wired.store)["webhook_secret"]
    at_nine = {"type": "order", "id": 42, "status": {"previous_status_id": 11, "new_status_id": 9}}
    assert _post(served, _payload(wired, data=at_nine), secret).json()["received"] is False
    store = db.session.get(Store, wired.store.id)
    store.settings = {**store.settings, "monitored_status_id": 9}
    db.session.commit()

    again = _payload(wired, data=at_nine, hash="another-delivery")
    assert _post(served, again, secret).json() == {"received": True, "duplicate": False}


def test_without_word_of_changes_every_delivery_is_checked_against_the_database(
    wired: Any, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis down: whether a store changed cannot be known, so nothing remembered is trusted."""
    monkeypatch.setattr(senders.Generation, "current", lambda self: None)
    secret = read_credentials(wired.store)["webhook_secret"]
    assert _post(served, _echo(wired, 1), secret).status_code == 200
    with recorded_statements() as statements:
        assert _post(served, _echo(wired, 2), secret).status_code == 200
    assert len([s for s in statements if "FROM stores" in s]) == 1


def test_every_process_forgets_a_store_whose_secret_was_replaced(
    app: Any, app_config: dict[str, object], wired: Any, served: str
) -> None:
    """Two web processes (here two apps on the same database and Redis): the one that did not
    make the change forgets what it remembered as soon as the change commits."""
    from tests.conftest import live_server, running_app

    if not isinstance(get_state(app).queue, RQQueue):
        pytest.skip("without Redis DropStream is one process (CI's PostgreSQL + Redis run "
                    "executes this)")
    old = read_credentials(wired.store)["webhook_secret"]
    plugins = [("reference", reference_plugin), ("bigcommerce", bigcommerce_plugin)]
    with running_app(app_config, empty=False, plugins=plugins) as other, live_server(
        other
    ) as there:
        assert _post(there, _echo(wired, 1), old).status_code == 200  # remembered there
        with app.app_context():
            store = db.session.get(Store, wired.store.id)
            write_credentials(store, {**read_credentials(store), "webhook_secret": "n" * 43})
            db.session.commit()
        assert _post(there, _echo(wired, 2), old).status_code == 401


def test_a_database_outage_is_a_503_so_bigcommerce_retries(
    wired: Any, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError("INSERT INTO inbox", {}, Exception("server closed the connection"))

    monkeypatch.setattr("dropstream_bigcommerce.webhooks.receive_order_hint", unavailable)
    secret = read_credentials(wired.store)["webhook_secret"]
    answer = _post(served, _payload(wired), secret)
    assert answer.status_code == 503 and "retry" in answer.json()["error"]
    monkeypatch.undo()
    assert _post(served, _payload(wired), secret).status_code == 200  # the retry gets in
    assert _count(InboxEvent) == 1
