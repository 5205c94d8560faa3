"""``BigCommerceSandbox``: start, stop and drive one sandbox from Python (see the package
docstring for the whole interface and its HTTP twin under ``/_sandbox``)."""

from __future__ import annotations

import re
import secrets
import string
import threading
import time
from collections.abc import Sequence
from typing import Any, Self

from . import catalog, oauth, orders
from .admin import admin_app
from .calls import CallLog
from .catalog import product_json, product_level, variant_level
from .delivery import Dispatcher
from .errors import SandboxError, UnknownObject
from .faults import Faults
from .formats import resource_url
from .hooks import hook_json
from .order_json import address_json, line_json, order_json, shipment_json
from .outbound import send
from .ratelimit import RateLimiter
from .server import SandboxApp, ServerThread
from .state import PLAN_QUOTAS, STATUS_LABELS, ApiAccount, SandboxState, Store

#: The scopes DropStream asks merchants for (bigcommerce.md §1.3), as scope strings.
DROPSTREAM_SCOPES = (
    "store_v2_content", "store_content_checkout", "store_v2_customers_read_only",
    "store_v2_customers_login", "store_v2_information_read_only", "store_v2_orders",
    "store_v2_transactions", "store_payments_methods_read",
    "store_stored_payment_instruments_read_only", "store_v2_products_read_only",
    "store_cart_read_only", "store_checkout_read_only", "store_sites_read_only",
    "store_channel_settings_read_only", "store_channel_listings_read_only",
    "store_locations_read_only", "store_inventory", "store_fulfillment_methods_read_only",
    "store_order_fulfillment_manage", "store_metafield_write",
)
STORE_HASH = re.compile(r"[a-z0-9]{1,32}")
ALPHANUMERIC = string.ascii_lowercase + string.digits


def _token(length: int = 31) -> str:
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


