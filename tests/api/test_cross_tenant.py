"""THE isolation test: every API route, called by another tenant's users with this tenant's ids.

Routes are enumerated from the app's URL map, so a new endpoint joins this test by itself (and
fails it until its id parameters are listed in ``PARAM_KINDS`` and, if it takes a body, a valid
body is in ``BODIES`` — a body that fails validation would hide whether the lookup is scoped).

For a route with ids, tenant B's users must get 404 (or 403 where their role forbids the
action outright), never 2xx and never anything else. For a collection route any answer but a
5xx is fine, as long as nothing of tenant A is in it. Afterwards every row of tenant A must be
exactly as it was.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from dropstream.extensions import db
from dropstream.tenants.models import Role
from tests.api.conftest import PREFIX, As
from tests.api.data import Data, populate
from tests.api.test_openapi import api_rules
from tests.factories import StoreFactory
from tests.tenancy import make_tenant

#: URL parameter → the kind of object whose id fills it (a key of ``Data.ids``).
PARAM_KINDS = {
    "merchant_id": "merchant_id", "user_id": "user_id", "warehouse_id": "warehouse_id",
    "store_id": "store_id", "listing_id": "listing_id", "rule_id": "rule_id",
    "order_id": "order_id", "shipment_id": "shipment_id", "alert_id": "alert_id",
}
#: Non-id parameters and the value to use.
PARAM_VALUES = {"channel": "orders"}
#: A valid body per endpoint and method (JSON unless stated).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("merchants.Merchants", "POST"): {"json": {"name": "Mine"}},
    ("merchants.MerchantItem", "PATCH"): {"json": {"name": "Hijacked"}},
    ("users.Users", "POST"): {"json": {"email": "new@b.test", "role": "merchant_admin",
                                       "merchant_id": "{merchant_id}"}},
    ("warehouses.Warehouses", "POST"): {"json": {"name": "Mine", "connector_id": "reference-wms",
                                                 "settings": {"sandbox": "b"}}},
    ("warehouses.WarehouseItem", "PATCH"): {"json": {"name": "Hijacked", "credentials": {"token": "t"}}},
    ("stores.Stores", "POST"): {"json": {"name": "Mine", "connector_id": "reference-store",
                                         "merchant_id": "{merchant_id}", "warehouse_id": "{warehouse_id}",
                                         "settings": {"sandbox": "b"}}},
    ("stores.StoreItem", "PATCH"): {"json": {"name": "Hijacked", "safety_buffer": 5}},
    ("stores.StoreChannelItem", "PATCH"): {"json": {"paused": True}},
    ("stores.StoreChannelRun", "POST"): {"json": {"full": True}},
    ("stores.StorePause", "POST"): {"json": {"reason": "hijacked"}},
    ("listings.Listings", "POST"): {"json": {"store_sku": "HIJACK", "warehouse_sku": "X"}},
    ("listings.ListingItem", "PATCH"): {"json": {"warehouse_sku": "HIJACK"}},
    ("listings.ListingImport", "POST"): {"data": "store_sku,warehouse_sku\nHIJACK,X\n",
                                          "content_type": "text/csv"},
    ("shipping_rules.ShippingRules", "POST"): {"json": {"store_method": "Hijack", "warehouse_code": "X"}},
    ("shipping_rules.ShippingRuleItem", "PATCH"): {"json": {"warehouse_code": "HIJACK"}},
    ("orders.OrderHold", "POST"): {"json": {"note": "hijacked"}},
    ("orders.OrdersBulk", "POST"): {"json": {"action": "cancel", "ids": ["{order_id}", "{held_order_id}"]}},
    ("session.SessionResource", "POST"): {"json": {"email": "provider_admin@victim.test",
                                                    "password": "a wrong password"}},
}
#: Methods needing no body.
NO_BODY = {"GET", "HEAD", "DELETE"}
MARKER = "victim"  # in every name and e-mail of tenant A


def param_names(rule: Any) -> list[str]:
    return re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule.rule)


def fill(rule: Any, ids: list[dict[str, int]]) -> str:
    """The rule's path with parameter i taken from ``ids[i]`` (or the fixed value)."""
    path = rule.rule
    for index, name in enumerate(param_names(rule)):
        if name in PARAM_VALUES:
            value = PARAM_VALUES[name]
        else:
            assert name in PARAM_KINDS, f"{rule.rule}: add {name!r} to PARAM_KINDS"
            value = ids[min(index, len(ids) - 1)][PARAM_KINDS[name]]
        path = re.sub(r"<(?:[^:<>]+:)?" + re.escape(name) + ">", str(value), path, count=1)
    return path.removeprefix(PREFIX)


