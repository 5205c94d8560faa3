"""Helpers for API tests: a client that speaks as one user of a tenant."""

from __future__ import annotations

from typing import Any

import pytest

from dropstream.tenants.models import Role
from tests.tenancy import Tenant, make_tenant

PREFIX = "/api/v1"


class As:
    """``As(client, tenant, role).get("/stores")``: calls under /api/v1 with that user's key."""

    def __init__(self, client: Any, tenant: Tenant, role: Role = Role.PROVIDER_ADMIN) -> None:
        self.client, self.tenant, self.role = client, tenant, role

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.tenant.headers(self.role), **kwargs.pop("headers", {})}
        return self.client.open(PREFIX + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the error envelope with this status (and code); returns its error."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "fields"}
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
def tenant(app: object) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def admin(client: Any, tenant: Tenant) -> As:
    return As(client, tenant, Role.PROVIDER_ADMIN)


@pytest.fixture
def staff(client: Any, tenant: Tenant) -> As:
    return As(client, tenant, Role.PROVIDER_STAFF)


@pytest.fixture
def merchant_admin(client: Any, tenant: Tenant) -> As:
    return As(client, tenant, Role.MERCHANT_ADMIN)


@pytest.fixture
def viewer(client: Any, tenant: Tenant) -> As:
    return As(client, tenant, Role.MERCHANT_VIEWER)
