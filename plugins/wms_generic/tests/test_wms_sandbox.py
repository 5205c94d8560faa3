"""The WMS sandbox behaves like a WMS: it picks and ships after a delay (sometimes in two
parcels) with carrier-shaped tracking numbers, moves stock with each parcel, keeps accounts
apart, and offers its admin operations over HTTP and on the command line."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import random
import re
import time
from typing import Any

import pytest
import requests
from tests.conftest import _schema, app_config, database_url, runner
from wms_support import ACCOUNT, TOKEN, app

from dropstream_wms_generic import protocol
from dropstream_wms_generic.sandbox import WmsSandbox
from dropstream_wms_generic.sandbox.tracking import tracking_number

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _order(
    reference: str, account: str = ACCOUNT, units: int = 4, method: str = "GRND"
) -> dict[str, Any]:
    return {
        "reference": reference,
        "account": account,
        "order_number": reference,
        "placed_at": "2026-11-27T10:00:00Z",
        "ship_method": method,
        "ship_to": {
            "name": "Ada",
            "street1": "1 Row",
            "city": "London",
            "postal_code": "N1",
            "country_code": "GB",
        },
        "lines": [{"reference": "1", "sku": "TSHIRT", "quantity": units}],
    }


def _ups_valid(number: str) -> bool:
    values = [int(c) if c.isdigit() else (ord(c) - 63) % 10 for c in number[2:-1]]
    return (sum(values[0::2]) + 2 * sum(values[1::2]) + int(number[-1])) % 10 == 0


@pytest.mark.parametrize(
    ("carrier", "pattern"),
    [
        ("UPS", r"1Z[0-9A-Z]{16}"),
        ("FedEx", r"[0-9]{12}"),
        ("USPS", r"9400[0-9]{18}"),
        ("DHL", r"[0-9]{10}"),
    ],
)
def test_tracking_numbers_have_each_carriers_shape_and_check_digit(
    carrier: str, pattern: str
) -> None:
    rng = random.Random(1)
    for _ in range(50):
        number, url = tracking_number(carrier, rng)
        assert re.fullmatch(pattern, number) and number in url and url.startswith("https://")
        if carrier == "UPS":
            assert _ups_valid(number)
        if carrier == "DHL":
            assert int(number[:9]) % 7 == int(number[9])
        if carrier == "FedEx":
            digits = [int(d) for d in number[:11]]
            total = sum(d * (1, 3, 7)[i % 3] for i, d in enumerate(reversed(digits)))
            assert total % 11 % 10 == int(number[11])


def test_orders_ship_after_the_delay_some_in_two_parcels_and_stock_moves() -> None:
    with WmsSandbox(auto=True, tick=0.05, ship_delay=0.1, partial_ratio=1.0) as wms:
        wms.set_stock(ACCOUNT, {"TSHIRT": 10})
        created = requests.post(
            f"{wms.url}/v1/orders",
            json=_order("P-1", method="DHL_EXPRESS"),
            headers=AUTH,
            timeout=5,
        )
        assert created.status_code == 201 and created.json()["status"] == "open"
        assert wms.shipments() == []  # not before the delay

        deadline = time.monotonic() + 5
        while len(wms.shipments()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

        first, second = wms.shipments()
        assert [first["lines"][0]["quantity"], second["lines"][0]["quantity"]] == [2, 2]
        assert first["carrier"] == "DHL" and re.fullmatch(r"[0-9]{10}", first["tracking_number"])
        assert first["tracking_number"] != second["tracking_number"]
        assert wms.orders(reference="P-1")[0]["status"] == "shipped"
        assert wms.stock(ACCOUNT) == {"TSHIRT": 6}
        for shipment in (first, second):
            protocol.validate("shipment", shipment)


def test_accounts_are_kept_apart() -> None:
    with WmsSandbox(auto=False) as wms:
        wms.add_account("ACME")
        wms.add_account("GLOBEX")
        wms.set_stock("GLOBEX", {"TSHIRT": 3})
        for account in ("ACME", "GLOBEX"):
            requests.post(
                f"{wms.url}/v1/orders", json=_order("SAME-REF", account), headers=AUTH, timeout=5
            )
        assert (
            len(wms.orders(reference="SAME-REF")) == 2
        )  # one per account: references are per account
        wms.ship("SAME-REF", account="GLOBEX")

        acme = requests.get(
            f"{wms.url}/v1/shipments", params={"account": "ACME"}, headers=AUTH, timeout=5
        )
        globex = requests.get(
            f"{wms.url}/v1/stock", params={"account": "GLOBEX"}, headers=AUTH, timeout=5
        )
        unknown = requests.get(
            f"{wms.url}/v1/stock", params={"account": "NOPE"}, headers=AUTH, timeout=5
        )

        assert acme.json()["items"] == []
        assert [(i["sku"], i["quantity"]) for i in globex.json()["items"]] == [("TSHIRT", 0)]
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_account"


def test_the_sandbox_refuses_what_the_protocol_refuses() -> None:
    with WmsSandbox(auto=False) as wms:
        wms.add_account(ACCOUNT)
        unauthenticated = requests.get(f"{wms.url}/v1/ship-methods", timeout=5)
        bad = _order("BAD-1")
        del bad["ship_to"]["city"]
        invalid = requests.post(f"{wms.url}/v1/orders", json=bad, headers=AUTH, timeout=5)

        assert unauthenticated.status_code == 401
        assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "ship_to"
        for answer in (unauthenticated, invalid):
            protocol.validate("error", answer.json())
        assert wms.orders() == []


def test_a_batch_creates_each_order_as_a_create_of_it_alone_would() -> None:
    with WmsSandbox(auto=False) as wms:
        wms.add_account(ACCOUNT)
        bad = _order("BATCH-BAD")
        del bad["ship_to"]["city"]
        batch = [_order("BATCH-1"), bad, _order("BATCH-2", method="TELEPORT"),
                 _order("BATCH-3", account="NOPE"), _order("BATCH-1")]
        answer = requests.post(
            f"{wms.url}/v1/orders/batch", json={"orders": batch}, headers=AUTH, timeout=5
        )
        not_a_batch = requests.post(
            f"{wms.url}/v1/orders/batch", json={"orders": []}, headers=AUTH, timeout=5
        )
        unauthenticated = requests.post(
            f"{wms.url}/v1/orders/batch", json={"orders": batch[:1]}, timeout=5
        )

        assert answer.status_code == 200
        protocol.validate("order-batch-result", answer.json())
        results = answer.json()["results"]
        assert [(r["reference"], r["status"]) for r in results] == [
            ("BATCH-1", 201), ("BATCH-BAD", 422), ("BATCH-2", 422), ("BATCH-3", 422),
            ("BATCH-1", 200)]
        assert [r.get("error", {}).get("code") for r in results] == [
            None, "invalid_request", "unknown_ship_method", "unknown_account", None]
        assert results[1]["error"]["field"] == "ship_to"
        assert results[0]["order"]["id"] == results[4]["order"]["id"]
        assert [o["reference"] for o in wms.orders()] == ["BATCH-1"]
        assert not_a_batch.status_code == 422 and not_a_batch.json()["error"]["field"] == "orders"
        assert unauthenticated.status_code == 401


def test_admin_operations_are_served_as_json_for_other_processes() -> None:
    with WmsSandbox(auto=False, ship_delay=0) as wms:

        def admin(op: str, **kwargs: Any) -> requests.Response:
            return requests.post(f"{wms.url}/_sandbox/{op}", json=kwargs, timeout=5)

        assert admin("add_account", code="HTTP").status_code == 200
        assert admin("set_stock", account="HTTP", levels={"MUG": 9}).json()["result"] == {"MUG": 9}
        assert admin("configure", dedupe=False, ship_delay=1.5).json()["result"]["dedupe"] is False
        assert admin("inject", kind="error", status=502, on="ship_methods").status_code == 200
        assert (
            requests.get(f"{wms.url}/v1/ship-methods", headers=AUTH, timeout=5).status_code == 502
        )
        summary = requests.get(f"{wms.url}/_sandbox/summary", timeout=5).json()["result"]
        assert summary["accounts"]["HTTP"]["skus"] == 1 and summary["settings"]["ship_delay"] == 1.5

        assert admin("configure", teleport=True).status_code == 400
        assert (
            admin("inject", kind="meteor")
            .json()["error"]["message"]
            .startswith("unknown fault kind")
        )
        assert admin("set_stock", account="HTTP").status_code == 400  # a missing argument
        assert requests.post(f"{wms.url}/_sandbox/summary", json={}, timeout=5).status_code == 404


def test_pushes_are_retried_until_dropstream_takes_them() -> None:
    with WmsSandbox(auto=False, ship_delay=0) as receiver_stub, WmsSandbox(auto=False) as wms:
        # Nothing listens for pushes at the stub's /nowhere: a 404 is retried, never lost.
        wms.add_account(ACCOUNT)
        wms.configure_push(f"{receiver_stub.url}/nowhere", "key-0123456789abcdef", "s" * 40)
        wms.set_stock(ACCOUNT, {"TSHIRT": 1})
        assert wms.deliver_pushes() == {"delivered": 0, "refused": 0, "retrying": 1}
        assert wms.summary()["pending_pushes"] == 1
        assert wms.pushes()[0]["status"] == 404


def test_hook_register_commands_adds_dropstream_sandbox_wms(app: Any, runner: Any) -> None:
    assert "wms" in app.cli.commands["sandbox"].commands
    result = runner.invoke(
        args=[
            "sandbox",
            "wms",
            "--port",
            "0",
            "--duration",
            "0.2",
            "--account",
            "ACME",
            "--stock",
            "ACME:TSHIRT=5",
            "--ship-delay",
            "3",
        ]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"WMS sandbox \(protocol v1\) at http://127\.0\.0\.1:\d+", result.output)
    assert "accounts   ACME" in result.output and "WMS sandbox stopped." in result.output

    refused = runner.invoke(
        args=["sandbox", "wms", "--stock", "ACME-TSHIRT-5", "--duration", "0.1"]
    )
    assert refused.exit_code == 2 and "ACCOUNT:SKU=UNITS" in refused.output
