"""The sandbox's HTTP surface: the protocol under ``/v1/`` and the admin operations under
``/_sandbox/`` (JSON in, JSON out), as a plain WSGI application."""

from __future__ import annotations

import base64
import binascii
import hmac
import inspect
import json
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from dropstream_wms_generic import protocol
from dropstream_wms_generic.sandbox.faults import Fault
from dropstream_wms_generic.sandbox.state import SandboxError

if TYPE_CHECKING:
    from dropstream_wms_generic.sandbox.server import WmsSandbox

MAX_BODY_BYTES = 4 * 1024 * 1024
#: Protocol requests kept in the log (enough for a full-size fault run).
LOG_SIZE = 200_000
#: Admin operations over HTTP: POST runs one with the JSON body as keyword arguments, GET reads.
ADMIN_WRITES = (
    "add_account",
    "set_stock",
    "ship",
    "advance",
    "configure",
    "inject",
    "outage",
    "clear_faults",
    "configure_push",
    "deliver_pushes",
    "push_stock_snapshot",
    "set_ship_methods",
    "set_credentials",
)
ADMIN_READS = ("summary", "orders", "shipments", "stock", "requests", "pushes", "snapshot")

URLS = Map(
    [
        Rule("/v1/orders", endpoint="create_order", methods=["POST"]),
        Rule("/v1/orders", endpoint="find_orders", methods=["GET"]),
        Rule("/v1/orders/batch", endpoint="create_orders", methods=["POST"]),
        Rule("/v1/orders/<order_id>/cancel", endpoint="cancel_order", methods=["POST"]),
        Rule("/v1/shipments", endpoint="list_shipments", methods=["GET"]),
        Rule("/v1/stock", endpoint="stock", methods=["GET"]),
        Rule("/v1/stock/changes", endpoint="stock_changes", methods=["GET"]),
        Rule("/v1/ship-methods", endpoint="ship_methods", methods=["GET"]),
        Rule("/_sandbox/<op>", endpoint="admin", methods=["GET", "POST"]),
    ],
    strict_slashes=False,
)


class DropConnection(Exception):
    """Close the client's connection without an answer."""


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers, mimetype="application/json")


