"""The admin interface over HTTP: ``/_sandbox/...``, JSON in and out, for other processes.

Each route calls the :class:`~.core.BigCommerceSandbox` method of the same name with the JSON
body's fields as keyword arguments (an unknown field is refused, naming it). A bad argument is
400 ``{"error": "..."}``; an unknown store, order or app is 404. ``GET /_sandbox`` lists the
routes. These routes have no authentication: bind the sandbox to loopback.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .errors import SandboxError, UnknownObject

if TYPE_CHECKING:
    from .core import BigCommerceSandbox

#: (method, rule, sandbox method, what it does) — the documentation of the admin routes.
ADMIN_ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("POST", "/_sandbox/stores", "create_store", "{store_hash?, name?, plan?} → {store_hash}"),
    ("POST", "/_sandbox/stores/<store_hash>/api_accounts", "create_api_account",
     "{scopes?} → {client_id, client_secret, access_token, scopes}"),
    ("DELETE", "/_sandbox/stores/<store_hash>/api_accounts/<client_id>", "revoke_api_account",
     "→ {hooks_deleted}"),
    ("PUT", "/_sandbox/stores/<store_hash>/rate_limit", "set_rate_limit",
     "{quota?, window_ms?} → {quota, window_ms}"),
    ("POST", "/_sandbox/apps", "register_app", ("{client_id, client_secret, auth_callback_url, "
     "load_callback_url, uninstall_callback_url, remove_user_callback_url?, scopes}")),
    ("POST", "/_sandbox/stores/<store_hash>/apps/<client_id>/install", "install_app", "→ {url}"),
    ("GET", "/_sandbox/stores/<store_hash>/apps/<client_id>/callback_url", "signed_callback_url",
     "?kind=load|uninstall|remove_user → {url}"),
    ("POST", "/_sandbox/stores/<store_hash>/apps/<client_id>/uninstall", "uninstall_app",
     "→ {hooks_deleted, callback_status, callback_error}"),
    ("POST", "/_sandbox/stores/<store_hash>/products", "add_product",
     "{name, sku?, price?, inventory_tracking?, inventory_level?, variants?, type?} → product"),
    ("POST", "/_sandbox/stores/<store_hash>/orders", "create_order",
     ("{lines, status_id?, shipping_addresses?, billing_address?, customer_message?, "
      "custom_products?} → {id}")),
    ("GET", "/_sandbox/stores/<store_hash>/orders/<int:order_id>", "get_order",
     "→ order with products, shipping_addresses, shipments"),
    ("PUT", "/_sandbox/stores/<store_hash>/orders/<int:order_id>/status", "set_order_status",
     "{status_id} → {changed}"),
    ("POST", "/_sandbox/stores/<store_hash>/orders/<int:order_id>/archive", "archive_order", ""),
    ("DELETE", "/_sandbox/stores/<store_hash>/orders/<int:order_id>", "purge_order",
     "deleted for good: the id answers 404"),
    ("PUT", "/_sandbox/stores/<store_hash>/order_statuses/<int:status_id>", "rename_status",
     "{custom_label}"),
    ("GET", "/_sandbox/stores/<store_hash>/inventory/<path:sku>", "inventory_level",
     "→ {sku, inventory_level}"),
    ("GET", "/_sandbox/stores/<store_hash>/hooks", "hooks", "→ every hook of the store"),
    ("POST", "/_sandbox/stores/<store_hash>/hooks/deactivate", "deactivate_hooks",
     "→ {deactivated}"),
    ("GET", "/_sandbox/calls", "call_log", "?store_hash= → [{method, path, status, time, ...}]"),
    ("GET", "/_sandbox/stats/<store_hash>", "stats", ("→ {calls, responses_429, "
     "max_calls_in_window, max_calls_in_sliding_window, ...}")),
    ("POST", "/_sandbox/faults", "inject", ("{kind, store_hash?, count?, path_contains?, "
     "method?, probability?, duration?, delay?, retry_after?} → {id}")),
    ("GET", "/_sandbox/faults", "active_faults", "→ the faults still armed"),
    ("DELETE", "/_sandbox/faults", "clear_faults", ""),
    ("GET", "/_sandbox/webhooks", "webhook_deliveries", "?store_hash= → deliveries"),
    ("GET", "/_sandbox/state", "snapshot", ("→ {stores: {hash: {quota, orders, inventory, "
     "hooks, ...}}, calls, webhook_deliveries}: everything a run's checker compares")),
    ("POST", "/_sandbox/webhooks/wait", "wait_for_webhooks", "{timeout?} → {idle}"),
)
#: How a method's return value is wrapped, when it is not already a JSON object.
RESULT_KEYS = {"create_store": "store_hash", "install_app": "url", "signed_callback_url": "url",
               "create_order": "id", "set_order_status": "changed",
               "revoke_api_account": "hooks_deleted", "deactivate_hooks": "deactivated",
               "inject": "id", "wait_for_webhooks": "idle"}
CREATED = {"create_store", "create_api_account", "register_app", "add_product", "create_order",
           "inject"}


def _json(status: int, body: Any) -> Response:
    if status == 204:
        return Response(status=204)
    return Response(json.dumps(body), status=status, content_type="application/json")


def _arguments(request: Request, method: Callable[..., Any], path_args: dict[str, Any]
               ) -> dict[str, Any]:
    if request.method in ("POST", "PUT"):
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise SandboxError("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise SandboxError("the body must be a JSON object of the method's arguments")
    else:
        body = request.args.to_dict()
    signature = inspect.signature(method)
    accepted = set(signature.parameters)
    for key in body:
        if key not in accepted or key in path_args:
            raise SandboxError(f"unknown field {key!r}; this route takes "
                               f"{', '.join(sorted(accepted - set(path_args))) or 'nothing'}")
    arguments = {**body, **path_args}
    try:
        signature.bind(**arguments)
    except TypeError as error:  # a required field is missing
        raise SandboxError(str(error)) from None
    return arguments


def admin_app(sandbox: BigCommerceSandbox) -> Callable[[Request], Response]:
    url_map = Map([Rule(rule, endpoint=name, methods=[method])
                   for method, rule, name, _ in ADMIN_ROUTES])

    def index() -> Response:
        return _json(200, {"routes": [{"method": method, "path": rule, "does": name,
                                       "body": about} for method, rule, name, about in ADMIN_ROUTES]})

    def handle(request: Request) -> Response:
        if request.path.rstrip("/") == "/_sandbox":
            return index()
        try:
            name, path_args = url_map.bind("sandbox").match(request.path, request.method)
        except HTTPException as error:
            return _json(error.code or 404, {"error": f"{request.method} {request.path}: "
                                                      f"{error.name}; GET /_sandbox lists the routes"})
        method = getattr(sandbox, name)
        try:
            result = method(**_arguments(request, method, path_args))
        except UnknownObject as error:
            return _json(404, {"error": str(error)})
        except SandboxError as error:
            return _json(400, {"error": str(error)})
        if result is None:
            return _json(204, None)
        if name == "inventory_level":
            result = {"sku": path_args["sku"], "inventory_level": result}
        elif name in RESULT_KEYS:
            result = {RESULT_KEYS[name]: result}
        return _json(201 if name in CREATED else 200, result)

    return handle
