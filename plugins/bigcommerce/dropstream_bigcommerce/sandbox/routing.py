"""The seam between the HTTP server and the API modules: routes, the per-request call, replies.

Each API module (store, orders, shipments, catalog, inventory, hooks) lists its routes as
:class:`Route` objects. The server authenticates, rate-limits and checks the route's OAuth scope
before it calls the handler with a :class:`Call`; the handler returns a :class:`Reply` or raises
:class:`~.errors.ApiError`. Handlers run under the state lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request

from .errors import ApiError
from .formats import resource_url
from .state import ApiAccount, Store

#: Scope family → (modify scope, read-only scope), docs: api-accounts.mdx. ``None`` on a route:
#: the ``default`` scope every account has (webhooks).
SCOPES: dict[str, tuple[str, str]] = {
    "orders": ("store_v2_orders", "store_v2_orders_read_only"),
    "products": ("store_v2_products", "store_v2_products_read_only"),
    "inventory": ("store_inventory", "store_inventory_read_only"),
    "locations": ("store_locations", "store_locations_read_only"),
    "information": ("store_v2_information", "store_v2_information_read_only"),
}
READ_METHODS = frozenset({"GET", "HEAD"})


def scope_allows(scopes: frozenset[str], family: str | None, method: str) -> bool:
    if family is None:
        return True
    modify, read_only = SCOPES[family]
    return modify in scopes or (method in READ_METHODS and read_only in scopes)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def no_content() -> Reply:
    return Reply(204)


Emit = Callable[[Store, str, dict[str, Any]], None]


@dataclass
class Call:
    """One authenticated API request, as a handler sees it."""

    request: Request
    store: Store
    account: ApiAccount
    version: str  # "v2" | "v3"
    base_url: str
    emit: Emit

    @property
    def args(self) -> Any:
        return self.request.args

    def api_url(self, resource: str) -> str:
        """Absolute URL of a V2 resource such as ``/orders/1/products``."""
        return resource_url(self.base_url, self.store.hash)(resource)

    def query(self) -> dict[str, str]:
        """The query string as a dict (for V3 pagination links)."""
        return dict(self.request.args.items(multi=False))

    def json(self) -> Any:
        raw = self.request.get_data(cache=True)
        if not raw.strip():
            raise ApiError(400, "The request body is empty: send a JSON document.")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "The request body is not valid JSON.") from None

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return body

    def int_arg(self, name: str, default: int | None = None, *, minimum: int | None = None
                ) -> int | None:
        raw = self.args.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"The query parameter '{name}' must be an integer, not {raw!r}.") from None
        if minimum is not None and value < minimum:
            raise ApiError(400, f"The query parameter '{name}' must be at least {minimum}.")
        return value

    def int_list_arg(self, name: str) -> set[int] | None:
        raw = self.args.get(name)
        if raw is None or raw == "":
            return None
        try:
            return {int(part) for part in raw.split(",") if part.strip()}
        except ValueError:
            raise ApiError(400, f"The query parameter '{name}' must be a comma-separated list "
                           f"of integers, not {raw!r}.") from None

    def str_list_arg(self, name: str) -> set[str] | None:
        raw = self.args.get(name)
        if raw is None:
            return None
        return {part for part in raw.split(",") if part}

    def paging(self, *, default_limit: int = 50, max_limit: int = 250) -> tuple[int, int]:
        """``page`` (1-based) and ``limit``; a limit over the maximum is 413 (status-codes.mdx:
        "the limit parameter exceeded the maximum")."""
        page = self.int_arg("page", 1, minimum=1)
        limit = self.int_arg("limit", default_limit, minimum=1)
        assert page is not None and limit is not None
        if limit > max_limit:
            raise ApiError(413, f"The limit of {limit} is over the maximum of {max_limit} "
                           f"objects per page: ask for {max_limit} or fewer.")
        return page, limit


Handler = Callable[..., Reply]


@dataclass(frozen=True)
class Route:
    """``path`` is a Werkzeug rule below ``/stores/<store_hash>``, e.g.
    ``/v2/orders/<int:order_id>``; ``scope`` a key of :data:`SCOPES` or ``None``."""

    methods: tuple[str, ...]
    path: str
    handler: Handler
    scope: str | None