class SandboxApp:
    def __init__(self, sandbox: WmsSandbox) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state
        self.faults = sandbox.faults
        #: The last requests (operation, method, path, account, reference, status, time), for
        #: tests, the admin and a run's checker.
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ, shallow=False)
        request.max_content_length = MAX_BODY_BYTES
        try:
            response = self.dispatch(request)
        except DropConnection:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            raise ConnectionResetError("sandbox fault: connection dropped") from None
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        try:
            endpoint, args = URLS.bind_to_environ(request.environ).match()
        except NotFound:
            return json_response(
                protocol.error_document("not_found", f"No route {request.path}."), 404
            )
        except MethodNotAllowed:
            return json_response(
                protocol.error_document("method_not_allowed", "Method not allowed."), 405
            )
        except HTTPException as error:
            return json_response(
                protocol.error_document("bad_request", str(error)), error.code or 400
            )
        if endpoint == "admin":
            return self.admin(request, args["op"])
        entry = {
            "operation": endpoint,
            "method": request.method,
            "path": request.full_path,
            "at": time.time(),
            **_concerns(request, endpoint),
        }
        self.log.append(entry)
        fault = self.faults.take(endpoint)
        response = self.apply(fault) if fault is not None else None
        if response is None:
            response = self.protocol(request, endpoint, args)
            if fault is not None and fault.kind == "lose_reply":
                entry["status"] = "reply lost"
                raise DropConnection()
            if fault is not None and fault.kind == "truncated":
                data = response.get_data()
                response.set_data(data[: len(data) // 2])
        entry["status"] = response.status_code
        if fault is not None:
            entry["fault"] = fault.kind
        return response

    def apply(self, fault: Fault) -> Response | None:
        """The fault's answer, or None to go on and serve the request."""
        if fault.kind in ("lose_reply", "truncated"):
            return None
        if fault.kind == "drop":
            raise DropConnection()
        if fault.kind == "slow":
            time.sleep(fault.seconds)  # then answer as usual (a client that gave up never sees it)
            return None
        if fault.kind == "garbage":
            return Response("<html>Gateway says hello</html>", status=200, mimetype="text/html")
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after else None
        return json_response(
            protocol.error_document(
                "unavailable" if fault.status >= 500 else "injected", fault.message
            ),
            fault.status,
            headers,
        )

    # -- the protocol ------------------------------------------------------------------------------

    def protocol(self, request: Request, endpoint: str, args: dict[str, Any]) -> Response:
        if not self.authenticated(request):
            return json_response(
                protocol.error_document(
                    "unauthorized", "Send valid credentials (bearer token, basic or API key)."
                ),
                401,
            )
        try:
            return getattr(self, f"op_{endpoint}")(request, **args)
        except SandboxError as error:
            return json_response(error.document(), error.status)
        except HTTPException as error:  # e.g. a body over MAX_BODY_BYTES
            return json_response(
                protocol.error_document("bad_request", error.description or str(error)),
                error.code or 400,
            )

    def authenticated(self, request: Request) -> bool:
        creds = self.state.credentials
        given = request.headers.get("Authorization", "")
        if given.startswith("Bearer ") and creds.get("token"):
            return hmac.compare_digest(given[7:], creds["token"])
        if given.startswith("Basic ") and creds.get("username"):
            try:
                user, _, password = (
                    base64.b64decode(given[6:], validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user, creds["username"]) and hmac.compare_digest(
                password, creds.get("password", "")
            )
        key = request.headers.get(creds.get("api_key_header") or "X-API-Key")
        return bool(key and creds.get("api_key")) and hmac.compare_digest(key, creds["api_key"])

    def op_create_order(self, request: Request) -> Response:
        status, ack = self.sandbox.state.create_order(_valid("order", _body(request)))
        return json_response(ack, status)

    def op_create_orders(self, request: Request) -> Response:
        results = []
        for document in _valid("order-batch", _body(request))["orders"]:
            reference = document.get("reference")
            reference = reference if isinstance(reference, str) else ""
            try:
                status, ack = self.sandbox.state.create_order(_valid("order", document))
            except SandboxError as error:  # that order alone is refused, as POST /v1/orders would
                results.append({"reference": reference, "status": 422,
                                "error": error.document()["error"]})
            else:
                results.append({"reference": reference, "status": status, "order": ack})
        return json_response({"results": results})

    def op_find_orders(self, request: Request) -> Response:
        account = request.args.get("account")
        reference = request.args.get("reference")
        if not reference:
            raise SandboxError(400, "invalid_request", "Give ?reference=.", "reference")
        self.state.account(account)
        return json_response(
            {"items": [self.state.ack(o) for o in self.state.find(account or "", reference)]}
        )

    def op_cancel_order(self, request: Request, order_id: str) -> Response:
        return json_response(self.state.cancel(order_id))

    def op_list_shipments(self, request: Request) -> Response:
        return json_response(
            self.state.shipments_page(
                request.args.get("account", ""), request.args.get("cursor"), _limit(request)
            )
        )

    def op_stock(self, request: Request) -> Response:
        return json_response(
            self.state.stock_snapshot(
                request.args.get("account", ""), request.args.get("cursor"), _limit(request)
            )
        )

    def op_stock_changes(self, request: Request) -> Response:
        return json_response(
            self.state.stock_changes(
                request.args.get("account", ""), request.args.get("cursor"), _limit(request)
            )
        )

    def op_ship_methods(self, request: Request) -> Response:
        with self.state.lock:
            return json_response({"items": [dict(m) for m in self.state.ship_methods]})

    # -- admin -----------------------------------------------------------------------------------

    def admin(self, request: Request, op: str) -> Response:
        allowed = ADMIN_WRITES if request.method == "POST" else ADMIN_READS
        if op not in allowed:
            return json_response(
                protocol.error_document(
                    "unknown_operation",
                    f"No {request.method} /_sandbox/{op}; "
                    f"{request.method} takes one of: {', '.join(allowed)}.",
                ),
                404,
            )
        try:
            kwargs = _body(request) if request.method == "POST" else request.args.to_dict()
            if not isinstance(kwargs, dict):
                raise SandboxError(400, "invalid_request", "Send a JSON object of arguments.")
            method = getattr(self.sandbox, op)
            inspect.signature(method).bind(**kwargs)
            return json_response({"result": method(**kwargs)})
        except SandboxError as error:
            return json_response(error.document(), error.status)
        except (TypeError, ValueError) as error:
            return json_response(protocol.error_document("invalid_request", str(error)), 400)


def _concerns(request: Request, endpoint: str) -> dict[str, Any]:
    """The account (and order reference) a request names, for the log: what a check of
    tenant attribution compares with the store the reference belongs to."""
    if endpoint == "create_order":
        try:
            document = json.loads(request.get_data(cache=True) or b"{}")
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return {"account": None, "reference": None}
        return {"account": document.get("account"), "reference": document.get("reference")}
    if endpoint == "create_orders":
        try:
            batch = json.loads(request.get_data(cache=True) or b"{}")
        except ValueError:
            batch = None
        orders = batch.get("orders") if isinstance(batch, dict) else None
        orders = orders if isinstance(orders, list) else []
        return {"account": None, "reference": None, "orders": [
            [document.get("account"), document.get("reference")]
            for document in orders if isinstance(document, dict)]}
    return {"account": request.args.get("account"), "reference": request.args.get("reference")}


def _valid(document: str, data: Any) -> Any:
    """``data`` if it is a valid ``document``; otherwise refused (422) naming the bad field."""
    try:
        protocol.validate(document, data)
    except protocol.ProtocolError as error:
        raise SandboxError(422, "invalid_request", error.reason, error.field or None) from None
    return data


def _body(request: Request) -> Any:
    try:
        return json.loads(request.get_data(cache=True) or b"{}")
    except ValueError:
        raise SandboxError(400, "invalid_json", "The body is not JSON.") from None


def _limit(request: Request) -> int:
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise SandboxError(400, "invalid_request", "limit must be 1 to 1000.", "limit")
    return int(raw)
