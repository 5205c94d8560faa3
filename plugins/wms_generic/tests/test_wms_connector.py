"""The generic WMS connector against its sandbox, over real HTTP: the connector contract suite,
then what the contract leaves to each connector (auth modes, look-before-create, typed errors,
paging, refusals naming the field)."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.conftest import _schema, app_config, database_url
from wms_support import ACCOUNT, TOKEN, app, connector, wms

from dropstream.connectors.base import (
    AuthError,
    RejectedError,
    TransientError,
    means_unreachable,
)
from dropstream.connectors.types import Address, CancelOutcome, WarehouseLine, WarehouseOrder
from dropstream.testing.contract import WarehouseContract
from dropstream_wms_generic.connector import GenericWmsConnector
from dropstream_wms_generic.sandbox import WmsSandbox


class Harness:
    def __init__(self, sandbox: WmsSandbox) -> None:
        self.sandbox = sandbox

    def connector(self) -> GenericWmsConnector:
        return connector(self.sandbox)

    def connector_with_bad_credentials(self) -> GenericWmsConnector:
        return connector(self.sandbox, {"token": "not-the-token"})

    def connector_taking_batches(self) -> GenericWmsConnector:
        return connector(self.sandbox, batch_create=True)

    def ship(self, reference: str) -> None:
        self.sandbox.ship(reference)

    def set_stock(self, sku: str, quantity: int) -> None:
        self.sandbox.set_stock(ACCOUNT, {sku: quantity})

    def orders_with_reference(self, reference: str) -> int:
        return len(self.sandbox.orders(reference=reference))

    def inject_transient_failure(self) -> None:
        self.sandbox.inject("error", status=503)


class TestGenericWmsContract(WarehouseContract):
    @pytest.fixture
    def harness(self, app: Any, wms: WmsSandbox) -> Harness:
        return Harness(wms)


def order(reference: str, *skus: str, ship_code: str = "GRND") -> WarehouseOrder:
    return WarehouseOrder(
        reference=reference,
        order_number=reference,
        placed_at=datetime.now(UTC),
        ship_to=Address(
            name="Ada Lovelace",
            street1="12 Analytical Row",
            city="London",
            postal_code="N1 9GU",
            country_code="GB",
        ),
        ship_code=ship_code,
        lines=tuple(
            WarehouseLine(str(n), sku, 2, sku) for n, sku in enumerate(skus or ("WH-1",), 1)
        ),
    )


# ------------------------------------------------------------------------------------------------
# Auth towards the WMS
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "credentials"),
    [
        ({"auth_mode": "bearer"}, {"token": TOKEN}),
        ({"auth_mode": "basic"}, {"username": "dropstream", "password": "wms-password"}),
        ({"auth_mode": "api_key", "api_key_header": "X-Wms-Key"}, {"api_key": "wms-api-key"}),
    ],
)
def test_each_auth_mode_is_accepted_and_a_wrong_secret_is_an_auth_error(
    app: Any, wms: WmsSandbox, settings: dict[str, str], credentials: dict[str, str]
) -> None:
    wms.set_credentials(api_key_header="X-Wms-Key")
    assert connector(wms, credentials, **settings).forward_order(order("AUTH-1")).created
    wrong = {key: value + "-wrong" for key, value in credentials.items()}
    with pytest.raises(AuthError) as refused:
        connector(wms, wrong, **settings).fetch_shipments(None)
    assert "-wrong" not in refused.value.message


# ------------------------------------------------------------------------------------------------
# Exactly one warehouse order per reference
# ------------------------------------------------------------------------------------------------


def test_a_wms_that_does_not_deduplicate_is_asked_before_every_create(
    app: Any, wms: WmsSandbox
) -> None:
    wms.configure(dedupe=False)
    wms_connector = connector(wms, dedupes_references=False)

    first = wms_connector.forward_order(order("NODEDUPE-1"))
    again = wms_connector.forward_order(order("NODEDUPE-1"))

    assert (first.created, again.created) == (True, False)
    assert again.warehouse_order_id == first.warehouse_order_id
    assert len(wms.orders(reference="NODEDUPE-1")) == 1
    assert [r["operation"] for r in wms.requests()] == [
        "find_orders",
        "create_order",
        "find_orders",
    ]


def test_a_lost_reply_is_looked_up_instead_of_failing(app: Any, wms: WmsSandbox) -> None:
    wms.configure(dedupe=False)
    wms.inject("lose_reply", on="create_order")

    ack = connector(wms, dedupes_references=False).forward_order(order("LOST-1"))

    assert (
        ack.created is False and ack.warehouse_order_id == wms.orders(reference="LOST-1")[0]["id"]
    )
    assert len(wms.orders(reference="LOST-1")) == 1


def test_when_the_lookup_fails_too_the_retry_finds_the_order(app: Any, wms: WmsSandbox) -> None:
    wms.inject("lose_reply", on="create_order")
    wms.inject("error", on="find_orders", status=502)
    wms_connector = connector(wms)

    with pytest.raises(TransientError):
        wms_connector.forward_order(order("LOST-2"))
    retried = wms_connector.forward_order(order("LOST-2"))

    assert retried.created is False
    assert len(wms.orders(reference="LOST-2")) == 1


# ------------------------------------------------------------------------------------------------
# Typed errors
# ------------------------------------------------------------------------------------------------


def test_a_refusal_carries_the_wms_code_and_field(app: Any, wms: WmsSandbox) -> None:
    wms.configure(strict_skus=True)
    wms.set_stock(ACCOUNT, {"KNOWN": 5})
    with pytest.raises(RejectedError) as unknown:
        connector(wms).forward_order(order("REJ-1", "KNOWN", "NOPE"))
    assert (unknown.value.code, unknown.value.field) == ("unknown_sku", "lines[1].sku")
    assert "NOPE" in unknown.value.message

    with pytest.raises(RejectedError) as method:
        connector(wms).forward_order(order("REJ-2", "KNOWN", ship_code="TELEPORT"))
    assert (method.value.code, method.value.field) == ("unknown_ship_method", "ship_method")
    assert wms.orders() == []


def test_an_order_the_protocol_cannot_carry_is_refused_before_any_call(
    app: Any, wms: WmsSandbox
) -> None:
    bad = order("BAD-1")
    bad = WarehouseOrder(
        **{**bad.__dict__, "ship_to": Address(name="", street1="x", city="y", country_code="GB")}
    )
    with pytest.raises(RejectedError) as refused:
        connector(wms).forward_order(bad)
    assert refused.value.field == "ship_to.name"
    assert wms.requests() == []


def test_no_account_is_a_refusal_naming_the_store_setting(app: Any, wms: WmsSandbox) -> None:
    with pytest.raises(RejectedError) as refused:
        connector(wms, default_account="").forward_order(order("NOACC-1"))
    assert refused.value.field == "warehouse_account.customer_code"


@pytest.mark.parametrize(
    ("fault", "expected", "unreachable"),
    [
        ({"kind": "error", "status": 503, "retry_after": 42}, "answered 503", True),
        ({"kind": "error", "status": 429, "retry_after": 7}, "answered 429", False),
        ({"kind": "drop"}, "connection failed", True),
        ({"kind": "garbage"}, "not JSON", False),
    ],
)
def test_outages_are_transient_and_honour_retry_after(
    app: Any, wms: WmsSandbox, fault: dict[str, Any], expected: str, unreachable: bool
) -> None:
    """Transient, each; and only a WMS that is down or cannot be reached counts as an outage
    that orders wait out (a rate limit or a broken reply does not)."""
    wms.inject(**fault)
    with pytest.raises(TransientError) as failed:
        connector(wms).fetch_shipments(None)
    assert expected in failed.value.message
    assert failed.value.retry_after == fault.get("retry_after")
    assert means_unreachable(failed.value) is unreachable


def test_slowness_past_the_timeout_is_transient(app: Any, wms: WmsSandbox) -> None:
    wms.inject("slow", seconds=1.5)
    with pytest.raises(TransientError) as failed:
        connector(wms, timeout_seconds=1).ship_methods()
    assert failed.value.code == "timeout" and means_unreachable(failed.value)


def test_an_outage_window_refuses_everything_until_it_ends(app: Any, wms: WmsSandbox) -> None:
    wms.outage(60)
    for call in (lambda c: c.ship_methods(), lambda c: c.fetch_inventory(None, full=True)):
        with pytest.raises(TransientError):
            call(connector(wms))
    wms.outage(0)
    assert connector(wms).ship_methods()


def test_a_reply_that_breaks_the_schema_is_transient_and_says_where(
    app: Any, wms: WmsSandbox
) -> None:
    wms.set_ship_methods([{"code": "GRND"}])
    with wms.state.lock:
        wms.state.ship_methods[0]["code"] = ""  # a WMS bug: an empty code
    with pytest.raises(TransientError) as failed:
        connector(wms).ship_methods()
    assert "items[0].code" in failed.value.message and failed.value.code == "malformed_response"


# ------------------------------------------------------------------------------------------------
# Feeds: shipments and stock, paged; cancellation; the catalogue
# ------------------------------------------------------------------------------------------------


def test_shipments_are_read_page_by_page_and_only_for_the_account(
    app: Any, wms: WmsSandbox
) -> None:
    wms.add_account("OTHER")
    for n in range(5):
        connector(wms).forward_order(order(f"PAGE-{n}"))
        wms.ship(f"PAGE-{n}")
    connector(wms, default_account="OTHER").forward_order(order("NOT-MINE"))
    wms.ship("NOT-MINE")
    wms_connector = connector(wms, shipments_page_size=2)

    seen, cursor, pages = [], None, 0
    while True:
        page = wms_connector.fetch_shipments(cursor)
        seen += [s.order_reference for s in page.shipments]
        cursor, pages = page.cursor, pages + 1
        if not page.more:
            break
    assert seen == [f"PAGE-{n}" for n in range(5)] and pages == 3
    assert wms_connector.fetch_shipments(cursor).shipments == ()


def test_stock_full_snapshot_pages_then_changes_since_the_snapshot(
    app: Any, wms: WmsSandbox
) -> None:
    wms.set_stock(ACCOUNT, {f"SKU-{n}": n for n in range(5)})
    wms_connector = connector(wms, stock_page_size=2)

    levels, cursor = {}, None
    snapshot = wms_connector.fetch_inventory(None, full=True)
    while True:
        levels.update({level.sku: level.quantity for level in snapshot.levels})
        cursor = snapshot.cursor
        if not snapshot.more:
            break
        snapshot = wms_connector.fetch_inventory(cursor, full=True)
    assert levels == {f"SKU-{n}": n for n in range(5)} and snapshot.complete

    wms.set_stock(ACCOUNT, {"SKU-3": 30})
    changes = wms_connector.fetch_inventory(cursor)
    assert [(l.sku, l.quantity) for l in changes.levels] == [("SKU-3", 30)] and not changes.complete
    assert wms_connector.fetch_inventory(changes.cursor).levels == ()


def test_cancel_finds_the_order_by_reference_and_reports_each_outcome(
    app: Any, wms: WmsSandbox
) -> None:
    wms_connector = connector(wms)
    assert wms_connector.cancel_order("NEVER-SENT", None) is CancelOutcome.NOT_FOUND
    wms_connector.forward_order(order("CANCEL-1"))
    assert wms_connector.cancel_order("CANCEL-1", None) is CancelOutcome.CANCELLED
    assert wms.orders(reference="CANCEL-1")[0]["status"] == "cancelled"
    assert wms_connector.cancel_order("CANCEL-1", "WO-999999") is CancelOutcome.NOT_FOUND


def test_ship_methods_come_from_the_wms_or_from_the_saved_catalogue(
    app: Any, wms: WmsSandbox
) -> None:
    codes = [m.code for m in connector(wms).ship_methods()]
    assert "GRND" in codes and "DHL_EXPRESS" in codes
    saved = connector(
        wms,
        ship_methods_endpoint=False,
        ship_methods=[{"code": "PALLET", "name": "Pallet freight", "carrier": "XPO"}],
    )
    assert [(m.code, m.carrier) for m in saved.ship_methods()] == [("PALLET", "XPO")]
    assert [r["operation"] for r in wms.requests()] == ["ship_methods"]


def test_setup_checks_name_the_unknown_account(app: Any, wms: WmsSandbox) -> None:
    checks = {c.key: c for c in connector(wms, default_account="GHOST").setup_checks()}
    assert checks["credentials"].passed
    assert not checks["account"].passed and "customer_code" in checks["account"].fix


@pytest.mark.parametrize("status", [422, 503])
def test_a_wms_that_echoes_the_credential_never_gets_it_into_an_error(
    app: Any, wms: WmsSandbox, status: int
) -> None:
    wms.inject("error", status=status, on="create_order", message=f"bad request from {TOKEN}")
    with pytest.raises((RejectedError, TransientError)) as failed:
        connector(wms).forward_order(order("ECHO-1"))
    assert TOKEN not in failed.value.message and "[redacted]" in failed.value.message


# ------------------------------------------------------------------------------------------------
# Batches (POST /v1/orders/batch)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "limit"),
    [
        ({}, 1),
        ({"batch_create": True}, 100),
        # A lost batch reply is made good by sending each order again: only where a repeated
        # reference returns the order made.
        ({"batch_create": True, "dedupes_references": False}, 1),
    ],
)
def test_batches_are_used_only_where_the_warehouse_says_it_takes_them(
    app: Any, wms: WmsSandbox, settings: dict[str, Any], limit: int
) -> None:
    assert connector(wms, **settings).forward_batch_limit() == limit


def test_a_batch_answers_each_order_as_a_create_of_it_alone_would(
    app: Any, wms: WmsSandbox
) -> None:
    wms.configure(strict_skus=True)
    wms.set_stock(ACCOUNT, {"KNOWN": 5})
    batches = connector(wms, batch_create=True)
    earlier = batches.forward_order(order("BATCH-1", "KNOWN"))
    invalid = order("BATCH-5", "KNOWN")
    invalid = WarehouseOrder(
        **{**invalid.__dict__, "ship_to": Address(name="", street1="x", city="y", country_code="GB")}
    )

    results = batches.forward_orders(
        [
            order("BATCH-1", "KNOWN"),
            order("BATCH-2", "KNOWN"),
            order("BATCH-3", "KNOWN", "NOPE"),
            order("BATCH-4", "KNOWN", ship_code="TELEPORT"),
            invalid,
        ]
    )

    again, made, unknown_sku, unknown_method, unsendable = results
    assert (again.created, again.warehouse_order_id) == (False, earlier.warehouse_order_id)
    assert made.created and made.warehouse_order_id == wms.orders(reference="BATCH-2")[0]["id"]
    assert isinstance(unknown_sku, RejectedError) and isinstance(unknown_method, RejectedError)
    assert (unknown_sku.code, unknown_sku.field) == ("unknown_sku", "lines[1].sku")
    assert "NOPE" in unknown_sku.message
    assert (unknown_method.code, unknown_method.field) == ("unknown_ship_method", "ship_method")
    assert isinstance(unsendable, RejectedError) and unsendable.field == "ship_to.name"
    assert sorted(o["reference"] for o in wms.orders()) == ["BATCH-1", "BATCH-2"]
    creates = wms.requests("create_orders")
    assert len(creates) == 1  # the invalid order never left DropStream
    assert [reference for _, reference in creates[0]["orders"]] == [
        "BATCH-1", "BATCH-2", "BATCH-3", "BATCH-4"]


def test_a_lost_batch_reply_fails_the_batch_and_sending_it_again_makes_nothing_twice(
    app: Any, wms: WmsSandbox
) -> None:
    batches = connector(wms, batch_create=True)
    wms.inject("lose_reply", on="create_orders")
    with pytest.raises(TransientError):
        batches.forward_orders([order("LOSTB-1"), order("LOSTB-2")])
    assert len(wms.orders()) == 2  # the WMS made them; DropStream could not see it

    again = batches.forward_orders([order("LOSTB-1"), order("LOSTB-2")])

    assert [(ack.created, ack.warehouse_order_id) for ack in again] == [
        (False, wms.orders(reference=f"LOSTB-{n}")[0]["id"]) for n in (1, 2)]
    assert len(wms.orders()) == 2


@pytest.fixture
def canned_wms() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A WMS over real HTTP that answers each POST with the next reply of the list given (the
    replies a buggy WMS could send, which the sandbox never does)."""
    replies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the standard library's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(replies.pop(0)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", replies
    finally:
        server.shutdown()
        server.server_close()


def _ack(reference: str) -> dict[str, Any]:
    return {"id": "WO-9", "reference": reference, "account": ACCOUNT, "status": "open"}


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        ({"results": []}, "results for 0"),
        ({"results": [{"reference": "MIS-2", "status": 201, "order": _ack("MIS-2")}]},
         "do not match"),
        ({"results": [{"reference": "MIS-1", "status": 201, "order": _ack("MIS-2")}]},
         "acknowledged reference 'MIS-2'"),
        ({"results": [{"reference": "MIS-1", "status": 201}]}, "results[0]"),
    ],
)
def test_a_batch_reply_that_does_not_answer_each_order_is_transient(
    app: Any, wms: WmsSandbox, canned_wms: tuple[str, list[dict[str, Any]]],
    reply: dict[str, Any], said: str
) -> None:
    url, replies = canned_wms
    replies.append(reply)
    batches = connector(wms, batch_create=True, base_url=url)
    with pytest.raises(TransientError) as failed:
        batches.forward_orders([order("MIS-1")])
    assert failed.value.code == "malformed_response" and said in failed.value.message
