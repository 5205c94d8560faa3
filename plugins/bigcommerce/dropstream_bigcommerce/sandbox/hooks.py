"""Webhooks V3 management: ``/v3/hooks`` (webhooks.v3.yml, bigcommerce.md §4.1).

Responses are wrapped ``{data, meta}``; a token sees and changes only its own client id's hooks
(another client's hook is 404). One hook per store + client + scope + destination, at most ten
per store + client + scope. Hooks need no OAuth scope (the ``default`` scope).

Sandbox exception: the real API takes only ``https`` destinations on port 443. The sandbox also
takes plain ``http`` to a loopback address (``127.0.0.1``, ``localhost``, ``::1``) on any port,
so tests and the demo can receive deliveries locally.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any
from urllib.parse import urlsplit

from .errors import ApiError
from .formats import v3_page
from .routing import Call, Reply, Route
from .state import Hook

SCOPES = frozenset((
    "store/app/uninstalled", "store/information/updated", "store/order/*", "store/order/created",
    "store/order/updated", "store/order/archived", "store/order/statusUpdated",
    "store/order/message/created", "store/order/refund/created", "store/shipment/*",
    "store/shipment/created", "store/shipment/updated", "store/shipment/deleted",
    "store/product/*", "store/product/created", "store/product/updated", "store/product/deleted",
    "store/product/inventory/updated", "store/product/inventory/order/updated", "store/sku/*",
    "store/sku/created", "store/sku/updated", "store/sku/deleted", "store/sku/inventory/updated",
    "store/sku/inventory/order/updated", "store/customer/*", "store/customer/created",
    "store/customer/updated", "store/customer/deleted", "store/cart/*", "store/cart/created",
    "store/cart/updated", "store/cart/deleted", "store/cart/converted", "store/category/*",
    "store/category/created", "store/category/updated", "store/category/deleted",
    "store/channel/*", "store/channel/created", "store/channel/updated", "store/subscriber/*",
    "store/subscriber/created", "store/subscriber/updated", "store/subscriber/deleted",
))
MAX_PER_SCOPE = 10
INVALID = "JSON data is missing or invalid"


def hook_json(hook: Hook) -> dict[str, Any]:
    return {"id": hook.id, "client_id": hook.client_id, "store_hash": hook.store_hash,
            "scope": hook.scope, "destination": hook.destination, "is_active": hook.is_active,
            "headers": dict(hook.headers) if hook.headers is not None else None,
            "created_at": hook.created_at, "updated_at": hook.updated_at}


def _invalid(field: str, why: str) -> ApiError:
    return ApiError(422, INVALID, errors={field: why})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_destination(destination: Any) -> str:
    if not isinstance(destination, str) or not destination:
        raise _invalid("destination", "error.path.missing.")
    try:
        parts = urlsplit(destination)
        port = parts.port
    except ValueError:
        raise _invalid("destination", "not a valid URL") from None
    host = parts.hostname or ""
    if parts.scheme == "https" and host and port in (None, 443):
        return destination
    if parts.scheme == "http" and _is_loopback(host):
        return destination  # the sandbox exception, see the module docstring
    raise _invalid("destination", "must be an https URL served on port 443 (the sandbox also "
                                  "takes http://127.0.0.1:PORT/...)")


def _check_headers(headers: Any) -> dict[str, str] | None:
    if headers is None:
        return None
    if not isinstance(headers, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in headers.items()):
        raise _invalid("headers", "must be an object of string names to string values")
    if len(headers) > 64 or any(len(key.encode()) > 64 or len(value.encode()) > 8192
                                for key, value in headers.items()):
        raise _invalid("headers", "at most 64 headers, names up to 64 bytes, values up to 8 KB")
    return dict(headers)


def _check_scope(scope: Any) -> str:
    if not isinstance(scope, str) or not scope:
        raise _invalid("scope", "error.path.missing.")
    if scope not in SCOPES:
        raise _invalid("scope", f"{scope!r} is not a webhook scope, such as store/order/created")
    return scope


def _check_unique(call: Call, scope: str, destination: str, exclude: int | None = None) -> None:
    mine = [hook for hook in call.store.hooks.values()
            if hook.client_id == call.account.client_id and hook.scope == scope
            and hook.id != exclude]
    if any(hook.destination == destination for hook in mine):
        raise _invalid("destination", f"a hook for {scope} to this destination already exists; "
                                      "update it (PUT /v3/hooks/{id}) instead")
    if len(mine) >= MAX_PER_SCOPE:
        raise _invalid("scope", f"at most {MAX_PER_SCOPE} hooks per scope")


def _mine(call: Call, hook_id: int) -> Hook:
    hook = call.store.hooks.get(hook_id)
    if hook is None or hook.client_id != call.account.client_id:
        raise ApiError(404, f"Webhook with id [{hook_id}] not found")
    return hook


def _is_active(body: dict[str, Any], default: bool | None) -> bool | None:
    value = body.get("is_active", default)
    if value is not None and not isinstance(value, bool):
        raise _invalid("is_active", "must be true or false")
    return value


def create_hook(call: Call) -> Reply:
    body = call.json_object()
    scope = _check_scope(body.get("scope"))
    destination = check_destination(body.get("destination"))
    headers = _check_headers(body.get("headers"))
    is_active = _is_active(body, True)
    _check_unique(call, scope, destination)
    stamp = int(time.time())
    hook = Hook(id=call.store.next_id("hook"), client_id=call.account.client_id,
                store_hash=call.store.hash, scope=scope, destination=destination,
                is_active=bool(is_active), headers=headers, created_at=stamp, updated_at=stamp)
    call.store.hooks[hook.id] = hook
    return Reply(200, {"data": hook_json(hook), "meta": {}})


def list_hooks(call: Call) -> Reply:
    page, limit = call.paging(max_limit=250)
    raw_active = call.args.get("is_active")
    if raw_active not in (None, "true", "false"):
        raise ApiError(400, "The query parameter 'is_active' must be true or false.")
    scope, destination = call.args.get("scope"), call.args.get("destination")
    hooks = [hook_json(hook) for hook in sorted(call.store.hooks.values(), key=lambda h: h.id)
             if hook.client_id == call.account.client_id
             and (raw_active is None or hook.is_active == (raw_active == "true"))
             and (scope is None or hook.scope == scope)
             and (destination is None or hook.destination == destination)]
    return Reply(200, v3_page(hooks, page, limit, call.query()))


def get_hook(call: Call, hook_id: int) -> Reply:
    return Reply(200, {"data": hook_json(_mine(call, hook_id)), "meta": {}})


def update_hook(call: Call, hook_id: int) -> Reply:
    hook = _mine(call, hook_id)
    body = call.json_object()
    known = {"scope", "destination", "is_active", "headers"}
    if not known & set(body):
        raise _invalid("body", "give at least one of scope, destination, is_active, headers")
    scope = _check_scope(body["scope"]) if "scope" in body else hook.scope
    destination = (check_destination(body["destination"]) if "destination" in body
                   else hook.destination)
    headers = _check_headers(body["headers"]) if "headers" in body else hook.headers
    is_active = _is_active(body, hook.is_active)
    _check_unique(call, scope, destination, exclude=hook.id)
    hook.scope, hook.destination, hook.headers = scope, destination, headers
    hook.is_active = bool(is_active)
    hook.updated_at = int(time.time())
    return Reply(200, {"data": hook_json(hook), "meta": {}})


def delete_hook(call: Call, hook_id: int) -> Reply:
    hook = _mine(call, hook_id)
    del call.store.hooks[hook.id]
    return Reply(200, {"data": hook_json(hook), "meta": {}})


def hooks_admin(call: Call) -> Reply:
    hooks = [{**hook_json(hook), "status": "active" if hook.is_active else "deactivated"}
             for hook in call.store.hooks.values() if hook.client_id == call.account.client_id]
    return Reply(200, {"data": {"emails": [], "hooks_list": hooks, "blocked_domains": []},
                       "meta": {}})


ROUTES = (
    Route(("POST",), "/v3/hooks", create_hook, None),
    Route(("GET",), "/v3/hooks", list_hooks, None),
    Route(("GET",), "/v3/hooks/admin", hooks_admin, None),
    Route(("GET",), "/v3/hooks/<int:hook_id>", get_hook, None),
    Route(("PUT",), "/v3/hooks/<int:hook_id>", update_hook, None),
    Route(("DELETE",), "/v3/hooks/<int:hook_id>", delete_hook, None),
)
