"""The WSGI application and the threaded server it runs on.

One request goes: injected fault? → ``X-Auth-Token`` → the store's quota → the route → its
OAuth scope → ``Content-Type`` of a body → the handler (under the state lock) → the call log.
Paths are the real ones below the host: ``/stores/{store_hash}/v2/...`` and ``.../v3/...``,
``/oauth2/token`` (the login host's), and the sandbox's own ``/_sandbox/...`` admin routes,
which are never faulted, rate-limited or logged.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from dropstream.serving import RequestHandler, make_server

from . import catalog, hooks, inventory, oauth, order_routes, shipments, store_routes
from .errors import (
    MISSING_SCOPE_V2,
    MISSING_SCOPE_V3,
    NOT_FOUND_V2,
    UNAUTHORIZED_V2,
    UNAUTHORIZED_V3,
    ApiError,
    error_body,
)
from .faults import REQUEST_KINDS, Fault
from .routing import Call, Reply, Route, scope_allows

if TYPE_CHECKING:
    from .core import BigCommerceSandbox

ROUTES: tuple[Route, ...] = (store_routes.ROUTES + order_routes.ROUTES + shipments.ROUTES
                             + catalog.ROUTES + inventory.ROUTES + hooks.ROUTES)
FAULT_TITLES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                504: "Gateway Timeout", 429: "Too Many Requests"}
MAINTENANCE_PAGE = (b"<!DOCTYPE html><html><head><title>Down for maintenance</title></head>"
                    b"<body><h1>We'll be back soon</h1><p>This store is down for maintenance."
                    b"</p></body></html>")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
StartResponse = Callable[..., Any]


class DropConnection(ConnectionResetError):
    """Raised to make the request handler drop the connection without an answer."""


def json_response(reply: Reply, problem: bool = False) -> Response:
    if reply.status == 204:
        return Response(status=204, headers=reply.headers)
    body = json.dumps(reply.body).encode()
    content_type = "application/problem+json" if problem else reply.content_type
    return Response(body, status=reply.status, headers=reply.headers, content_type=content_type)


def error_reply(version: str, error: ApiError) -> Reply:
    return Reply(error.status, error_body(version, error.status, error.message, error.errors),
                 headers=dict(error.headers))


class SandboxApp:
    """The WSGI callable serving one :class:`~.core.BigCommerceSandbox`."""

    def __init__(self, sandbox: BigCommerceSandbox, admin: Callable[[Request], Response]) -> None:
        self.sandbox = sandbox
        self.admin = admin
        self.routes = ROUTES
        self.url_map = Map([Rule(route.path, endpoint=index, methods=route.methods)
                            for index, route in enumerate(ROUTES)], strict_slashes=False)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            return self.admin(request)(environ, start_response)
        started, moment = time.monotonic(), time.time()
        store_hash, version, rest = _split(path)
        fault = self.sandbox.faults.take(REQUEST_KINDS, store_hash, path, request.method)
        response = self._faulted(fault, version, store_hash) if fault else None
        if response is None:
            if fault is not None and fault.kind == "slow":
                self.sandbox._stopping.wait(fault.delay if fault.delay is not None
                                            else self.sandbox.slow_seconds)
            if path == "/oauth2/token":
                response = self._token(request)
            elif store_hash is None:
                response = json_response(Reply(404, error_body("v3", 404, "Not Found")))
            else:
                response = self._api(request, store_hash, version, rest)
        if fault is not None and fault.kind == "truncated":
            data = response.get_data()
            response.set_data(data[: len(data) // 2])
        self.sandbox.log.add(store_hash=store_hash, method=request.method, path=path,
                             query=request.query_string.decode("latin-1"),
                             status=0 if fault and fault.kind.startswith("reset") else response.status_code,
                             time=moment, duration_ms=(time.monotonic() - started) * 1000,
                             fault=fault.kind if fault else None,
                             token_store=environ.get("bc_sandbox.token_store"),
                             client_id=environ.get("bc_sandbox.client_id"))
        if fault is not None and fault.kind in ("reset", "reset_after"):
            environ["bc_sandbox.drop"] = True
            raise DropConnection("injected fault: connection dropped")
        return response(environ, start_response)

    def _faulted(self, fault: Fault, version: str, store_hash: str | None) -> Response | None:
        """The answer a fault gives instead of the API's, or None when the API still answers."""
        if fault.kind == "429_reset":
            return self._quota_exhausted(fault, version, store_hash)
        if fault.kind in ("reset", "html") or fault.kind.isdigit():
            if fault.kind == "html":
                return Response(MAINTENANCE_PAGE, status=200, content_type="text/html; charset=utf-8")
            if fault.kind == "reset":
                return Response(b"")  # never sent: the connection is dropped
            status = int(fault.kind)
            if status == 401:
                message = UNAUTHORIZED_V2 if version == "v2" else UNAUTHORIZED_V3
            else:
                message = FAULT_TITLES[status]
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return json_response(Reply(status, error_body(version, status, message), headers))
        return None

    def _quota_exhausted(self, fault: Fault, version: str, store_hash: str | None) -> Response:
        with self.sandbox.state.lock:
            store = self.sandbox.state.stores.get(store_hash or "")
            quota, window_ms = (store.quota, store.window_ms) if store else (None, 30_000)
        reset = fault.retry_after if fault.retry_after is not None else 1
        headers = {"x-rate-limit-time-window-ms": str(window_ms),
                   "x-rate-limit-time-reset-ms": str(reset * 1000),
                   "x-rate-limit-requests-quota": str(quota or 0),
                   "x-rate-limit-requests-left": "0", "x-retry-after": str(max(1, reset))}
        return json_response(Reply(429, error_body(version, 429, FAULT_TITLES[429]), headers))

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return json_response(Reply(405, {"error": "invalid_request",
                                             "error_description": "use POST"}))
        with self.sandbox.state.lock:
            try:
                return json_response(Reply(200, oauth.exchange_code(self.sandbox.state, request)))
            except oauth.TokenError as error:
                return json_response(Reply(error.status, {"error": error.error,
                                                          "error_description": error.description}))

    def _api(self, request: Request, store_hash: str, version: str, rest: str) -> Response:
        problem = rest.startswith("/v3/inventory")
        rate_headers: dict[str, str] = {}
        sandbox = self.sandbox
        with sandbox.state.lock:
            try:
                token = request.headers.get("X-Auth-Token", "")
                account = sandbox.state.tokens.get(token) if token else None
                if account is not None:  # whose credentials, for the call log
                    request.environ["bc_sandbox.token_store"] = account.store_hash
                    request.environ["bc_sandbox.client_id"] = account.client_id
                if account is None:
                    raise ApiError(401, UNAUTHORIZED_V2 if version == "v2" else UNAUTHORIZED_V3)
                store = sandbox.state.stores.get(store_hash)
                if store is None:  # status-codes.mdx: a wrong store hash is a 403
                    raise ApiError(403, "The store hash in the URL is not a store this "
                                   "X-Auth-Token can access: check the store hash.")
                if account.store_hash != store_hash:
                    raise ApiError(401, UNAUTHORIZED_V2 if version == "v2" else UNAUTHORIZED_V3)
                allowed, rate_headers = sandbox.limiter.consume(store, time.monotonic())
                if not allowed:
                    raise ApiError(429, "You have exceeded the request quota of the store: wait "
                                   "for the time in X-Rate-Limit-Time-Reset-Ms.")
                reply = self._route(request, store, account, version, rest)
            except ApiError as error:
                reply = error_reply(version, error)
        reply.headers.update(rate_headers)
        return json_response(reply, problem=problem and reply.status >= 400)

    def _route(self, request: Request, store: Any, account: Any, version: str, rest: str) -> Reply:
        adapter = self.url_map.bind("sandbox")
        try:
            index, arguments = adapter.match(rest, request.method)
        except NotFound:
            raise ApiError(404, NOT_FOUND_V2 if version == "v2" else "Not Found") from None
        except MethodNotAllowed:
            raise ApiError(405, f"The {request.method} method is not allowed on this resource.") from None
        route = self.routes[index]
        if not scope_allows(account.scopes, route.scope, request.method):
            raise ApiError(403, MISSING_SCOPE_V2 if version == "v2" else MISSING_SCOPE_V3)
        if request.method in BODY_METHODS and request.mimetype != "application/json":
            raise ApiError(415, "The Content-Type header must be application/json.")
        call = Call(request=request, store=store, account=account, version=version,
                    base_url=self.sandbox.base_url or request.host_url.rstrip("/"),
                    emit=self.sandbox.dispatcher.emit)
        return route.handler(call, **arguments)


def _split(path: str) -> tuple[str | None, str, str]:
    """``/stores/abc/v2/orders`` → ``("abc", "v2", "/v2/orders")``."""
    parts = path.split("/", 4)
    if len(parts) >= 4 and parts[1] == "stores" and parts[2] and parts[3] in ("v2", "v3"):
        return parts[2], parts[3], "/" + "/".join(parts[3:])
    return None, "v3", path


class QuietRequestHandler(RequestHandler):
    """No access log on stderr; drops the connection (with a TCP reset) when asked to."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        pass

    def connection_dropped(self, error: BaseException, environ: dict[str, Any] | None = None) -> None:
        if environ and environ.get("bc_sandbox.drop"):
            # Linger 0: closing the socket sends RST, and no response was written.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        super().connection_dropped(error, environ)


class ServerThread:
    def __init__(self, app: SandboxApp, host: str, port: int) -> None:
        self.server: BaseWSGIServer = make_server(host, port, app, handler=QuietRequestHandler,
                                                  name="bc-sandbox-http")
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="bc-sandbox-http", daemon=True)

    @property
    def url(self) -> str:
        """The base URL; on all interfaces, the loopback one (what a local client can reach)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.server.host, self.server.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()
