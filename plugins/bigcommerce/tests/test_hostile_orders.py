"""The hostile-order catalogue (``hostile_orders.py``) through the whole pipeline: BigCommerce
sandbox → webhooks and the polling sweep → import → mapping → the generic-WMS sandbox, with the
job runner, over real HTTP both ways.

Every order must end in a visible state — shown by the REST API with its code and field path —
and no job may crash. Then every fix is applied the way a person applies it (a listing or a
shipping rule through the API, a correction in the store, Reprocess) and each fixable order must
reach the WMS exactly once (counted by reference at the WMS sandbox), even when asked twice.
"""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from bigcommerce_support import connector, credentials_of, sandbox, served
from hostile_orders import (
    ABSENT,
    CANCELLED,
    CASES,
    ERROR,
    HELD,
    LISTINGS,
    PRODUCTS,
    SHIPPING_RULES,
    SKIPPED,
    WAREHOUSE_SKUS,
    WMS_ACCOUNT,
    Case,
    Expect,
    big_order,
    big_skus,
    place,
    purge,
)
from sqlalchemy import select
from tests.conftest import _schema, app_config, database_url, running_app
from tests.factories import MerchantFactory, ProviderFactory, UserFactory

from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.net.outbound import OutboundSession, app_policy
from dropstream.orders.models import Order
from dropstream.stores import services
from dropstream.stores.models import Channel, Store
from dropstream.stores.setup import run_setup_checks
from dropstream.tenants.models import Role
from dropstream.tenants.scope import TenantScope, unscoped
from dropstream.tenants.services import issue_api_key
from dropstream.testing import plugin as reference_plugin
from dropstream.testing.jobs import run_until_idle
from dropstream_bigcommerce import importing
from dropstream_bigcommerce.client import BigCommerceClient
from dropstream_bigcommerce import plugin as bigcommerce_plugin
from dropstream_bigcommerce.runtime import runtime
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import new_store
from dropstream_wms_generic import plugin as wms_plugin
from dropstream_wms_generic.sandbox import WmsSandbox

WMS_TOKEN = "wms-token"


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Any]:
    """Both real connectors (BigCommerce, generic WMS) beside the reference ones."""
    with running_app(
        {**app_config, "BIGCOMMERCE_RETRY_DELAYS": (0.01, 0.02)},
        plugins=[("reference", reference_plugin), ("bigcommerce", bigcommerce_plugin),
                 ("wms_generic", wms_plugin)],
    ) as app:
        yield app


@pytest.fixture
def wms() -> Iterator[WmsSandbox]:
    """A WMS that refuses SKUs it does not stock and ships only when told."""
    with WmsSandbox(auto=False, ship_delay=0, partial_ratio=0, strict_skus=True) as sandbox:
        sandbox.add_account(WMS_ACCOUNT)
        yield sandbox


@dataclass
class Hostile:
    """A merchant's BigCommerce store (sandbox) sending to the WMS sandbox, and its operator."""

    app: Any
    sandbox: BigCommerceSandbox
    wms: WmsSandbox
    store_hash: str
    store_id: int
    api_key: str
    placed: dict[str, int] = field(default_factory=dict)

    # -- the operator's API ---------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        db.session.commit()  # the API's own session must not wait behind ours
        response = self.app.test_client().open(
            f"/api/v1{path}", method=method, json=body,
            headers={"Authorization": f"Bearer {self.api_key}"})
        return response.status_code, response.get_json()

    def order(self, case: Case) -> Order | None:
        db.session.expire_all()
        return db.session.scalar(select(Order).where(
            Order.store_id == self.store_id, Order.external_id == str(self.placed[case.name])))

    def wms_orders(self, case: Case) -> list[dict[str, Any]]:
        base = f"DS-{self.store_id}-{self.placed[case.name]}"
        return [o for o in self.wms.orders(account=WMS_ACCOUNT)
                if o["reference"] == base or o["reference"].startswith(base + "-")]

    # -- the pipeline ---------------------------------------------------------------------------

    def settle(self, *, sweep: bool = False) -> None:
        """Deliver the store's webhooks, then run every job until none is due (the orders
        sweep too, when asked: that is how an edit made in the store arrives)."""
        for _ in range(3):
            db.session.commit()
            assert self.sandbox.wait_for_webhooks(30), "webhooks still in flight"
            if sweep:
                store = db.session.get(Store, self.store_id)
                for channel in store.channels:
                    channel.next_run_at = None
                db.session.commit()
            run_until_idle(max_rounds=200)
            sweep = False
        db.session.commit()


