"""Who may open which console page: every route walked from the app's URL map as another
tenant's users with each of the tenant's objects (404, nothing changed), each role's limits
(403), sign-in and CSRF."""

from __future__ import annotations

from typing import Any

import pytest

from dropstream.console.models import Invitation
from dropstream.db import utcnow
from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem, OutboxState
from dropstream.tenants.models import Role
from tests.api.data import Data, populate
from tests.api.test_cross_tenant import (
    KIND_TABLES,
    Walk,
    fill,
    id_values,
    objects,
    param_names,
    snapshot,
)
from tests.console.conftest import Console, signed_in, text
from tests.tenancy import make_tenant

#: URL parameter → the kind of object (a key of ``KIND_TABLES``) or a fixed value.
PARAM_IDS = {"order_id": "order_id", "store_id": "store_id", "listing_id": "listing_id",
             "rule_id": "rule_id", "alert_id": "alert_id", "item_id": "outbox_id",
             "invitation_id": "invitation_id", "warehouse_id": "warehouse_id"}
PARAM_VALUES = {"step": "3", "channel": "orders", "action": "reprocess"}
#: Public pages take no id of a tenant's object (the invitation token is its own credential).
PUBLIC = {"console.sign_in", "console.accept_invitation", "console.static"}
#: Form data for posts whose form would otherwise be refused before the lookup.
FORMS = {"console.create_listing": {"new.store_sku": "HIJACK", "new.warehouse_sku": "X"},
         "console.update_listing": {"store_sku": "HIJACK", "warehouse_sku": "X"},
         "console.save_rule": {"store_method": "Hijack", "warehouse_code": "X"},
         "console.set_channel": {"paused": "1"}, "console.save_status": {"status": "pending"},
         "console.save_credentials": {"name": "Hijacked"},
         "console.save_warehouse_credentials": {"credentials.token": "hijacked"}}
#: Forms at an address without ids that name the victim's objects in their fields: the answer
#: may be a redirect or a refusal, but nothing of the victim may change or be shown.
FORMS_NAMING = {
    "console.orders_bulk": [{"action": action, "ids": "{order_id}"}
                            for action in ("reprocess", "release", "hold", "cancel")],
    "console.create_store": [{"name": "Mine", "connector_id": "reference-store",
                              "merchant_id": "{merchant_id}", "warehouse_id": "{warehouse_id}",
                              "settings.sandbox": "x"}],
    "console.invite_user": [{"email": "new@intruder.test", "role": "merchant_admin",
                             "merchant_id": "{merchant_id}"}],
}
#: Pages without ids whose query string names an object: (endpoint, parameter, kind).
QUERIES = [("console.orders", "store_id", "store_id"), ("console.new_store", "merchant_id", "merchant_id"),
           ("console.new_store", "warehouse_id", "warehouse_id")]


def console_rules(app: Any) -> list[Any]:
    return [rule for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("console.") and rule.endpoint not in PUBLIC]


def params(rule: Any) -> list[str]:
    return param_names(rule)


def victim_data(name: str) -> Data:
    data = populate(make_tenant(name, sandbox=name))
    add_console_objects(data)
    return data


def add_console_objects(data: Data) -> None:
    """A dead outbox item (the queue page retries it) and an invitation of ``data``'s tenant."""
    tenant = data.tenant
    item = OutboxItem(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id,
                      store_id=tenant.store.id, kind="order.forward", subject_id=data.ids["order_id"],
                      dedupe_key=f"dead:{tenant.provider.slug}", state=OutboxState.DEAD, last_error="boom")
    invitation = Invitation(provider_id=tenant.provider.id, email=f"new@{tenant.provider.slug}.test",
                            role=Role.PROVIDER_STAFF, token_hash=tenant.provider.slug * 4,
                            expires_at=utcnow())
    db.session.add_all([item, invitation])
    db.session.commit()
    data.ids.update(outbox_id=item.id, invitation_id=invitation.id)


def walk_console(console: Console, role: Role, own: dict[str, int], *, marker: str = "victim",
                 **where: int) -> Walk:
    """Open every console page and post every form as ``console``'s user, with each object of
    the tenant named by ``where``; return the violations and the number of requests."""
    app = console.client.application
    result = Walk()
    victims = objects(**where)
    allowed = {404} if role is Role.PROVIDER_ADMIN else {404, 403}

    def check(method: str, path: str, response: Any, statuses: set[int]) -> None:
        result.calls += 1
        if response.status_code not in statuses:
            result.problems.append(f"{role.value} {method} {path} -> {response.status_code}")
        if marker in text(response).lower():
            result.problems.append(f"{role.value} {method} {path}: shows the victim's data")

    for rule in console_rules(app):
        names = params(rule)
        if not any(name in PARAM_IDS for name in names):
            continue
        kinds = {name: PARAM_IDS[name] for name in names if name in PARAM_IDS}
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for values in id_values(names, kinds, victims, own):
                path = fill(rule, {**PARAM_VALUES, **values}, prefix="")
                response = (console.get(path) if method == "GET"
                            else console.post(path, FORMS.get(rule.endpoint, {})))
                check(method, path, response, allowed)
    by_endpoint = {rule.endpoint: rule.rule for rule in console_rules(app)}
    for endpoint, forms in FORMS_NAMING.items():
        for form in forms:
            for row in victims[_kind_named(form)]:
                data = {key: str(row["id"]) if value.startswith("{") else value
                        for key, value in form.items()}
                response = console.post(by_endpoint[endpoint], data)
                check("POST", by_endpoint[endpoint], response, {302, 403, 404, 422})
                if response.status_code == 302:
                    check("GET", response.headers["Location"], console.get(response.headers["Location"]),
                          {200, 403, 404, 422})
    for endpoint, name, kind in QUERIES:
        for row in victims[kind]:
            path = f"{by_endpoint[endpoint]}?{name}={row['id']}"
            check("GET", path, console.get(path), {200, 403, 404, 422})
    return result


