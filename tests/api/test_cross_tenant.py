"""THE isolation test: every API route, called by another tenant's users with each of this
tenant's objects.

Routes are enumerated from the app's URL map, so a new endpoint joins this test by itself (and
fails it until its id parameters are listed in ``PARAM_KINDS`` and, if it takes a body, a valid
body is in ``BODIES`` — a body that fails validation would hide whether the lookup is scoped).
The objects are read from the database (every row of the tenant in the parameter's table), so a
new object of an existing kind is walked too; a nested route is also called with the caller's
own parent (my store, their listing). Collection routes are called once more for each id
filter they take in the query string (``?store_id=`` their store).

For a route with ids, tenant B's users must get 404 (or 403 where their role forbids the
action outright), never 2xx and never anything else. For a collection route any answer but a
5xx is fine, as long as nothing of tenant A is in it. Afterwards every row of tenant A must be
exactly as it was. ``tests/security/test_isolation_matrix.py`` runs the same walk with every
connector plugin loaded, together with the console's and the inbound endpoints'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Self

import pytest
from sqlalchemy import select

from dropstream.extensions import db
from dropstream.tenants.models import Role
from tests.api.conftest import PREFIX, As
from tests.api.data import Data, populate
from tests.api.test_openapi import api_rules
from tests.factories import StoreFactory
from tests.tenancy import make_tenant

#: URL parameter → the kind of object whose id fills it (a key of ``Data.ids`` and of
#: ``KIND_TABLES``).
PARAM_KINDS = {
    "merchant_id": "merchant_id", "user_id": "user_id", "warehouse_id": "warehouse_id",
    "store_id": "store_id", "listing_id": "listing_id", "rule_id": "rule_id",
    "order_id": "order_id", "shipment_id": "shipment_id", "alert_id": "alert_id",
}
#: Kind of object → the table its rows are in (the console adds its own kinds).
KIND_TABLES = {
    "merchant_id": "merchants", "user_id": "users", "warehouse_id": "warehouses",
    "store_id": "stores", "listing_id": "listings", "rule_id": "shipping_rules",
    "order_id": "orders", "shipment_id": "shipments", "alert_id": "alerts",
    "outbox_id": "outbox", "invitation_id": "console_invitations",
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
    ("warehouses.WarehouseShipMethods", "PUT"): {"data": "code,name\nHIJACK,X\n",
                                                  "content_type": "text/csv"},
    ("orders.OrderHold", "POST"): {"json": {"note": "hijacked"}},
    ("orders.OrdersBulk", "POST"): {"json": {"action": "cancel", "ids": ["{order_id}", "{held_order_id}"]}},
    ("session.SessionResource", "POST"): {"json": {"email": "provider_admin@victim.test",
                                                    "password": "a wrong password"}},
}
#: Methods needing no body.
NO_BODY = {"GET", "HEAD", "DELETE"}
MARKER = "victim"  # in every name and e-mail of tenant A


@dataclass
class Walk:
    """What a walk found, and how many requests it made."""

    problems: list[str] = field(default_factory=list)
    calls: int = 0

    def __iadd__(self, other: Walk) -> Self:
        self.problems += other.problems
        self.calls += other.calls
        return self


def param_names(rule: Any) -> list[str]:
    return re.findall(r"<(?:[^:<>]+(?:\([^)]*\))?:)?([^<>]+)>", rule.rule)


def fill(rule: Any, values: dict[str, Any], prefix: str = PREFIX) -> str:
    """The rule's path with each parameter taken from ``values`` (or the fixed value)."""
    path = rule.rule
    for name in param_names(rule):
        value = values[name] if name in values else PARAM_VALUES[name]
        path = re.sub(r"<[^<>]*\b" + re.escape(name) + ">", str(value), path, count=1)
    return path.removeprefix(prefix)


def owned_rows(table_name: str, **where: int) -> list[dict[str, Any]]:
    """Every row of ``table_name`` belonging to the tenant named by ``where`` (``provider_id=``
    or ``merchant_id=``), read with plain SQL (no ORM identity map, no tenant criteria)."""
    (column, value), = where.items()
    table = db.metadata.tables[table_name]
    owner_table = {"provider_id": "providers", "merchant_id": "merchants"}[column]
    if column in table.c:
        statement = select(table).where(table.c[column] == value)
    elif table.name == owner_table:
        statement = select(table).where(table.c.id == value)
    else:
        return []
    return [dict(row) for row in db.session.execute(statement.order_by(table.c.id)).mappings()]