def open_store(app: Any, sandbox: BigCommerceSandbox, wms: WmsSandbox,
               extra_skus: list[str] | None = None) -> Hostile:
    shop = new_store(sandbox)
    sandbox.set_rate_limit(shop.hash, quota=1_000_000)  # DropStream's behaviour, not the quota
    for product in PRODUCTS:
        sandbox.add_product(shop.hash, inventory_level=100, **product)
    for sku in extra_skus or ():
        sandbox.add_product(shop.hash, name=f"Item {sku}", sku=sku, inventory_level=10)
    wms.set_stock(WMS_ACCOUNT, {sku: 10**6 for sku in (*WAREHOUSE_SKUS, *(extra_skus or ()))})

    provider = ProviderFactory(name="Hostile 3PL", slug="hostile-3pl")
    merchant = MerchantFactory(provider_id=provider.id, name="Hostile goods")
    admin = UserFactory(provider_id=provider.id, role=Role.PROVIDER_ADMIN)
    _key, api_key = issue_api_key(db.session, admin, "operator")
    scope = TenantScope(provider.id)
    warehouse = services.create_warehouse(db.session, scope, {
        "name": "WMS sandbox", "connector_id": "wms_generic",
        "settings": {"base_url": wms.url, "default_account": WMS_ACCOUNT},
        "credentials": {"token": WMS_TOKEN}})
    store = services.create_store(db.session, scope, {
        "name": "Hostile BigCommerce", "connector_id": "bigcommerce", "merchant_id": merchant.id,
        "warehouse_id": warehouse.id, "warehouse_account": {"customer_code": WMS_ACCOUNT},
        "settings": {"api_base_url": sandbox.api_base_url},
        "credentials": credentials_of(shop)})
    for channel in store.channels:  # orders only: shipments and stock are other suites' work
        channel.enabled = channel.channel is Channel.ORDERS
    db.session.commit()
    checks = run_setup_checks(db.session, store)
    db.session.commit()
    assert all(c.passed for c in checks if c.required), [c for c in checks if not c.passed]
    hostile = Hostile(app, sandbox, wms, shop.hash, store.id, api_key)
    for listing in LISTINGS:
        assert hostile.api("POST", f"/stores/{store.id}/listings", listing)[0] == 201
    for rule in SHIPPING_RULES:
        assert hostile.api("POST", f"/stores/{store.id}/shipping-rules", rule)[0] == 201
    return hostile


# ------------------------------------------------------------------------------------------------
# What "visible" means
# ------------------------------------------------------------------------------------------------


def problems_with(hostile: Hostile, case: Case, expect: Expect) -> list[str]:
    """What is wrong with ``case``'s order against ``expect`` (empty: nothing)."""
    found: list[str] = []
    order = hostile.order(case)
    status = order.status.value if order is not None else ABSENT
    if status != expect.outcome:
        detail = (order.hold_detail or order.error_message or "") if order is not None else ""
        return [f"{case.name}: {status} ({detail[:200]}), expected {expect.outcome}"]
    if order is not None:
        code, body = hostile.api("GET", f"/orders/{order.id}")
        assert code == 200, body
        shown = _shown(body, expect.outcome)
        if shown is not None and (shown[0] != expect.code
                                  or not (shown[1] or "").startswith(f"{expect.field}: ")):
            found.append(f"{case.name}: shows {shown}, expected {expect.code} at {expect.field}")
    at_wms = hostile.wms_orders(case)
    references = [o["reference"] for o in at_wms]
    if len(set(references)) != len(references):
        found.append(f"{case.name}: duplicated at the WMS: {sorted(references)}")
    got = sorted(tuple(sorted((l["sku"], l["quantity"]) for l in o["lines"])) for o in at_wms)
    if got != sorted(expect.consignments):
        found.append(f"{case.name}: the WMS has {str(got)[:300]}, expected "
                     f"{str(sorted(expect.consignments))[:300]}")
    if expect.outcome == CANCELLED and any(o["status"] != "cancelled" for o in at_wms):
        found.append(f"{case.name}: still live at the WMS: {[o['status'] for o in at_wms]}")
    return found


def _shown(body: dict[str, Any], outcome: str) -> tuple[str | None, str | None] | None:
    """(code, "field: message") as the API shows them for a held, failed or skipped order."""
    if outcome == HELD:
        return body["hold_reason"], body["hold_detail"]
    if outcome == ERROR:
        return body["error_code"], body["error_message"]
    if outcome == SKIPPED:
        event = [e for e in body["timeline"] if e["kind"] == "skipped"][-1]
        return event["detail"].get("code"), f"{event['detail'].get('field')}: {event['message']}"
    return None


