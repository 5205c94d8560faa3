"""DropStream's webhooks in a BigCommerce store: registered, kept active, carrying the secret.

Three scopes: ``store/order/created`` and ``store/order/statusUpdated`` (an order reaching the
monitored status is a status change), and ``store/order/archived`` ("Delete" in BigCommerce
archives an order, with no status change: an order waiting on hold must learn it is gone, or
fixing the hold would send it). Each hook carries the store's secret in a
custom header, which BigCommerce echoes on every delivery and our webhook route checks.
BigCommerce switches a hook off after ~48 h of failed deliveries or 90 days of silence; the set-up
checks and every polling sweep switch it back on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dropstream.connectors.base import AuthError, ConnectorError
from dropstream_bigcommerce.client import BigCommerceClient, unwrap

log = logging.getLogger(__name__)
SCOPES = ("store/order/created", "store/order/statusUpdated", "store/order/archived")
PATH = "/connectors/bigcommerce/webhooks"


@dataclass
class HookReport:
    created: list[str]
    reactivated: list[str]
    active: list[str]


def _ours(
    client: BigCommerceClient, destination: str, stale: list[dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Our hooks by scope (only the calling account's hooks are listed by BigCommerce); hooks of
    ours still pointing at an earlier DropStream address go to ``stale``."""
    found: dict[str, dict[str, Any]] = {}
    for page in client.v3_pages("/v3/hooks"):
        for hook in page:
            if not isinstance(hook, dict) or hook.get("scope") not in SCOPES:
                continue
            if hook.get("destination") == destination:
                found.setdefault(hook["scope"], hook)
            elif stale is not None and str(hook.get("destination", "")).endswith(PATH):
                stale.append(hook)
    return found


def ensure(client: BigCommerceClient, connector: Any) -> HookReport:
    """Register missing hooks; re-activate switched-off ones; put the current secret on all."""
    destination = connector.webhook_url()
    headers = {connector.WEBHOOK_SECRET_HEADER: connector.webhook_secret()}
    stale: list[dict[str, Any]] = []
    existing = _ours(client, destination, stale)
    for hook in stale:  # DropStream moved (PUBLIC_BASE_URL changed): the old address goes
        client.request("DELETE", f"/v3/hooks/{hook['id']}")
    report = HookReport([], [], [])
    for scope in SCOPES:
        hook = existing.get(scope)
        if hook is None:
            client.post(
                "/v3/hooks",
                {"scope": scope, "destination": destination, "is_active": True, "headers": headers},
            )
            report.created.append(scope)
        elif not hook.get("is_active") or (hook.get("headers") or {}) != headers:
            unwrap(client.put(f"/v3/hooks/{hook['id']}", {"is_active": True, "headers": headers}))
            (report.reactivated if not hook.get("is_active") else report.active).append(scope)
        else:
            report.active.append(scope)
    return report


def reactivate(client: BigCommerceClient, connector: Any) -> list[str]:
    """Switch our hooks back on if BigCommerce switched them off; never fails a sweep."""
    secret = connector.context.credentials.get("webhook_secret")
    if not secret:
        return []  # never registered (the set-up checks register them)
    try:
        switched: list[str] = []
        for scope, hook in _ours(client, connector.webhook_url()).items():
            if not hook.get("is_active"):
                client.put(f"/v3/hooks/{hook['id']}", {"is_active": True})
                switched.append(scope)
        if switched:
            log.info("BigCommerce store %s: re-activated webhooks %s", client.store_hash, switched)
        return switched
    except ConnectorError as error:
        if isinstance(error, AuthError):
            raise
        log.warning(
            "BigCommerce store %s: could not check webhooks: %s", client.store_hash, error.message
        )
        return []
