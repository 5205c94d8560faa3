"""S1, the isolation matrix: another tenant's users, through every API route, every console page
and form, and the plugins' inbound routes, with every object of the victim tenant — at least 500
requests, every one refused (404, or 403 where the caller's role forbids the action outright),
and afterwards every row of the victim exactly as it was.

The walks are the API's and the console's own (``tests/api/test_cross_tenant.py``,
``tests/console/test_access.py``: routes from the URL map, objects from the database), run here
with every connector plugin loaded and for each of the intruder's four roles. The inbound routes
are addressed with the victim's store and warehouse ids and signed with the intruder's own
secrets: a tenant's credentials open only its own door. Work queued for one tenant that names
another tenant's object is refused by the job runner's tenant scope.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.stores.models import Channel, Store
from dropstream.tenants.models import Role
from dropstream.testing.jobs import run_until_idle
from dropstream_bigcommerce import oauth
from dropstream_bigcommerce.connector import WEBHOOK_SECRET_HEADER
from dropstream_bigcommerce.models import UsedJwt
from dropstream_wms_generic import signing
from tests.api.conftest import As
from tests.api.test_cross_tenant import MARKER, Walk, objects, snapshot, walk
from tests.console.conftest import signed_in
from tests.console.test_access import walk_console
from tests.security.tenants import FullTenant, full_tenant

MIN_REQUESTS = 500


def _victim_and_intruder() -> tuple[FullTenant, FullTenant]:
    # The victim's store hash and account code do not carry the marker (see full_tenant).
    return full_tenant(MARKER, code="vx"), full_tenant("intruder")


def test_another_tenant_reaches_nothing_anywhere(app: Any, client: Any) -> None:
    victim, intruder = _victim_and_intruder()
    where = {"provider_id": victim.data.tenant.provider.id}
    before = snapshot(**where)
    spent_jtis = _count(UsedJwt)

    total = Walk()
    for role in Role:
        caller = As(client, intruder.data.tenant, role)
        total += walk(
            client, caller, victim.data, intruder.data, allow_403=role is not Role.PROVIDER_ADMIN
        )
        console = signed_in(app.test_client(), intruder.data.tenant, role)
        total += walk_console(console, role, intruder.data.ids, **where)
    total += inbound_walk(app, victim, intruder)

    assert not total.problems, "\n".join(total.problems)
    assert total.calls >= MIN_REQUESTS, f"the matrix made only {total.calls} requests"
    assert snapshot(**where) == before
    assert _count(UsedJwt) == spent_jtis
    print(f"isolation matrix: {total.calls} cross-tenant requests, all refused, nothing changed")


def inbound_walk(app: Any, victim: FullTenant, intruder: FullTenant) -> Walk:
    """The plugins' routes addressed with the victim's ids, under the intruder's credentials."""
    result = Walk()
    client = app.test_client()

    def expect(what: str, response: Any, status: int) -> None:
        result.calls += 1
        body = response.get_data(as_text=True)
        if response.status_code != status:
            result.problems.append(
                f"{what} -> {response.status_code}, expected {status}: {body[:200]}"
            )
        if MARKER in body.lower():
            result.problems.append(f"{what}: shows the victim's data: {body[:200]}")

    victims = objects(provider_id=victim.data.tenant.provider.id)
    wms_warehouses = [
        row["id"] for row in victims["warehouse_id"] if row["connector_id"] == "wms_generic"
    ]
    bc_stores = [row for row in victims["store_id"] if row["connector_id"] == "bigcommerce"]
    assert wms_warehouses and bc_stores

    # Pushes to the victim's warehouse, with the intruder's key and secret (or none).
    for warehouse_id in wms_warehouses:
        for path, event in (
            ("shipments", _shipment(victim.account, victim.order_reference())),
            ("stock", _stock(victim.account)),
        ):
            url = f"/connectors/wms_generic/warehouses/{warehouse_id}/{path}"
            raw = json.dumps(event).encode()
            expect(
                f"push {path} to the victim's warehouse with the intruder's key",
                client.post(
                    url,
                    data=raw,
                    headers=signing.sign(intruder.inbound_key, intruder.signing_secret, raw),
                ),
                401,
            )
            expect(
                f"push {path} to the victim's warehouse with its key and the intruder's secret",
                client.post(
                    url,
                    data=raw,
                    headers=signing.sign(victim.inbound_key, intruder.signing_secret, raw),
                ),
                401,
            )
            expect(
                f"unsigned push {path} to the victim's warehouse",
                client.post(url, data=raw, headers={"Content-Type": "application/json"}),
                401,
            )
    # Pushes to the intruder's own warehouse that name the victim's order or account.
    own = f"/connectors/wms_generic/warehouses/{intruder.wms.id}"
    for what, path, event, status in (
        (
            "a shipment of the victim's order",
            "shipments",
            _shipment(intruder.account, victim.order_reference()),
            422,
        ),
        (
            "a shipment for the victim's account",
            "shipments",
            _shipment(victim.account, "DS-0-none"),
            422,
        ),
        ("stock of the victim's account", "stock", _stock(victim.account), 422),
    ):
        raw = json.dumps(event).encode()
        expect(
            f"push {what} to the intruder's own warehouse",
            client.post(
                f"{own}/{path}",
                data=raw,
                headers=signing.sign(intruder.inbound_key, intruder.signing_secret, raw),
            ),
            status,
        )

    # Webhooks claiming to come from the victim's BigCommerce store.
    for row in bc_stores:
        body = json.dumps(_webhook(row["external_id"]))
        for label, headers in (
            ("the intruder's secret", {WEBHOOK_SECRET_HEADER: intruder.webhook_secret}),
            ("no secret", {}),
        ):
            expect(
                f"webhook from the victim's store {row['external_id']} with {label}",
                client.post(
                    "/connectors/bigcommerce/webhooks",
                    data=body,
                    headers={"Content-Type": "application/json", **headers},
                ),
                401,
            )

    # The app install, by a signed-in user of the intruder: for the victim's stores, or linking
    # the victim's BigCommerce store hash to the intruder's own store.
    browser = signed_in(app.test_client(), intruder.data.tenant, Role.MERCHANT_ADMIN).client
    for row in victims["store_id"]:
        expect(
            f"install the app for the victim's store {row['id']}",
            browser.get(f"/connectors/bigcommerce/install?store_id={row['id']}"),
            404,
        )
    user = intruder.data.tenant.users[Role.MERCHANT_ADMIN]
    browser.set_cookie(
        oauth.STATE_COOKIE,
        oauth.install_state(intruder.bc_store.id, user.id),
        path="/connectors/bigcommerce",
    )
    for row in bc_stores:
        expect(
            f"link the victim's BigCommerce store {row['external_id']} to the intruder's store",
            browser.get(
                "/connectors/bigcommerce/auth",
                query_string={
                    "code": "a-code",
                    "scope": " ".join(oauth.REQUIRED_SCOPES),
                    "context": f"stores/{row['external_id']}",
                },
            ),
            409,
        )
    return result


