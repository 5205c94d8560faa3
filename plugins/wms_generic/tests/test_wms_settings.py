"""Saving a generic-WMS warehouse through the API: hostile addresses and incomplete credentials
are refused on entry, naming the field; the ship-method catalogue reaches the rules editor."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from tests.conftest import _schema, app_config, client, database_url
from tests.tenancy import make_tenant
from wms_support import TOKEN, app, wms

from dropstream.extensions import db
from dropstream.stores.models import Warehouse
from dropstream_wms_generic.sandbox import WmsSandbox

HOSTILE_URLS = [
    "ftp://wms.example.com/v1",
    "file:///etc/passwd",
    "gopher://wms.example.com",
    "http://wms.example.com",  # plain http to a public host
    "https://wms.example.com:8443",  # a port other than 443
    "https://user:pass@wms.example.com",  # credentials in the URL
    "https://wms.example.com@10.0.0.1",  # userinfo trick
    "https://10.0.0.1",
    "https://172.16.5.4",
    "https://192.168.1.10",
    "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
    "https://0.0.0.0",
    "https://[::ffff:10.0.0.1]",  # IPv4-mapped IPv6
    "https://[fd00::1]",  # unique local IPv6
    "https://[fe80::1]",
    "https://0xa9fea9fe",  # 169.254.169.254 in hex
    "https://2852039166",  # … in decimal
    "https://0251.0376.0251.0376",  # … in octal
    "https://224.0.0.1",  # multicast
    "https://wms.example.com/v1?debug=1",  # a query string
    "javascript:alert(1)",
    "",
]


def _create(
    client: Any, tenant: Any, settings: dict[str, Any], credentials: dict[str, Any] | None = None
) -> Any:
    return client.post(
        "/api/v1/warehouses",
        headers=tenant.headers(),
        json={
            "name": "WMS",
            "connector_id": "wms_generic",
            "settings": settings,
            "credentials": credentials if credentials is not None else {"token": TOKEN},
        },
    )


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_base_urls_are_refused_on_save_naming_the_field(
    app: Any, client: Any, url: str
) -> None:
    tenant = make_tenant("hostile")
    before = db.session.scalar(select(func.count()).select_from(Warehouse))

    response = _create(client, tenant, {"base_url": url})

    assert response.status_code == 422, response.get_data(as_text=True)
    fields = response.get_json()["error"]["fields"]
    assert list(fields) == ["settings.base_url"] and fields["settings.base_url"][0]
    assert db.session.scalar(select(func.count()).select_from(Warehouse)) == before


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8701", "http://localhost:8701", "https://127.0.0.1"]
)
def test_loopback_is_refused_unless_the_app_allows_sandboxes(
    app_config: dict[str, Any], url: str
) -> None:
    from dropstream.app import create_app
    from dropstream.testing import plugin as reference_plugin
    from dropstream_wms_generic import plugin as wms_plugin
    from dropstream_wms_generic.connector import WmsSettings

    app_config["ALLOW_LOOPBACK"] = False
    strict = create_app(
        app_config,
        env={},
        plugins=[("reference", reference_plugin), ("wms_generic", wms_plugin)],
        load_entry_points=False,
    )
    with strict.app_context():
        assert "base_url" in WmsSettings().validate({"base_url": url})
        assert WmsSettings().validate({"base_url": "https://wms.example.com/dropstream"}) == {}
        strict.extensions["dropstream"].queue.close()


def test_an_update_to_a_hostile_url_is_refused_and_the_old_one_kept(app: Any, client: Any) -> None:
    tenant = make_tenant("update")
    created = _create(client, tenant, {"base_url": "https://wms.example.com/dropstream"})
    assert created.status_code == 201, created.get_data(as_text=True)
    warehouse_id = created.get_json()["id"]

    response = client.patch(
        f"/api/v1/warehouses/{warehouse_id}",
        headers=tenant.headers(),
        json={"settings": {"base_url": "https://169.254.169.254"}},
    )

    assert (
        response.status_code == 422
        and "settings.base_url" in response.get_json()["error"]["fields"]
    )
    db.session.expire_all()
    assert (
        db.session.get(Warehouse, warehouse_id).settings["base_url"]
        == "https://wms.example.com/dropstream"
    )


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        ({}, "credentials.token"),
        ({"token": TOKEN, "inbound_key": "only-the-key-0123456789"}, "credentials.signing_secret"),
        (
            {"token": TOKEN, "inbound_key": "short", "signing_secret": "s" * 40},
            "credentials.inbound_key",
        ),
    ],
)
def test_incomplete_credentials_are_refused_naming_the_field(
    app: Any, client: Any, credentials: dict[str, Any], field: str
) -> None:
    response = _create(
        client, make_tenant("creds"), {"base_url": "https://wms.example.com"}, credentials
    )
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]


def test_credentials_are_never_returned(app: Any, client: Any) -> None:
    response = _create(
        client,
        make_tenant("secret"),
        {"base_url": "https://wms.example.com"},
        {
            "token": TOKEN,
            "inbound_key": "inbound-key-0123456789",
            "signing_secret": "signing-secret-0123456789abcdef-0123",
        },
    )
    assert response.status_code == 201
    body = response.get_data(as_text=True)
    assert (
        TOKEN not in body and "inbound-key-0123456789" not in body and "signing-secret" not in body
    )
    assert response.get_json()["credentials_set"] is True


def test_the_rules_editor_lists_the_wms_ship_methods(
    app: Any, client: Any, wms: WmsSandbox
) -> None:
    tenant = make_tenant("methods")
    created = _create(client, tenant, {"base_url": wms.url})
    assert created.status_code == 201, created.get_data(as_text=True)

    response = client.get(
        f"/api/v1/warehouses/{created.get_json()['id']}/ship-methods", headers=tenant.headers()
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    items = {item["code"]: item for item in response.get_json()["items"]}
    assert items["USPS_PRIORITY"] == {
        "code": "USPS_PRIORITY",
        "name": "USPS Priority Mail",
        "carrier": "USPS",
    }
    assert [r["operation"] for r in wms.requests()] == ["ship_methods"]


def test_the_rules_editor_reports_a_wms_failure(app: Any, client: Any, wms: WmsSandbox) -> None:
    tenant = make_tenant("down")
    created = _create(client, tenant, {"base_url": wms.url})
    wms.inject("error", status=500)
    response = client.get(
        f"/api/v1/warehouses/{created.get_json()['id']}/ship-methods", headers=tenant.headers()
    )
    assert response.status_code == 502 and TOKEN not in response.get_data(as_text=True)


def test_a_csv_catalogue_stands_in_for_a_wms_without_the_endpoint(
    app: Any, client: Any, wms: WmsSandbox
) -> None:
    tenant = make_tenant("csv")
    warehouse_id = _create(client, tenant, {"base_url": wms.url}).get_json()["id"]
    csv = "code,name,carrier\nPALLET,Pallet freight,XPO\nLTL, Less than truckload ,Estes\n"

    uploaded = client.put(
        f"/api/v1/warehouses/{warehouse_id}/ship-methods",
        data=csv,
        content_type="text/csv",
        headers=tenant.headers(),
    )
    listed = client.get(f"/api/v1/warehouses/{warehouse_id}/ship-methods", headers=tenant.headers())

    assert uploaded.status_code == 200, uploaded.get_data(as_text=True)
    expected = [
        {"code": "PALLET", "name": "Pallet freight", "carrier": "XPO"},
        {"code": "LTL", "name": "Less than truckload", "carrier": "Estes"},
    ]
    assert uploaded.get_json()["items"] == expected and listed.get_json()["items"] == expected
    assert wms.requests() == []  # the WMS is not asked any more


def test_a_bad_catalogue_row_is_named_and_nothing_saved(app: Any, client: Any) -> None:
    tenant = make_tenant("badcsv")
    warehouse_id = _create(client, tenant, {"base_url": "https://wms.example.com"}).get_json()["id"]

    response = client.put(
        f"/api/v1/warehouses/{warehouse_id}/ship-methods",
        headers=tenant.headers(),
        data="code,name\nGRND,Ground\n,Nameless\n",
        content_type="text/csv",
    )

    assert response.status_code == 422 and list(response.get_json()["error"]["fields"]) == [
        "rows.3.code"
    ]
    db.session.expire_all()
    assert db.session.get(Warehouse, warehouse_id).settings["ship_methods"] == []


def test_a_connector_without_a_saved_catalogue_refuses_the_csv(app: Any, client: Any) -> None:
    tenant = make_tenant("nocsv")  # its warehouse is on the reference connector
    response = client.put(
        f"/api/v1/warehouses/{tenant.warehouse.id}/ship-methods",
        headers=tenant.headers(),
        data="code\nGRND\n",
        content_type="text/csv",
    )
    assert (
        response.status_code == 422
        and "settings.ship_methods" in response.get_json()["error"]["fields"]
    )
