"""Connecting a store: credentials stored through the core (encrypted, the store hash becoming the
store's id), verified by the set-up checks the API runs, each failure with its own message and
fix; statuses with custom labels; SKUs, tracking and shipping methods listed; webhooks made."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

from typing import Any

import pytest
from bigcommerce_support import (
    SHIPPING_METHOD,
    add_products,
    app,
    connector,
    credentials_of,
    sandbox,
    served,
    shop,
    wire,
)
from tests.conftest import _schema, app_config, client, database_url
from tests.factories import MerchantFactory, ProviderFactory, UserFactory, WarehouseFactory

from dropstream.extensions import db
from dropstream.stores.credentials import read_credentials, write_credentials
from dropstream.stores.models import Store, StoreState
from dropstream.tenants.models import Role
from dropstream.tenants.services import issue_api_key
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import SandboxStore

PUBLIC = "https://127.0.0.1"


def _checks(c: Any) -> dict[str, Any]:
    return {check.key: check for check in c.setup_checks()}


def test_a_wrong_token_a_wrong_hash_and_a_missing_scope_each_say_so(
    app: Any, sandbox: BigCommerceSandbox, shop: SandboxStore
) -> None:
    wrong_token = _checks(connector(shop, {**credentials_of(shop), "access_token": "x" * 31}))
    assert list(wrong_token) == ["credentials"] and "(401)" in wrong_token["credentials"].message
    assert "Access Token" in wrong_token["credentials"].fix

    wrong_hash = _checks(connector(shop, {**credentials_of(shop), "store_hash": "zzzz9999"}))
    assert list(wrong_hash) == ["credentials"] and "store hash" in wrong_hash["credentials"].fix
    assert "zzzz9999" in wrong_hash["credentials"].message

    scopes = [
        s
        for s in shop.credentials["scopes"]
        if s not in ("store_inventory", "store_v2_information_read_only")
    ]
    limited = SandboxStore(sandbox, shop.hash, sandbox.create_api_account(shop.hash, scopes))
    checks = _checks(connector(limited, public_base_url=PUBLIC))
    assert checks["credentials"].passed  # the token works, it just cannot read the store's details
    failed = {key for key, check in checks.items() if not check.passed and check.required}
    assert failed == {"scope.information", "scope.inventory"}
    assert "store_inventory" in checks["scope.inventory"].message
    assert "Store-level API accounts" in checks["scope.inventory"].fix


def test_the_hash_must_be_the_tokens_store(
    app: Any, sandbox: BigCommerceSandbox, shop: SandboxStore
) -> None:
    other = sandbox.create_store()
    checks = _checks(connector(shop, {**credentials_of(shop), "store_hash": other}))
    assert not checks["credentials"].passed  # BigCommerce refuses another store's token (401)


def test_statuses_are_listed_with_custom_labels_and_must_exist(
    app: Any, shop: SandboxStore
) -> None:
    shop.sandbox.rename_status(shop.hash, 11, "Ready to pick")
    statuses = {s.code: s.name for s in connector(shop).order_statuses()}
    assert (
        statuses["11"] == "Ready to pick (Awaiting Fulfillment)"
        and statuses["9"] == "Awaiting Shipment"
    )

    checks = _checks(connector(shop, public_base_url=PUBLIC, monitored_status_id=99))
    assert not checks["order_statuses"].passed and "99" in checks["order_statuses"].message
    assert "11: Ready to pick (Awaiting Fulfillment)" in checks["order_statuses"].details


def test_products_without_skus_or_tracking_are_listed(app: Any, shop: SandboxStore) -> None:
    add_products(shop, ("FINE", "product"), (None, "product"), ("UNTRACKED", "none"))
    shop.sandbox.add_product(
        shop.hash,
        name="Hoodie",
        inventory_tracking="variant",
        variants=[{"sku": "", "label": "S"}, {"sku": "HOOD-M", "label": "M"}],
    )

    checks = _checks(connector(shop, public_base_url=PUBLIC))

    assert not checks["skus"].passed and not checks["skus"].required
    assert len(checks["skus"].details) == 2 and any("Hoodie" in d for d in checks["skus"].details)
    assert not checks["inventory_tracking"].passed and not checks["inventory_tracking"].required
    assert checks["inventory_tracking"].details == ("Product UNTRACKED (UNTRACKED)",)
    assert checks["webhooks"].passed
    assert all(c.passed for c in checks.values() if c.required)


def test_store_api_credentials_are_verified_and_the_store_activated_through_the_api(
    app: Any, client: Any, shop: SandboxStore, served: str
) -> None:
    provider = ProviderFactory()
    merchant = MerchantFactory(provider_id=provider.id)
    admin = UserFactory(provider_id=provider.id, role=Role.PROVIDER_ADMIN)
    warehouse = WarehouseFactory(provider_id=provider.id, settings={"sandbox": "setup"})
    write_credentials(warehouse, {"token": "wms-token"})
    _key, token = issue_api_key(db.session, admin, "test")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}

    refused = client.post(
        "/api/v1/stores",
        headers=headers,
        json={
            "name": "Shop",
            "connector_id": "bigcommerce",
            "merchant_id": merchant.id,
            "credentials": {**credentials_of(shop), "store_hash": "Not A Hash!"},
        },
    )
    assert (
        refused.status_code == 422 and "credentials.store_hash" in refused.json["error"]["fields"]
    )

    created = client.post(
        "/api/v1/stores",
        headers=headers,
        json={
            "name": "Shop",
            "connector_id": "bigcommerce",
            "merchant_id": merchant.id,
            "warehouse_id": warehouse.id,
            "settings": {"api_base_url": shop.sandbox.api_base_url},
            "credentials": credentials_of(shop),
        },
    )
    assert created.status_code == 201, created.json
    body = created.json
    assert (
        body["external_id"] == shop.hash and body["credentials_set"] and "credentials" not in body
    )
    assert shop.token not in created.get_data(as_text=True)

    checked = client.post(f"/api/v1/stores/{body['id']}/setup-checks", headers=headers)
    assert checked.status_code == 200 and checked.json["passed"], checked.json
    store = db.session.get(Store, body["id"])
    db.session.refresh(store)
    assert store.state is StoreState.ACTIVE
    assert read_credentials(store)["webhook_secret"]  # made and kept, encrypted
    assert {h["destination"] for h in shop.sandbox.hooks(shop.hash)} == {
        f"{served}/connectors/bigcommerce/webhooks"
    }

    # A token revoked later: the check fails and names the input to fix.
    shop.sandbox.revoke_api_account(shop.hash, shop.credentials["client_id"])
    rechecked = client.post(f"/api/v1/stores/{body['id']}/setup-checks", headers=headers)
    failed = [c for c in rechecked.json["checks"] if not c["passed"]]
    assert [(c["key"], c["field"]) for c in failed] == [("credentials", "credentials.access_token")]

    # Credentials of another BigCommerce store do not fit a store that says which one it is.
    other = shop.sandbox.create_store()
    account = shop.sandbox.create_api_account(other)
    swapped = client.patch(
        f"/api/v1/stores/{body['id']}",
        headers=headers,
        json={
            "external_id": shop.hash,
            "credentials": {
                **{k: account[k] for k in ("client_id", "client_secret", "access_token")},
                "store_hash": other,
            },
        },
    )
    assert swapped.status_code == 422 and "credentials" in swapped.json["error"]["fields"]


def test_unmapped_shipping_methods_in_use_are_listed(
    app: Any, shop: SandboxStore, served: str
) -> None:
    add_products(shop, ("SHIP-1", "product"))
    wired = wire(shop)
    for method in (SHIPPING_METHOD, "Overnight Air", "Overnight Air"):
        shop.sandbox.create_order(
            shop.hash,
            lines=[{"sku": "SHIP-1"}],
            shipping_addresses=[
                {
                    "first_name": "A",
                    "street_1": "1 Main",
                    "city": "Austin",
                    "country_iso2": "US",
                    "shipping_method": method,
                }
            ],
        )
    wired.deliver_webhooks()

    from dropstream.stores.setup import run_setup_checks

    checks = {c.key: c for c in run_setup_checks(db.session, wired.store)}
    assert not checks["shipping_rules"].passed and checks["shipping_rules"].details == (
        "Overnight Air",
    )
    assert not checks["shipping_rules"].required
