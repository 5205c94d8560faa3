"""The BigCommerce set-up checks: each one says what it found and, when it fails, what to do.

1. The credentials: ``GET /v2/store`` answers and its ``id`` is the store hash entered. A wrong
   token (401), a wrong hash (404, or 403 everywhere) and a token lacking only the Information
   scope (403 here, 200 elsewhere) each get their own message.
2. Every scope DropStream needs, probed with one cheap call each; a 403 names the scope and
   where to grant it. (Write scopes are probed with writes that change nothing: a status update
   of order 0, an inventory adjustment of no items.)
3. The store's order statuses, with their custom labels, so the monitored one can be chosen by
   id; the check fails if the chosen ids do not exist.
4. Products and variants without a SKU (their orders would be held).
5. Shipping methods shoppers chose in the last 30 days that no shipping rule maps.
6. Products with inventory tracking off (optional: only stock updates need it).
7. DropStream's webhooks: registered, active, carrying the store's secret (repaired here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dropstream.connectors.base import AuthError, ConnectorError, RejectedError, RemoteNotFound
from dropstream.connectors.types import SetupCheck
from dropstream_bigcommerce import hooks
from dropstream_bigcommerce.client import BigCommerceClient
from dropstream_bigcommerce.mapping import rfc2822

MAX_DETAILS = 50
INFORMATION_MISSING = "cannot read the store's details"
RECENT = timedelta(days=30)
GRANT = (
    "Grant it under Settings › Store-level API accounts (create a new account: the scopes "
    "of an existing one cannot be changed), then enter the new credentials; for the app, "
    "re-install it."
)

#: (check key, control-panel name, level, probe) — one cheap call per scope DropStream needs.
PROBES: Sequence[tuple[str, str, str, Callable[[BigCommerceClient], Any]]] = (
    ("orders", "Orders", "Modify", lambda c: c.put("/v2/orders/0", {"status_id": 0})),
    ("products", "Products", "Read-only", lambda c: c.get("/v3/catalog/products", {"limit": 1})),
    (
        "inventory",
        "Store Inventory",
        "Modify",
        lambda c: c.put(
            "/v3/inventory/adjustments/absolute", {"reason": "DropStream set-up check", "items": []}
        ),
    ),
    (
        "locations",
        "Store Locations",
        "Read-only",
        lambda c: c.get("/v3/inventory/locations", {"limit": 1}),
    ),
)


def run(connector: Any) -> list[SetupCheck]:
    with connector.client() as client:
        credentials = check_credentials(client)
        if not credentials.passed:
            return [credentials]
        checks = [credentials, *check_scopes(client, credentials)]
        checks.append(
            _guard(
                "order_statuses",
                "Order statuses",
                lambda: check_statuses(client, connector.settings),
            )
        )
        catalog = _catalog(client)
        checks.append(_guard("skus", "Every product has a SKU", lambda: check_skus(catalog)))
        checks.append(
            _guard(
                "shipping_rules",
                "Shipping methods have shipping rules",
                lambda: check_shipping(client, connector),
                required=False,
            )
        )
        checks.append(
            _guard(
                "inventory_tracking",
                "Inventory tracking is on",
                lambda: check_tracking(catalog),
                required=False,
            )
        )
        checks.append(
            _guard(
                "webhooks",
                "Webhooks registered and active",
                lambda: check_webhooks(client, connector),
                fix="BigCommerce must reach DropStream at PUBLIC_BASE_URL: an https "
                "address on port 443. Correct it, then run the checks again.",
            )
        )
        return checks


def _guard(
    key: str,
    title: str,
    run_check: Callable[[], SetupCheck],
    required: bool = True,
    fix: str = "Fix what the message says, then run the checks again.",
) -> SetupCheck:
    """A check that could not run fails with the remote's words instead of failing them all."""
    try:
        return run_check()
    except ConnectorError as error:
        return SetupCheck(key, title, False, error.message, fix, required=required)


def _count(items: Sequence[Any], one: str, many: str) -> str:
    return f"{len(items)} {one if len(items) == 1 else many}"


def _listed(items: Sequence[str]) -> tuple[str, ...]:
    shown = tuple(items[:MAX_DETAILS])
    return shown + ((f"… and {len(items) - MAX_DETAILS} more",) if len(items) > MAX_DETAILS else ())


# ------------------------------------------------------------------------------------------------


