"""Helpers for console tests: a test client signed in as one user, posting forms with the
session's CSRF token as a browser would; for the browser tests, headless Chromium and a page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from dropstream.tenants.models import Role
from tests.console.browser import chromium, require_browser
from tests.tenancy import Tenant, make_tenant

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """``Console(client).sign_in(email, password)``, then ``get``/``post`` console pages."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.token = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        match = CSRF.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if not self.token:
            self.get("/console/sign-in")
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def sign_in(self, email: str, password: str) -> Any:
        self.get("/console/sign-in")
        response = self.post("/console/sign-in", {"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        self.get("/console/")  # the session's new token
        return response


def text(response: Any) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def tenant(app: object) -> Tenant:
    return make_tenant("acme")


def signed_in(client: Any, tenant: Tenant, role: Role = Role.PROVIDER_ADMIN) -> Console:
    console = Console(client)
    console.sign_in(tenant.users[role].email, tenant.password)
    return console


@pytest.fixture
def admin(client: Any, tenant: Tenant) -> Console:
    return signed_in(client, tenant, Role.PROVIDER_ADMIN)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, shared by a module's browser tests (skipped without one, outside CI)."""
    require_browser()
    with chromium() as running:
        yield running


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()