def _kind_named(form: dict[str, str]) -> str:
    """The kind of the first victim object a form names (its first ``{kind}`` placeholder)."""
    return next(value[1:-1] for value in form.values() if value.startswith("{"))


def test_every_route_takes_only_known_parameters(app):
    for rule in console_rules(app):
        for name in params(rule):
            assert name in PARAM_IDS or name in PARAM_VALUES, f"{rule.rule}: add {name!r} here"
    assert set(PARAM_IDS.values()) <= set(KIND_TABLES)


@pytest.mark.parametrize("role", [Role.PROVIDER_ADMIN, Role.MERCHANT_ADMIN])
def test_another_tenant_gets_404_on_every_page_and_changes_nothing(client, app, role):
    victim = victim_data("victim")
    intruder = populate(make_tenant("intruder", sandbox="intruder"))
    before = snapshot(provider_id=victim.tenant.provider.id)
    console = signed_in(client, intruder.tenant, role)
    result = walk_console(console, role, intruder.ids, provider_id=victim.tenant.provider.id)
    assert result.calls >= 50
    assert not result.problems, "\n".join(result.problems)
    assert snapshot(provider_id=victim.tenant.provider.id) == before


def test_lists_show_only_the_callers_tenant(client):
    victim = victim_data("victim")
    intruder = make_tenant("intruder", sandbox="intruder")
    populate(intruder)
    console = signed_in(client, intruder, Role.PROVIDER_ADMIN)
    for path in ("/console/", "/console/orders", "/console/stores", "/console/alerts",
                 "/console/queues", "/console/users", "/console/warehouses",
                 f"/console/orders?q=R-{victim.ids['store_id']}"):
        response = console.get(path)
        assert response.status_code == 200, path
        assert "victim" not in text(response).lower(), path


ADMIN_ONLY = ("/console/users", "/console/queues")
PROVIDER_ONLY = ("/console/warehouses",)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_its_pages(client, tenant, role):
    data = populate(tenant)
    console = signed_in(client, tenant, role)
    for path in ("/console/", "/console/orders", f"/console/orders/{data.ids['order_id']}",
                 f"/console/stores/{data.ids['store_id']}", f"/console/stores/{data.ids['store_id']}/setup/4",
                 "/console/alerts", "/console/account"):
        assert console.get(path).status_code == 200, (role, path)
    for path in ADMIN_ONLY:
        assert console.get(path).status_code == (200 if role is Role.PROVIDER_ADMIN else 403), (role, path)
    for path in PROVIDER_ONLY:
        assert console.get(path).status_code == (200 if role.is_provider else 403), (role, path)


def test_a_viewer_changes_nothing_but_may_sign_out(client, tenant):
    data = populate(tenant)
    console = signed_in(client, tenant, Role.MERCHANT_VIEWER)
    before = snapshot(provider_id=tenant.provider.id)
    response = console.post(f"/console/orders/{data.ids['held_order_id']}/release")
    assert response.status_code == 403
    assert "can view but not change" in text(response)
    assert "Apply to ticked orders" not in text(console.get("/console/orders"))
    assert snapshot(provider_id=tenant.provider.id) == before
    assert console.post("/console/sign-out").status_code == 302
    assert console.get("/console/orders").status_code == 302  # signed out


def test_signed_out_visitors_are_sent_to_sign_in(client, tenant):
    response = client.get("/console/orders?status=on_hold")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/sign-in?next=")
    assert client.get("/").headers["Location"] == "/console/"


def test_wrong_password_keeps_the_email_and_says_so(client, tenant):
    console = Console(client)
    console.get("/console/sign-in")
    response = console.post("/console/sign-in", {"email": tenant.users[Role.PROVIDER_ADMIN].email,
                                                 "password": "not the password"})
    assert response.status_code == 401
    page = text(response)
    assert "Wrong e-mail or password." in page
    assert f'value="{tenant.users[Role.PROVIDER_ADMIN].email}"' in page
    assert "not the password" not in page


def test_sign_in_only_redirects_within_the_site(client, tenant):
    console = Console(client)
    console.get("/console/sign-in")
    response = console.post("/console/sign-in?next=https://evil.example/", {
        "email": tenant.users[Role.PROVIDER_ADMIN].email, "password": tenant.password})
    assert response.headers["Location"] == "/console/"


def test_forms_without_the_csrf_token_are_refused(client, tenant):
    data = populate(tenant)
    console = signed_in(client, tenant, Role.PROVIDER_ADMIN)
    before = snapshot(provider_id=tenant.provider.id)
    response = client.post(f"/console/orders/{data.ids['order_id']}/cancel", data={})
    assert response.status_code == 400
    response = client.post(f"/console/orders/{data.ids['order_id']}/cancel", data={"csrf_token": "forged"})
    assert response.status_code == 400 and "expired" in text(response)
    assert snapshot(provider_id=tenant.provider.id) == before
    assert console.post(f"/console/orders/{data.ids['order_id']}/cancel").status_code == 302


def test_signing_in_to_the_console_also_signs_in_to_the_api(client, tenant):
    console = signed_in(client, tenant, Role.MERCHANT_ADMIN)
    me = client.get("/api/v1/session").get_json()
    assert me["user"]["email"] == tenant.users[Role.MERCHANT_ADMIN].email
    assert me["csrf_token"] == console.token  # one session, one CSRF token