def check_credentials(client: BigCommerceClient) -> SetupCheck:
    title = "BigCommerce accepts the credentials"
    try:
        store = client.get("/v2/store")
    except AuthError as error:
        if error.remote_status == 401:
            return SetupCheck(
                "credentials",
                title,
                False,
                "BigCommerce refused the access token "
                "(401): it is wrong, or its API account was deleted.",
                "Copy the Access Token of the store-level API account again (Settings "
                "› Store-level API accounts); if the account is gone, create a new "
                "one with token type V2/V3 API token.",
                field="credentials.access_token",
            )
        if error.remote_status != 403:
            return SetupCheck(
                "credentials",
                title,
                False,
                error.message,
                "Check the API address setting and the credentials.",
            )
        return _without_information_scope(client, title)
    except RemoteNotFound:
        return _wrong_hash(client.store_hash, title)
    found = str((store or {}).get("id") or "") if isinstance(store, dict) else ""
    if found != client.store_hash:
        return SetupCheck(
            "credentials",
            title,
            False,
            f"The access token belongs to store {found or '(unknown)'}, not to "
            f"store hash {client.store_hash}.",
            "Correct the store hash: it is the part between /stores/ and /v3/ in the "
            "API path shown with the API account.",
            field="credentials.store_hash",
        )
    name = store.get("name") or found
    return SetupCheck(
        "credentials",
        title,
        True,
        f"Connected to {name} ({store.get('domain') or found}, "
        f"plan {store.get('plan_name') or 'unknown'}).",
    )


def _wrong_hash(store_hash: str, title: str) -> SetupCheck:
    return SetupCheck(
        "credentials",
        title,
        False,
        f"BigCommerce refused every call for store "
        f"{store_hash} (403): the store hash is wrong, or the API account has none "
        "of the scopes DropStream needs.",
        "Correct the store hash: it is the part "
        "between /stores/ and /v3/ in the API path shown with the API account. If "
        f"it is right, grant the scopes listed in the set-up guide. {GRANT}",
        field="credentials.store_hash",
    )


def _without_information_scope(client: BigCommerceClient, title: str) -> SetupCheck:
    """``/v2/store`` said 403: a token lacking only Information & Settings still reads its
    order statuses; a wrong hash (or a token with no scope at all) is refused there too."""
    try:
        client.get("/v2/order_statuses")
    except (AuthError, RemoteNotFound):
        return _wrong_hash(client.store_hash, title)
    return SetupCheck(
        "credentials",
        title,
        True,
        "The access token works for store "
        f"{client.store_hash}, but {INFORMATION_MISSING} (see the Information & "
        "Settings scope below).",
    )


def check_scopes(client: BigCommerceClient, credentials: SetupCheck) -> list[SetupCheck]:
    information = INFORMATION_MISSING not in credentials.message
    checks = [
        SetupCheck(
            "scope.information",
            "Scope: Information & Settings (Read-only)",
            information,
            "Granted."
            if information
            else "The API account lacks Information & Settings: Read-only "
            "(store_v2_information_read_only).",
            "" if information else f"Grant Information & Settings: Read-only. {GRANT}",
        )
    ]
    for key, label, level, probe in PROBES:
        title = f"Scope: {label} ({level})"
        try:
            probe(client)
        except AuthError as error:
            checks.append(
                SetupCheck(
                    f"scope.{key}", title, False, error.message, f"Grant {label}: {level}. {GRANT}"
                )
            )
            continue
        except (RemoteNotFound, RejectedError):
            pass  # refused on its merits: the call got past the permission check
        checks.append(SetupCheck(f"scope.{key}", title, True, "Granted."))
    return checks


def order_statuses(client: BigCommerceClient) -> list[tuple[int, str]]:
    """``(id, label)`` of the store's statuses; the label is the store's custom one if renamed."""
    statuses = client.get("/v2/order_statuses") or []
    found = []
    for status in statuses if isinstance(statuses, list) else []:
        if isinstance(status, dict) and isinstance(status.get("id"), int):
            name = status.get("name") or status.get("system_label") or str(status["id"])
            custom = status.get("custom_label")
            found.append(
                (status["id"], f"{custom} ({name})" if custom and custom != name else name)
            )
    return sorted(found)


def check_statuses(client: BigCommerceClient, settings: dict[str, Any]) -> SetupCheck:
    statuses = dict(order_statuses(client))
    details = tuple(f"{status_id}: {label}" for status_id, label in statuses.items())
    monitored = settings.get("monitored_status_id")
    sent = settings.get("sent_status_id")
    problems = []
    if monitored not in statuses:
        problems.append(f"monitored status {monitored}")
    if sent and sent not in statuses:
        problems.append(f"sent status {sent}")
    if problems:
        return SetupCheck(
            "order_statuses",
            "Order statuses",
            False,
            f"The store has no {' and no '.join(problems)}.",
            "Choose the statuses by id from the list (settings monitored_status_id "
            "and sent_status_id).",
            details,
        )
    message = f"Orders are imported at {monitored}: {statuses[monitored]}"
    message += (
        f"; sent orders move to {sent}: {statuses[sent]}." if sent else "; the sent status is off."
    )
    return SetupCheck("order_statuses", "Order statuses", True, message, "", details)