def crashes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Jobs that failed unexpectedly (logged by the runner) or were given up (dead)."""
    logged = [r.getMessage() for r in caplog.records
              if r.name == "dropstream.jobs.runner" and r.levelno >= logging.ERROR]
    with unscoped(db.session):
        items = db.session.scalars(select(OutboxItem).where(
            (OutboxItem.state == OutboxState.DEAD) | (OutboxItem.last_error.is_not(None)))).all()
        stuck = [f"{i.kind} {i.state.value}: {i.last_error}" for i in items]
    return logged + stuck


# ------------------------------------------------------------------------------------------------


def test_every_hostile_order_ends_visible_and_every_fix_goes_through_once(
    app: Any, sandbox: BigCommerceSandbox, served: str, wms: WmsSandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert len(CASES) >= 60 and len({c.name for c in CASES}) == len(CASES)
    hostile = open_store(app, sandbox, wms)
    for case in CASES:
        hostile.placed[case.name] = place(sandbox, hostile.store_hash, case)
    hostile.settle(sweep=True)

    wrong = [p for case in CASES for p in problems_with(hostile, case, case.expect)]
    assert not wrong, "\n".join(wrong)
    assert not crashes(caplog), crashes(caplog)

    fixable = [case for case in CASES if case.fix is not None]
    for case in fixable:
        apply_fix(hostile, case)
    hostile.settle(sweep=True)
    for case in fixable:  # asked twice: Reprocess again, and another sweep
        if case.fix.then.outcome != ERROR:
            order = hostile.order(case)
            hostile.api("POST", f"/orders/{order.id}/reprocess")
    hostile.settle(sweep=True)

    wrong = [f"{p} (after the fix: {case.fix.kind})" if case.fix else p for case in CASES
             for p in problems_with(hostile, case, case.fix.then if case.fix else case.expect)]
    assert not wrong, "\n".join(wrong)
    assert not crashes(caplog), crashes(caplog)


def apply_fix(hostile: Hostile, case: Case) -> None:
    fix = case.fix
    assert fix is not None
    order_id = hostile.placed[case.name]
    if fix.listing:
        code, body = hostile.api("POST", f"/stores/{hostile.store_id}/listings", fix.listing)
        assert code == 201, (case.name, body)
    if fix.shipping_rule:
        code, body = hostile.api("POST", f"/stores/{hostile.store_id}/shipping-rules",
                                 fix.shipping_rule)
        assert code == 201, (case.name, body)
    for edit in fix.edits:
        edit.apply(hostile.sandbox, hostile.store_hash, order_id)
    if fix.store_status is not None:
        hostile.sandbox.set_order_status(hostile.store_hash, order_id, fix.store_status)
    if fix.purge:
        purge(hostile.sandbox, hostile.store_hash, order_id)
    if fix.reprocess:
        order = hostile.order(case)
        code, body = hostile.api("POST", f"/orders/{order.id}/reprocess")
        assert code == 200, (case.name, body)


def test_orders_of_1000_and_2500_lines_reach_the_warehouse_whole_and_once(
    app: Any, sandbox: BigCommerceSandbox, served: str, wms: WmsSandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cases = [big_order(1000), big_order(2500)]
    hostile = open_store(app, sandbox, wms, extra_skus=big_skus(2500))
    for case in cases:
        hostile.placed[case.name] = place(sandbox, hostile.store_hash, case)
    hostile.settle(sweep=True)

    wrong = [p for case in cases for p in problems_with(hostile, case, case.expect)]
    assert not wrong, "\n".join(wrong)
    assert not crashes(caplog), crashes(caplog)


def test_a_2500_line_order_without_embedded_lines_is_read_through_every_page(
    app: Any, sandbox: BigCommerceSandbox
) -> None:
    shop = _big_store(sandbox, 2500)
    order_id = place(sandbox, shop.hash, big_order(2500))
    reader = connector(shop)
    with reader.client() as client:
        bare = client.get(f"/v2/orders/{order_id}")  # products and addresses as links
        order = importing._read(client, reader.settings, bare)

    assert order is not None and [line.sku for line in order.lines] == big_skus(2500)
    assert len(_product_pages(sandbox, shop)) == 11  # ten full pages of 250, then an empty one


def test_an_order_too_large_for_one_answer_is_read_without_its_lines_then_by_page(
    app: Any, sandbox: BigCommerceSandbox
) -> None:
    """1,000 lines are 1.4 MB with the lines embedded: over a 1 MB limit (10 MB in production,
    which about 7,000 lines, or a sweep page holding a few big orders, would exceed)."""
    shop = _big_store(sandbox, 1000)
    order_id = place(sandbox, shop.hash, big_order(1000))
    reader = connector(shop)
    client = BigCommerceClient(
        sandbox.api_base_url, shop.hash, shop.token,
        session=OutboundSession(app_policy(max_response_bytes=1_000_000)),
        limiter=runtime().limiter)
    try:
        one = importing.fetch_order(client, reader.settings, str(order_id))
        since = json.dumps({"since": "2000-01-01T00:00:00+00:00", "page": 1})
        swept = importing.fetch_orders(client, reader.settings, since, reader,
                                       runtime().status_checks)
    finally:
        client.close()

    assert one is not None and [line.sku for line in one.lines] == big_skus(1000)
    assert [[line.sku for line in order.lines] for order in swept.orders] == [big_skus(1000)]
    assert not swept.unreadable
    assert len(_product_pages(sandbox, shop)) == 2 * 5  # each read: four pages and an empty one


def _big_store(sandbox: BigCommerceSandbox, skus: int) -> Any:
    shop = new_store(sandbox)
    sandbox.set_rate_limit(shop.hash, quota=1_000_000)
    for sku in big_skus(skus):
        sandbox.add_product(shop.hash, name=f"Item {sku}", sku=sku, inventory_level=10)
    return shop


def _product_pages(sandbox: BigCommerceSandbox, shop: Any) -> list[dict[str, Any]]:
    return [c for c in sandbox.call_log(shop.hash) if c["path"].endswith("/products")]