def snapshot(**where: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tenant named by ``where``, in every table, read fresh from the database."""
    rows = {table.name: sorted(tuple(map(repr, row.values())) for row in owned_rows(table.name, **where))
            for table in db.metadata.sorted_tables}
    db.session.rollback()
    return rows


def objects(kinds: dict[str, str] = KIND_TABLES, **where: int) -> dict[str, list[dict[str, Any]]]:
    """Every object of the tenant named by ``where``, by kind (rows with their parent ids)."""
    found = {kind: owned_rows(table, **where) for kind, table in kinds.items()}
    db.session.rollback()
    return found


def id_values(names: list[str], kinds: dict[str, str], victim: dict[str, list[dict[str, Any]]],
              own: dict[str, int]) -> list[dict[str, Any]]:
    """The ways to fill a route's id parameters: every object of the innermost kind under its
    own parents, and (nested routes) under the caller's own parents."""
    ids = [name for name in names if name in kinds]
    if not ids:
        return [{}]
    *parents, leaf = ids
    fillings = []
    for row in victim[kinds[leaf]]:
        fillings.append({**{p: row.get(p, own[kinds[p]]) for p in parents}, leaf: row["id"]})
        if parents:
            fillings.append({**{p: own[kinds[p]] for p in parents}, leaf: row["id"]})
    return fillings


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


def query_filters(app: Any, endpoint: str) -> list[str]:
    """The id filters a GET route takes in its query string (``store_id`` …)."""
    view = app.view_functions[endpoint]
    handler = getattr(getattr(view, "view_class", None), "get", view)
    names: list[str] = []
    for parameter in getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", []):
        if parameter.get("in", parameter.get("location")) == "query":
            schema = parameter["schema"]
            schema = schema() if isinstance(schema, type) else schema
            names += [name for name in schema.fields if name in PARAM_KINDS]
    return names


def walk(client: Any, caller: As, victim: Data, own: Data, *, allow_403: bool,
         skip_params: frozenset[str] = frozenset(), where: dict[str, int] | None = None) -> Walk:
    """Call every API route as ``caller`` with each of the victim's objects (``where`` names the
    victim's rows: its provider unless given)."""
    result = Walk()
    victims = objects(**(where or {"provider_id": victim.tenant.provider.id}))
    for rule in api_rules(client.application):
        names = param_names(rule)
        if skip_params & set(names):
            continue
        # OPTIONS is Flask's automatic answer listing the methods: it reads no object.
        methods = sorted(rule.methods - {"OPTIONS"})
        has_ids = any(name in PARAM_KINDS for name in names)
        for method in methods:
            body_method = "GET" if method == "HEAD" else method
            for values in id_values(names, PARAM_KINDS, victims, own.ids):
                path = fill(rule, values)
                kwargs = {} if method in NO_BODY else body_for(rule.endpoint, body_method, victim.ids)
                result += _call(caller, method, path, kwargs, has_ids, allow_403, victims, skip_params)
            if method == "GET" and not has_ids:
                for name in query_filters(client.application, rule.endpoint):
                    for row in victims[PARAM_KINDS[name]]:
                        path = f"{fill(rule, {})}?{name}={row['id']}"
                        result += _call(caller, method, path, {}, False, allow_403, victims, skip_params)
    assert result.calls >= 40, f"the walk made only {result.calls} calls"
    return result


def _call(caller: As, method: str, path: str, kwargs: dict[str, Any], has_ids: bool,
          allow_403: bool, victims: dict[str, list[dict[str, Any]]], shared: frozenset[str]) -> Walk:
    response = caller.request(method, path, **kwargs)
    where = f"{caller.role.value} {method} {path} -> {response.status_code}"
    raw = response.get_data(as_text=True)
    problems = []
    if MARKER in raw.lower():
        problems.append(f"{where}: leaked {MARKER!r}: {raw[:200]}")
    if response.status_code >= 500:
        problems.append(f"{where}: server error")
    elif has_ids:
        allowed = {404, 403} if allow_403 else {404}
        if response.status_code not in allowed:
            problems.append(f"{where}: expected {sorted(allowed)}: {raw[:200]}")
    elif method == "GET" and response.status_code == 200:
        problems += leaked_ids(where, response.get_json(), victims, shared)
    return Walk(problems, 1)


def leaked_ids(where: str, body: Any, victims: dict[str, list[dict[str, Any]]],
               shared: frozenset[str]) -> list[str]:
    kinds = {"/merchants": "merchant_id", "/warehouses": "warehouse_id", "/stores": "store_id",
             "/orders": "order_id", "/shipments": "shipment_id", "/alerts": "alert_id",
             "/users": "user_id"}
    path = where.split()[2].split("?")[0]
    kind = kinds.get(path)
    if kind is None or kind in shared or not isinstance(body, dict):
        return []
    listed = {item.get("id") for item in body.get("items", [])}
    theirs = {row["id"] for row in victims[kind]}
    return [f"{where}: lists the victim's {kind} {sorted(listed & theirs)}"] if listed & theirs else []


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
    result = walk(client, caller, victim, intruder, allow_403=role is not Role.PROVIDER_ADMIN)
    assert not result.problems, "\n".join(result.problems)
    assert result.calls >= 100
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
        result = walk(client, caller, second, first, allow_403=True,
                      skip_params=frozenset({"warehouse_id"}), where={"merchant_id": other_merchant.id})
        assert not result.problems, "\n".join(result.problems)
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
