"""A BigCommerce sandbox: a real HTTP server standing in for BigCommerce.

It powers the demo, the connector's integration tests and the benchmarks. Paths, field names,
types and status codes follow the real API as DropStream's ``bigcommerce.md`` and BigCommerce's
OpenAPI specs describe it; where the sandbox has to choose (something undocumented), the module
that does it says so.

Python::

    with BigCommerceSandbox() as sandbox:            # or sandbox.start(host, port) / stop()
        store = sandbox.create_store()
        creds = sandbox.create_api_account(store)    # {client_id, client_secret, access_token}
        sandbox.add_product(store, name="Tee", sku="TEE-1", inventory_level=10)
        order_id = sandbox.create_order(store, lines=[{"sku": "TEE-1", "quantity": 2}])
        # REST: GET {sandbox.api_base_url}/stores/{store}/v2/orders/{order_id}
        #       with header X-Auth-Token: creds["access_token"]

``BigCommerceSandbox(*, rate_limits=True, webhook_retry_scale=0.01, seed=0, slow_seconds=11.0,
webhook_timeout=5.0, oauth_code_ttl=300.0)``. ``api_base_url`` and ``login_base_url`` are the
base URL (``{base}/stores/{hash}/v2|v3/...``; ``POST {base}/oauth2/token``).

Admin methods (thread-safe) and their HTTP twins (JSON; ``GET /_sandbox`` lists them):

=====================================================  ==========================================
``create_store(store_hash=None, *, name, plan)``       ``POST /_sandbox/stores``
``create_api_account(store_hash, scopes=None)``        ``POST /_sandbox/stores/{h}/api_accounts``
``revoke_api_account(store_hash, client_id)``          ``DELETE .../api_accounts/{client_id}``
``set_rate_limit(store_hash, *, quota, window_ms)``    ``PUT /_sandbox/stores/{h}/rate_limit``
``register_app(client_id, client_secret, *, ...)``     ``POST /_sandbox/apps``
``install_app(store_hash, client_id)``                 ``POST .../apps/{client_id}/install``
``signed_callback_url(store_hash, client_id, kind)``   ``GET .../apps/{client_id}/callback_url``
``uninstall_app(store_hash, client_id)``               ``POST .../apps/{client_id}/uninstall``
``add_product(store_hash, *, name, sku, ...)``         ``POST /_sandbox/stores/{h}/products``
``create_order(store_hash, *, lines, ...)``            ``POST /_sandbox/stores/{h}/orders``
``get_order(store_hash, order_id)``                    ``GET /_sandbox/stores/{h}/orders/{id}``
``set_order_status(store_hash, order_id, status_id)``  ``PUT .../orders/{id}/status``
``archive_order(store_hash, order_id)``                ``POST .../orders/{id}/archive``
``purge_order(store_hash, order_id)``                  ``DELETE .../orders/{id}`` (then 404)
``rename_status(store_hash, status_id, custom_label)``  ``PUT .../order_statuses/{status_id}``
``inventory_level(store_hash, sku)``                   ``GET /_sandbox/stores/{h}/inventory/{sku}``
``hooks(store_hash)``                                  ``GET /_sandbox/stores/{h}/hooks``
``deactivate_hooks(store_hash)``                       ``POST .../hooks/deactivate``
``call_log(store_hash=None)``                          ``GET /_sandbox/calls?store_hash=``
``stats(store_hash)``                                  ``GET /_sandbox/stats/{h}``
``inject(kind, *, store_hash, count, ...)``            ``POST /_sandbox/faults``
``active_faults()`` / ``clear_faults()``               ``GET`` / ``DELETE /_sandbox/faults``
``webhook_deliveries(store_hash=None)``                ``GET /_sandbox/webhooks?store_hash=``
``wait_for_webhooks(timeout=5.0)``                     ``POST /_sandbox/webhooks/wait``
``snapshot()``                                         ``GET /_sandbox/state``
=====================================================  ==========================================

Order lines for ``create_order``: ``{"sku": ...}`` or ``{"product_id": ...[, "variant_id" |
"options": {"Size": "M"}]}`` with ``"quantity"``, ``"address_index"`` (which of
``shipping_addresses``, default 0) and ``"bundle": [component lines]`` (components become
``is_bundled_product`` lines under the parent); ``{"type": "giftcertificate", "name", "price",
"recipient_email"}`` for a gift certificate. ``custom_products``: ``{"name", "quantity",
"price"[, "sku"]}`` (no SKU allowed). Each shipping address carries ``shipping_method``.
Products of ``type="digital"`` make digital lines. An order is created the way a checkout
creates it: at status 0 (``store/order/created``), then moved to ``status_id``
(``store/order/statusUpdated`` and ``store/order/updated``).

``stats(store_hash)`` → ``calls``, ``responses_429`` (quota refusals), ``max_calls_in_window``
(most requests in one fixed quota window), ``max_calls_in_sliding_window``, ``by_status``,
``faults_injected``, ``quota``, ``window_ms``, ``untracked_inventory_writes``.

Fault kinds (:mod:`.faults`): ``500 502 503 504 429 429_reset 401 reset reset_after slow
truncated html`` for API calls, ``drop_webhooks webhooks_fail`` for deliveries.

``snapshot()`` is what a run's invariant checker (``dropstream.testing.invariants``) reads: every
store's orders with their status history and shipments, tracked stock, hooks, the call log
(with whose token each call used) and the webhook deliveries (with what the receiver answered).
Run it alone with ``dropstream sandbox bigcommerce [--port N] [--seed-demo]``.
"""

from __future__ import annotations

from .core import DROPSTREAM_SCOPES, BigCommerceSandbox
from .errors import SandboxError, UnknownObject

__all__ = ["DROPSTREAM_SCOPES", "BigCommerceSandbox", "SandboxError", "UnknownObject"]