class BigCommerceSandbox:
    """A real HTTP server standing in for BigCommerce. All methods are thread-safe."""

    def __init__(self, *, rate_limits: bool = True, webhook_retry_scale: float = 0.01,
                 seed: int = 0, slow_seconds: float = 11.0, webhook_timeout: float = 5.0,
                 oauth_code_ttl: float = 300.0) -> None:
        self.state = SandboxState(seed)
        self.faults = Faults(seed)
        self.limiter = RateLimiter(enabled=rate_limits)
        self.log = CallLog()
        self.dispatcher = Dispatcher(self.state, self.faults, retry_scale=webhook_retry_scale,
                                     timeout=webhook_timeout)
        #: How long a ``slow`` fault waits by default (past a 10 s client read timeout).
        self.slow_seconds = slow_seconds
        #: How long an install code stays valid.
        self.oauth_code_ttl = oauth_code_ttl
        self.base_url: str | None = None
        self._stopping = threading.Event()
        self._server: ServerThread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port) from a background thread; returns the base URL."""
        if self._server is not None:
            raise SandboxError("the sandbox is already running; stop() it first")
        self._stopping.clear()
        self._server = ServerThread(SandboxApp(self, admin_app(self)), host, port)
        self.base_url = self._server.url
        self._server.start()
        self.dispatcher.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()  # wakes requests held by a ``slow`` fault
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.dispatcher.stop()

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def api_base_url(self) -> str:
        """``{api_base_url}/stores/{store_hash}/v2/...`` and ``.../v3/...``."""
        return self._running_url()

    @property
    def login_base_url(self) -> str:
        """``POST {login_base_url}/oauth2/token``."""
        return self._running_url()

    def _running_url(self) -> str:
        if self.base_url is None:
            raise SandboxError("the sandbox is not running: call start() first")
        return self.base_url

    # -- stores and credentials -----------------------------------------------------------------

    def create_store(self, store_hash: str | None = None, *, name: str = "Sandbox store",
                     plan: str = "standard") -> str:
        if plan not in PLAN_QUOTAS:
            raise SandboxError(f"plan must be one of {', '.join(PLAN_QUOTAS)}, not {plan!r}")
        if not isinstance(name, str) or not name:
            raise SandboxError("name must be a non-empty string")
        with self.state.lock:
            if store_hash is None:
                store_hash = self.state.new_store_hash()
            elif not isinstance(store_hash, str) or not STORE_HASH.fullmatch(store_hash):
                raise SandboxError(f"store_hash must be 1-32 lower-case letters and digits, not "
                                   f"{store_hash!r}")
            if store_hash in self.state.stores:
                raise SandboxError(f"store {store_hash!r} already exists")
            self.state.stores[store_hash] = Store(
                hash=store_hash, store_id=self.state.next_store_id(), name=name, plan=plan,
                created=time.time(), account_uuid=str(self.state.rng.getrandbits(64)),
                quota=PLAN_QUOTAS[plan])
            return store_hash

    def create_api_account(self, store_hash: str, scopes: Sequence[str] | None = None
                           ) -> dict[str, Any]:
        """A store-level API account (V2/V3 token); ``scopes`` default: DropStream's minimum."""
        chosen = tuple(DROPSTREAM_SCOPES if scopes is None else scopes)
        if isinstance(scopes, str) or not all(isinstance(scope, str) for scope in chosen):
            raise SandboxError("scopes must be a list of scope strings such as store_v2_orders")
        with self.state.lock:
            account = ApiAccount(store_hash, _token(), secrets.token_hex(32), _token(),
                                 frozenset(chosen))
            self.state.add_account(account)
        return {"client_id": account.client_id, "client_secret": account.client_secret,
                "access_token": account.access_token, "scopes": sorted(chosen),
                "store_hash": store_hash}

    def revoke_api_account(self, store_hash: str, client_id: str) -> int:
        """Delete an API account (its token stops working) and, as BigCommerce does, its
        hooks; returns how many hooks went."""
        with self.state.lock:
            if self.state.remove_account(store_hash, client_id) is None:
                raise UnknownObject(f"store {store_hash} has no API account {client_id!r}")
            return self._delete_hooks(self.state.store(store_hash), client_id)

    def set_rate_limit(self, store_hash: str, *, quota: int | None = None,
                       window_ms: int | None = None) -> dict[str, Any]:
        """Change a store's quota per window and/or window length (tests use small ones)."""
        with self.state.lock:
            store = self.state.store(store_hash)
            if quota is not None:
                if isinstance(quota, bool) or not isinstance(quota, int) or quota < 1:
                    raise SandboxError(f"quota must be a whole number of at least 1, not {quota!r}")
                store.quota = quota
            if window_ms is not None:
                if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms < 1:
                    raise SandboxError(f"window_ms must be a whole number of milliseconds, not "
                                       f"{window_ms!r}")
                store.window_ms = window_ms
            self.limiter.forget(store_hash)
            return {"quota": store.quota, "window_ms": store.window_ms}

    # -- apps (single-click OAuth) --------------------------------------------------------------

    def register_app(self, client_id: str, client_secret: str, *, auth_callback_url: str,
                     load_callback_url: str, uninstall_callback_url: str,
                     remove_user_callback_url: str | None = None,
                     scopes: Sequence[str]) -> None:
        with self.state.lock:
            oauth.register_app(self.state, client_id, client_secret,
                               auth_callback_url=auth_callback_url,
                               load_callback_url=load_callback_url,
                               uninstall_callback_url=uninstall_callback_url,
                               remove_user_callback_url=remove_user_callback_url, scopes=scopes)

    def install_app(self, store_hash: str, client_id: str) -> str:
        """The auth-callback URL (with a fresh single-use code) the merchant's browser opens."""
        with self.state.lock:
            return oauth.install_url(self.state, store_hash, client_id, self.oauth_code_ttl)

    def signed_callback_url(self, store_hash: str, client_id: str, kind: str = "load") -> str:
        with self.state.lock:
            return oauth.callback_url(self.state, store_hash, client_id, kind)

    def uninstall_app(self, store_hash: str, client_id: str) -> dict[str, Any]:
        """Uninstall: ``store/app/uninstalled`` to the app's hooks, then its hooks and token
        are deleted and its uninstall callback is called (server to server)."""
        with self.state.lock:
            store = self.state.store(store_hash)
            oauth.app_or_error(self.state, client_id)
            self.dispatcher.emit(store, "store/app/uninstalled", {"type": "store"},
                                 client_id=client_id, force=True)
            removed = self._delete_hooks(store, client_id)
            self.state.remove_account(store_hash, client_id)
            url = oauth.callback_url(self.state, store_hash, client_id, "uninstall")
        # BigCommerce's server GETs the uninstall callback; what it answers is not used.
        status, error = send("GET", url, headers={"Accept": "application/json"})
        return {"hooks_deleted": removed, "callback_status": status, "callback_error": error}

    # -- catalog and orders ---------------------------------------------------------------------

    def add_product(self, store_hash: str, *, name: str, sku: str | None = None,
                    price: Any = "10.00", inventory_tracking: str = "product",
                    inventory_level: int = 0, variants: Sequence[dict[str, Any]] | None = None,
                    type: str = "physical") -> dict[str, Any]:
        with self.state.lock:
            product = catalog.add_product(
                self.state.store(store_hash), name=name, sku=sku, price=price,
                inventory_tracking=inventory_tracking, inventory_level=inventory_level,
                variants=variants, type=type)
            return product_json(product, with_variants=True)

    def create_order(self, store_hash: str, *, lines: Sequence[dict[str, Any]],
                     status_id: int = 11, shipping_addresses: Sequence[dict[str, Any]] | None = None,
                     billing_address: dict[str, Any] | None = None, customer_message: str = "",
                     custom_products: Sequence[dict[str, Any]] | None = None) -> int:
        with self.state.lock:
            order = orders.create_order(
                self.state.store(store_hash), self.dispatcher.emit, lines=lines,
                status_id=status_id, shipping_addresses=shipping_addresses,
                billing_address=billing_address, customer_message=customer_message,
                custom_products=custom_products)
            return order.id

    def set_order_status(self, store_hash: str, order_id: int, status_id: int) -> bool:
        """As the merchant does in the control panel; fires statusUpdated and updated."""
        orders.check_status_id(status_id, "status_id")
        with self.state.lock:
            store = self.state.store(store_hash)
            return orders.change_status(store, orders.find_order(store, order_id), status_id,
                                        self.dispatcher.emit)

    def archive_order(self, store_hash: str, order_id: int) -> None:
        with self.state.lock:
            store = self.state.store(store_hash)
            orders.archive(store, orders.find_order(store, order_id), self.dispatcher.emit)

    def get_order(self, store_hash: str, order_id: int) -> dict[str, Any]:
        """The V2 order with ``products``, ``shipping_addresses`` and ``shipments`` embedded."""
        with self.state.lock:
            store = self.state.store(store_hash)
            order = orders.find_order(store, order_id)
            url = resource_url(self.base_url or "http://sandbox.invalid", store.hash)
            body = order_json(store, order, url)
            body["products"] = [line_json(line) for line in order.lines]
            body["shipping_addresses"] = [address_json(order, a, url) for a in order.addresses]
            body["shipments"] = [shipment_json(order, s) for s in order.shipments]
            return body

    def purge_order(self, store_hash: str, order_id: int) -> None:
        """Delete an order for good, as deleting it from the control panel's archive does: its
        id answers 404 from then on, and no webhook says so."""
        with self.state.lock:
            store = self.state.store(store_hash)
            orders.find_order(store, order_id)
            del store.orders[order_id]
            store.purged_orders.append(order_id)

    def rename_status(self, store_hash: str, status_id: int, custom_label: str) -> None:
        orders.check_status_id(status_id, "status_id")
        if not isinstance(custom_label, str) or not custom_label:
            raise SandboxError("custom_label must be a non-empty string")
        with self.state.lock:
            self.state.store(store_hash).custom_labels[status_id] = custom_label

    def inventory_level(self, store_hash: str, sku: str) -> int:
        """The catalog level (default location) of the product or variant with ``sku``."""
        with self.state.lock:
            store = self.state.store(store_hash)
            found = store.variant_by_sku(sku)
            if found is not None:
                product, variant = found
                return (product_level(product) if variant.sku_id is None
                        else variant_level(product, variant))
            for product in store.products.values():
                if sku and product.sku == sku:
                    return product_level(product)
        raise UnknownObject(f"no product or variant with SKU {sku!r} in store {store_hash}")

    # -- observing ------------------------------------------------------------------------------

    def call_log(self, store_hash: str | None = None) -> list[dict[str, Any]]:
        return self.log.entries(store_hash)

    def stats(self, store_hash: str) -> dict[str, Any]:
        """Calls, quota refusals (``responses_429``), the most calls in one of the store's fixed
        windows and in any sliding window of that length, and untracked inventory writes."""
        with self.state.lock:
            store = self.state.store(store_hash)
            window_ms, quota = store.window_ms, store.quota
            untracked = store.untracked_inventory_writes
        return {**self.log.stats(store_hash, window_ms), "quota": quota, "window_ms": window_ms,
                "max_calls_in_window": self.limiter.max_attempts.get(store_hash, 0),
                "untracked_inventory_writes": untracked}

    def snapshot(self) -> dict[str, Any]:
        """Everything a run's checker compares, read-only, in one JSON document: per store its
        plan and quota, API accounts (client ids), every order (status history, lines,
        addresses, shipments with their comments), the levels of tracked items by SKU and its
        hooks; and the whole call log and webhook delivery log."""
        with self.state.lock:
            stores = {store.hash: _store_snapshot(store) for store in self.state.stores.values()}
        return {"stores": stores, "calls": self.log.entries(),
                "webhook_deliveries": self.dispatcher.deliveries()}

    def hooks(self, store_hash: str) -> list[dict[str, Any]]:
        """Every hook of the store, whichever client owns it."""
        with self.state.lock:
            return [hook_json(hook) for hook in self.state.store(store_hash).hooks.values()]

    def webhook_deliveries(self, store_hash: str | None = None) -> list[dict[str, Any]]:
        return self.dispatcher.deliveries(store_hash)

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued, retrying or in flight; False if still busy."""
        return self.dispatcher.wait_idle(timeout)

    # -- faults ---------------------------------------------------------------------------------

    def inject(self, kind: str, *, store_hash: str | None = None, count: int | None = 1,
               path_contains: str | None = None, method: str | None = None,
               probability: float | None = None, duration: float | None = None,
               delay: float | None = None, retry_after: int | None = None) -> int:
        """Add a fault (see :mod:`.faults` for the kinds); returns its id."""
        return self.faults.add(kind, store_hash=store_hash, count=count,
                               path_contains=path_contains, method=method,
                               probability=probability, duration=duration, delay=delay,
                               retry_after=retry_after)

    def clear_faults(self) -> None:
        self.faults.clear()

    def active_faults(self) -> list[dict[str, Any]]:
        return self.faults.active()

    def deactivate_hooks(self, store_hash: str) -> int:
        """Set every hook of the store inactive, as 90 days without deliveries or exhausted
        retries do; returns how many were active."""
        with self.state.lock:
            count = 0
            for hook in self.state.store(store_hash).hooks.values():
                if hook.is_active:
                    hook.is_active = False
                    hook.updated_at = int(time.time())
                    count += 1
            return count

    # -- helpers --------------------------------------------------------------------------------

    def _delete_hooks(self, store: Store, client_id: str) -> int:
        doomed = [hook_id for hook_id, hook in store.hooks.items() if hook.client_id == client_id]
        for hook_id in doomed:
            del store.hooks[hook_id]
        return len(doomed)


def _store_snapshot(store: Store) -> dict[str, Any]:
    levels: dict[str, int] = {}
    for product in store.products.values():
        if product.inventory_tracking == "product" and product.sku:
            levels[product.sku] = product_level(product)
        elif product.inventory_tracking == "variant":
            for variant in product.variants:
                if variant.sku:
                    levels[variant.sku] = variant_level(product, variant)
    return {
        "store_id": store.store_id, "plan": store.plan, "quota": store.quota,
        "window_ms": store.window_ms, "accounts": sorted(store.accounts),
        "purged_orders": list(store.purged_orders),
        "inventory": levels, "hooks": [hook_json(hook) for hook in store.hooks.values()],
        "orders": [{
            "id": order.id, "status_id": order.status_id, "is_deleted": order.is_deleted,
            "created": order.created, "modified": order.modified,
            "status_history": [list(change) for change in order.status_history],
            "lines": [{"id": line.id, "sku": line.sku, "type": line.type,
                       "quantity": line.quantity, "quantity_shipped": line.quantity_shipped,
                       "order_address_id": line.order_address_id}
                      for line in order.lines],
            "addresses": [{"id": address.id, "shipping_method": address.shipping_method}
                          for address in order.addresses],
            "shipments": [{"id": shipment.id, "order_address_id": shipment.order_address_id,
                           "created": shipment.created,
                           "tracking_number": shipment.tracking_number,
                           "comments": shipment.comments,
                           "items": [{"order_product_id": line_id, "quantity": quantity}
                                     for line_id, _, quantity in shipment.items]}
                          for shipment in order.shipments],
        } for order in store.orders.values()],
    }


__all__ = ["DROPSTREAM_SCOPES", "STATUS_LABELS", "BigCommerceSandbox"]