def _catalog(client: BigCommerceClient) -> list[dict[str, Any]] | ConnectorError:
    try:
        return [
            product
            for page in client.v3_pages(
                "/v3/catalog/products",
                {"include": "variants", "include_fields": "id,name,sku,inventory_tracking"},
            )
            for product in page
            if isinstance(product, dict)
        ]
    except ConnectorError as error:
        return error


def check_skus(catalog: list[dict[str, Any]] | ConnectorError) -> SetupCheck:
    if isinstance(catalog, ConnectorError):
        raise catalog
    missing = []
    for product in catalog:
        variants = [v for v in product.get("variants") or [] if isinstance(v, dict)]
        options = [v for v in variants if v.get("option_values")]
        if options:
            missing += [
                f"{product.get('name')} (variant {v.get('id')})"
                for v in options
                if not (v.get("sku") or "").strip()
            ]
        elif not (product.get("sku") or "").strip():
            missing.append(f"{product.get('name')} (product {product.get('id')})")
    if missing:
        return SetupCheck(
            "skus",
            "Every product has a SKU",
            False,
            f"{_count(missing, 'product or variant', 'products or variants')} without a "
            "SKU; orders with them are held until they have one.",
            "Give each one a SKU in BigCommerce (it need "
            "not match the warehouse's: map it with a listing).",
            _listed(missing),
            required=False,
        )
    return SetupCheck(
        "skus",
        "Every product has a SKU",
        True,
        f"All {len(catalog)} products have SKUs.",
        required=False,
    )


def check_tracking(catalog: list[dict[str, Any]] | ConnectorError) -> SetupCheck:
    if isinstance(catalog, ConnectorError):
        raise catalog
    off = [
        f"{p.get('name')} ({p.get('sku') or 'no SKU'})"
        for p in catalog
        if p.get("inventory_tracking") == "none"
    ]
    if off:
        return SetupCheck(
            "inventory_tracking",
            "Inventory tracking is on",
            False,
            f"{_count(off, 'product does', 'products do')} not track inventory; stock "
            "DropStream pushes for them is skipped and reported.",
            "Only needed for stock updates: in "
            "BigCommerce set Track inventory (on the product or by option) for each.",
            _listed(off),
            required=False,
        )
    return SetupCheck(
        "inventory_tracking",
        "Inventory tracking is on",
        True,
        "Every product tracks inventory.",
        required=False,
    )


def check_shipping(client: BigCommerceClient, connector: Any) -> SetupCheck:
    title = "Shipping methods have shipping rules"
    since = datetime.now(UTC) - RECENT
    orders = client.get(
        "/v2/orders",
        {
            "min_date_created": rfc2822(since),
            "limit": 250,
            "include": "consignments",
            "consignment_structure": "object",
        },
    )
    methods: list[str] = []
    for order in orders if isinstance(orders, list) else []:
        consignments = order.get("consignments") if isinstance(order, dict) else None
        if isinstance(consignments, list) and len(consignments) == 1:
            consignments = consignments[0]
        for shipping in (
            (consignments or {}).get("shipping") or [] if isinstance(consignments, dict) else []
        ):
            method = (
                (shipping.get("shipping_method") or "").strip()
                if isinstance(shipping, dict)
                else ""
            )
            if method and method not in methods:
                methods.append(method)
    unmapped_of = getattr(connector.context, "unmapped_shipping_methods", None)
    if not methods:
        return SetupCheck(
            "shipping_rules",
            title,
            True,
            "No order in the last 30 days names a "
            "shipping method yet; orders with an unmapped one will be held with its "
            "name.",
            required=False,
        )
    if unmapped_of is None:
        return SetupCheck(
            "shipping_rules",
            title,
            True,
            f"Shipping methods in use: {', '.join(methods)}.",
            "",
            tuple(methods),
            required=False,
        )
    unmapped = list(unmapped_of(methods))
    if unmapped:
        return SetupCheck(
            "shipping_rules",
            title,
            False,
            f"{_count(unmapped, 'shipping method', 'shipping methods')} shoppers chose "
            "without a shipping rule; their orders are held.",
            "Add a shipping rule for each (the method's "
            "name as shown, and the warehouse's ship code), or a default rule.",
            _listed(unmapped),
            required=False,
        )
    return SetupCheck(
        "shipping_rules",
        title,
        True,
        f"All {len(methods)} shipping methods in use have a rule.",
        "",
        tuple(methods),
        required=False,
    )


def check_webhooks(client: BigCommerceClient, connector: Any) -> SetupCheck:
    report = hooks.ensure(client, connector)
    said = []
    if report.created:
        said.append(f"registered {', '.join(report.created)}")
    if report.reactivated:
        said.append(f"re-activated {', '.join(report.reactivated)}")
    return SetupCheck(
        "webhooks",
        "Webhooks registered and active",
        True,
        ("Webhooks " + "; ".join(said) + "." if said else "Webhooks are active.")
        + f" They call {connector.webhook_url()}.",
        details=tuple(hooks.SCOPES),
    )
