"""S7 through the API: a generic-WMS warehouse saved with any of the hostile addresses of
``tests/test_outbound.py`` is refused on entry with a field error naming ``settings.base_url``
(nothing saved); a name that only DNS can judge is saved, and every call to it is refused when
DropStream connects (502, the address named), with no socket opened.

The app here is a production-like one: loopback sandboxes are not allowed.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from dropstream.extensions import db
from dropstream.stores.models import Warehouse
from dropstream.tenants.models import Role
from tests.conftest import _test_config
from tests.console.conftest import signed_in
from tests.security.conftest import running_app
from tests.tenancy import Tenant, make_tenant
from tests.test_outbound import HOSTILE, STUB_DNS, stub_resolver


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


#: Only DNS can tell what these names are: they are refused when DropStream connects.
AT_CONNECT = [url for url in HOSTILE if _host(url) in STUB_DNS]
#: Everything else is refused before it is stored.
ON_ENTRY = [url for url in HOSTILE if url not in AT_CONNECT]
GOOD = "https://wms.example.com/dropstream"
#: The words of every refusal (the outbound policy's and the settings schema's).
REASON = re.compile(r"is not|not allowed|use https|malformed|has no host|spaces or control|query")


@pytest.fixture(scope="module")
def strict_app(_schema: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_app(
        {**_test_config(_schema, tmp_path_factory.mktemp("instance")), "ALLOW_LOOPBACK": False}
    ) as app:
        yield app


@pytest.fixture(scope="module")
def provider(strict_app: Any) -> Tenant:
    return make_tenant("hostile")


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """DNS answered by the stub; any connection attempt recorded and refused."""
    attempts: list[Any] = []

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[6 if ":" in a else 4], socket.SOCK_STREAM, 6, "", (a, port))
            for a in stub_resolver(host, port)
        ]

    def refuse(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(address)
        raise AssertionError(f"a socket was opened to {address}")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def _save(strict_app: Any, provider: Tenant, url: str, warehouse_id: int | None = None) -> Any:
    client = strict_app.test_client()
    settings = {"base_url": url}
    if warehouse_id is None:
        return client.post(
            "/api/v1/warehouses",
            headers=provider.headers(),
            json={
                "name": "WMS",
                "connector_id": "wms_generic",
                "settings": settings,
                "credentials": {"token": "wms-token"},
            },
        )
    return client.patch(
        f"/api/v1/warehouses/{warehouse_id}",
        headers=provider.headers(),
        json={"settings": settings},
    )


def test_the_lists_cover_both_kinds() -> None:
    assert len(ON_ENTRY) >= 40 and len(AT_CONNECT) >= 10


@pytest.mark.parametrize("url", ON_ENTRY)
def test_a_hostile_address_is_refused_on_entry_naming_the_field(
    strict_app: Any, provider: Tenant, no_sockets: list[Any], url: str
) -> None:
    existing = _save(strict_app, provider, GOOD).get_json()["id"]
    count = db.session.scalar(select(func.count()).select_from(Warehouse))

    created, updated = _save(strict_app, provider, url), _save(strict_app, provider, url, existing)

    for response in (created, updated):
        assert response.status_code == 422, response.get_data(as_text=True)
        error = response.get_json()["error"]
        assert list(error["fields"]) == ["settings.base_url"], error
        assert len(error["fields"]["settings.base_url"][0]) > 15
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Warehouse)) == count
    assert db.session.get(Warehouse, existing).settings["base_url"] == GOOD
    assert no_sockets == []
    db.session.rollback()


@pytest.mark.parametrize("url", AT_CONNECT)
def test_a_name_resolving_inside_is_refused_when_dropstream_connects(
    strict_app: Any, provider: Tenant, no_sockets: list[Any], url: str
) -> None:
    saved = _save(strict_app, provider, url)
    assert saved.status_code == 201, saved.get_data(as_text=True)

    answer = strict_app.test_client().get(
        f"/api/v1/warehouses/{saved.get_json()['id']}/ship-methods", headers=provider.headers()
    )

    assert answer.status_code == 502, answer.get_data(as_text=True)
    error = answer.get_json()["error"]
    assert error["code"] == "unsafe_url" and "settings.base_url" in error["message"]
    assert "is not a public address" in error["message"] or "does not resolve" in error["message"]
    assert no_sockets == []
    db.session.rollback()


def test_the_console_refuses_them_too_next_to_the_field(
    strict_app: Any, provider: Tenant, no_sockets: list[Any]
) -> None:
    """The console's warehouse form goes through the same validation and says why by the field."""
    console = signed_in(strict_app.test_client(), provider, Role.PROVIDER_ADMIN)
    count = db.session.scalar(select(func.count()).select_from(Warehouse))
    db.session.rollback()
    problems = []
    for url in ON_ENTRY:
        page = console.post(
            "/console/warehouses",
            {
                "name": "WMS",
                "connector_id": "wms_generic",
                "settings.base_url": url,
                "credentials.token": "wms-token",
            },
        )
        body = page.get_data(as_text=True)
        if page.status_code != 422 or not re.search(
            REASON, body
        ):
            problems.append(f"{url!r} -> {page.status_code}")
    assert not problems, problems
    assert db.session.scalar(select(func.count()).select_from(Warehouse)) == count
    assert no_sockets == []
    db.session.rollback()