def body_for(endpoint: str, method: str, ids: dict[str, int]) -> dict[str, Any]:
    kwargs = BODIES.get((endpoint, method))
    if kwargs is None:
        return {}
    return _substitute(kwargs, ids)


def _substitute(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str) and re.fullmatch(r"{\w+}", value):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _substitute(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, ids) for v in value]
    return value


def snapshot(**where: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tenant named by ``where`` (``provider_id=`` or ``merchant_id=``), read
    fresh from the database with plain SQL (no ORM identity map, no tenant criteria)."""
    (column, value), = where.items()
    owner_table = {"provider_id": "providers", "merchant_id": "merchants"}[column]
    rows = {}
    for table in db.metadata.sorted_tables:
        if column in table.c:
            statement = select(table).where(table.c[column] == value)
        elif table.name == owner_table:
            statement = select(table).where(table.c.id == value)
        else:
            continue
        rows[table.name] = sorted(tuple(map(repr, row)) for row in db.session.execute(statement))
    db.session.rollback()
    return rows


def walk(client: Any, caller: As, victim: Data, own: Data, *, allow_403: bool,
         skip_params: frozenset[str] = frozenset()) -> list[str]:
    """Call every API route as ``caller`` with the victim's ids; return the violations."""
    problems: list[str] = []
    calls = 0
    for rule in api_rules(client.application):
        names = param_names(rule)
        if skip_params & set(names):
            continue
        # OPTIONS is Flask's automatic answer listing the methods: it reads no object.
        methods = sorted(rule.methods - {"OPTIONS"})
        variants = [[victim.ids]]
        if len([n for n in names if n in PARAM_KINDS]) > 1:
            variants.append([own.ids, victim.ids])  # my store, their listing
        for method in methods:
            body_method = "GET" if method == "HEAD" else method
            for ids in variants:
                path = fill(rule, ids)
                kwargs = {} if method in NO_BODY else body_for(rule.endpoint, body_method, victim.ids)
                response = caller.request(method, path, **kwargs)
                calls += 1
                where = f"{caller.role.value} {method} {path} -> {response.status_code}"
                raw = response.get_data(as_text=True)
                if MARKER in raw.lower():
                    problems.append(f"{where}: leaked {MARKER!r}: {raw[:200]}")
                if response.status_code >= 500:
                    problems.append(f"{where}: server error")
                elif [n for n in names if n in PARAM_KINDS]:
                    allowed = {404, 403} if allow_403 else {404}
                    if response.status_code not in allowed:
                        problems.append(f"{where}: expected {sorted(allowed)}: {raw[:200]}")
                elif method == "GET" and response.status_code == 200:
                    problems += leaked_ids(where, response.get_json(), victim, skip_params)
    assert calls >= 40, f"the walk made only {calls} calls"
    return problems


def leaked_ids(where: str, body: Any, victim: Data, shared: frozenset[str]) -> list[str]:
    kinds = {"/merchants": "merchant_id", "/warehouses": "warehouse_id", "/stores": "store_id",
             "/orders": "order_id", "/shipments": "shipment_id", "/alerts": "alert_id",
             "/users": "user_id"}
    path = where.split()[2].split("?")[0]
    kind = kinds.get(path)
    if kind is None or kind in shared or not isinstance(body, dict):
        return []
    ids = {item.get("id") for item in body.get("items", [])}
    return [f"{where}: lists the victim's {kind}"] if victim.ids[kind] in ids else []


@pytest.fixture
def two_tenants(app: Any) -> tuple[Data, Data]:
    victim = populate(make_tenant(MARKER, sandbox=MARKER))
    intruder = populate(make_tenant("intruder", sandbox="intruder"))
    return victim, intruder


@pytest.mark.parametrize("role", [Role.PROVIDER_ADMIN, Role.MERCHANT_ADMIN])
def test_another_tenant_sees_and_changes_nothing(client, two_tenants, role):
    victim, intruder = two_tenants
    before = snapshot(provider_id=victim.tenant.provider.id)
    caller = As(client, intruder.tenant, role)
    problems = walk(client, caller, victim, intruder, allow_403=role is not Role.PROVIDER_ADMIN)
    assert not problems, "\n".join(problems)
    assert snapshot(provider_id=victim.tenant.provider.id) == before


def test_the_walk_covers_every_route_and_method(app):
    """Guards the guard: every API route has its parameters known, and the walk reaches it."""
    for rule in api_rules(app):
        for name in param_names(rule):
            assert name in PARAM_KINDS or name in PARAM_VALUES, f"{rule.rule}: unknown {name!r}"
        for method in rule.methods - {"HEAD", "OPTIONS", "GET", "DELETE"}:
            documented_body = (rule.endpoint, method) in BODIES
            takes_body = _takes_body(app, rule.endpoint, method)
            assert documented_body or not takes_body, f"add a body for {method} {rule.rule} to BODIES"


def _takes_body(app: Any, endpoint: str, method: str) -> bool:
    view = app.view_functions[endpoint]
    handler = getattr(getattr(view, "view_class", None), method.lower(), view)
    arguments = getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    for parameter in arguments:
        schema = parameter["schema"]
        schema = schema() if isinstance(schema, type) else schema
        if parameter.get("location", "json") in ("json", "form", "files") and any(
                field.required for field in schema.fields.values()):
            return True
    return False


def test_merchants_of_one_provider_are_isolated_but_staff_see_both(client, app):
    tenant = make_tenant("acme")
    first = populate(tenant)
    from tests.factories import MerchantFactory

    other_merchant = MerchantFactory(provider_id=tenant.provider.id, name=f"{MARKER} goods")
    other_store = StoreFactory(provider_id=tenant.provider.id, merchant_id=other_merchant.id,
                               warehouse_id=tenant.warehouse.id, name=f"{MARKER} shop",
                               settings={"sandbox": MARKER})
    db.session.commit()
    second = populate(tenant, store=other_store)
    second.ids["user_id"] = first.ids["user_id"]  # user routes are provider-admin only anyway
    before = snapshot(merchant_id=other_merchant.id)
    for role in (Role.MERCHANT_ADMIN, Role.MERCHANT_VIEWER):
        caller = As(client, tenant, role)
        # The warehouse is the provider's, shared by both merchants: visible to both.
        problems = walk(client, caller, second, first, allow_403=True,
                        skip_params=frozenset({"warehouse_id"}))
        assert not problems, "\n".join(problems)
    assert snapshot(merchant_id=other_merchant.id) == before

    staff = As(client, tenant, Role.PROVIDER_STAFF)
    stores = {s["id"] for s in staff.get("/stores").get_json()["items"]}
    assert {first.ids["store_id"], second.ids["store_id"]} <= stores
    for data in (first, second):
        for path in (f"/stores/{data.ids['store_id']}", f"/orders/{data.ids['order_id']}",
                     f"/stores/{data.ids['store_id']}/listings/{data.ids['listing_id']}",
                     f"/shipments/{data.ids['shipment_id']}", f"/alerts/{data.ids['alert_id']}",
                     f"/merchants/{data.ids['merchant_id']}"):
            assert staff.get(path).status_code == 200, path