def test_work_queued_for_one_tenant_cannot_touch_another_tenants_objects(app: Any) -> None:
    """Jobs carry an outbox id; the runner runs its work in the item's tenant scope, so an item
    of the intruder naming the victim's order, shipment, channel or store fails closed."""
    victim, intruder = _victim_and_intruder()
    where = {"provider_id": victim.data.tenant.provider.id}
    store = db.session.get(Store, victim.data.tenant.store.id)
    subjects = {
        "order.forward": victim.data.ids["order_id"],
        "order.mark_sent": victim.data.ids["order_id"],
        "order.cancel": victim.data.ids["order_id"],
        "shipment.post": victim.data.ids["shipment_id"],
        "channel.run": store.channel(Channel.ORDERS).id,
        "store.rescan_holds": store.id,
    }
    mine = intruder.data.tenant
    items = [
        OutboxItem(
            provider_id=mine.provider.id,
            merchant_id=mine.merchant.id,
            store_id=mine.store.id,
            kind=kind,
            subject_id=subject,
            dedupe_key=f"cross:{kind}",
        )
        for kind, subject in subjects.items()
    ]
    db.session.add_all(items)
    db.session.commit()
    ids = [item.id for item in items]
    before = snapshot(**where)

    run_until_idle(channels=False)

    assert snapshot(**where) == before
    db.session.expire_all()
    for item_id in ids:
        item = db.session.get(OutboxItem, item_id)
        assert item.state is OutboxState.DEAD, (item.kind, item.state)
        assert "outside the active tenant scope" in (item.last_error or ""), (
            item.kind,
            item.last_error,
        )
        assert MARKER not in (item.last_error or "").lower()


def _count(model: type) -> int:
    count = db.session.scalar(select(func.count()).select_from(model)) or 0
    db.session.rollback()
    return count


def _shipment(account: str, reference: str) -> dict[str, Any]:
    return {
        "event_id": f"evt-{reference}-{account}",
        "shipment": {
            "id": "SH-X",
            "reference": reference,
            "account": account,
            "carrier": "UPS",
            "tracking_number": "1Z999",
            "shipped_at": "2026-11-27T10:00:00Z",
            "lines": [{"line_reference": "1", "sku": "SKU-1", "quantity": 1}],
        },
    }


def _stock(account: str) -> dict[str, Any]:
    return {
        "event_id": f"evt-stock-{account}",
        "snapshot": {
            "account": account,
            "complete": True,
            "items": [{"sku": "WH-1", "quantity": 0, "as_of": "2026-11-27T10:00:00Z"}],
        },
    }


def _webhook(store_hash: str) -> dict[str, Any]:
    return {
        "scope": "store/order/statusUpdated",
        "store_id": "1",
        "hash": f"forged-{store_hash}",
        "created_at": 1561479335,
        "producer": f"stores/{store_hash}",
        "data": {
            "type": "order",
            "id": 1000,
            "status": {"previous_status_id": 0, "new_status_id": 11},
        },
    }
