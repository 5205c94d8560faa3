"""The generic WMS's part in ``dropstream demo``: its sandbox, and a warehouse connected to it.

The sandbox ships each order a few seconds after it arrives (some in two parcels), moves stock
with every parcel, and pushes shipments and stock back to DropStream's signed inbound endpoints
while DropStream also polls: both paths show, and neither makes a duplicate.
"""

from __future__ import annotations

import secrets
from typing import Any

import requests
from sqlalchemy.orm import Session

from dropstream.demo_support import DemoCatalog, DemoContext
from dropstream.stores.models import Warehouse
from dropstream.stores.services import create_warehouse as create_warehouse_row
from dropstream.tenants.models import Provider
from dropstream.tenants.scope import TenantScope
from dropstream_wms_generic.connector import CONNECTOR_ID
from dropstream_wms_generic.sandbox.server import WmsSandbox
from dropstream_wms_generic.sandbox.state import DEFAULT_SHIP_METHODS

SERVICE = "wms"
ACCOUNT = "DEMO"
#: Seconds from order to first parcel; a partial order's second parcel follows as long again.
SHIP_DELAY = 8.0
PARTIAL_RATIO = 0.3


def start_sandbox(demo: DemoContext) -> WmsSandbox:
    """Start the WMS sandbox on a free loopback port and register it as the ``wms`` service."""
    sandbox = WmsSandbox(
        seed=demo.rng.randrange(1, 10**6), ship_delay=SHIP_DELAY, partial_ratio=PARTIAL_RATIO
    ).start()
    demo.add_service(SERVICE, sandbox.url, sandbox.stop)
    return sandbox


def create_warehouse(
    demo: DemoContext, session: Session, provider: Provider, catalog: DemoCatalog
) -> Warehouse | None:
    """A warehouse of ``provider`` on the sandbox (account ``DEMO``, stocked from the catalogue,
    pushing to DropStream); None when this plugin's sandbox is not running."""
    service = demo.services.get(SERVICE)
    if service is None:
        return None
    token, inbound_key, signing_secret = (secrets.token_urlsafe(24) for _ in range(3))
    methods = [dict(m) for m in DEFAULT_SHIP_METHODS]
    known = {m["code"] for m in methods}
    for name, code in catalog.shipping_methods.items():
        if code and code not in known:  # whatever codes the demo's shipping rules use exist here
            methods.append({"code": code, "name": name, "carrier": "UPS"})
            known.add(code)
    _admin(service.url, "set_credentials", token=token)
    add_account(service.url, ACCOUNT, "Demo merchant", catalog)
    _admin(service.url, "set_ship_methods", items=methods)
    warehouse = create_warehouse_row(
        session,
        TenantScope(provider.id),
        {
            "name": "Demo WMS (sandbox)",
            "connector_id": CONNECTOR_ID,
            "is_active": True,
            "settings": {
                "base_url": service.url,
                "auth_mode": "bearer",
                "dedupes_references": True,
                "batch_create": True,  # the sandbox serves POST /v1/orders/batch
                "default_account": ACCOUNT,
            },
            "credentials": {
                "token": token,
                "inbound_key": inbound_key,
                "signing_secret": signing_secret,
            },
        },
    )
    # Pushes made before the demo commits this row are refused and retried by the sandbox.
    _admin(
        service.url,
        "configure_push",
        key=inbound_key,
        secret=signing_secret,
        url=f"{demo.public_base_url.rstrip('/')}/connectors/{CONNECTOR_ID}"
        f"/warehouses/{warehouse.id}",
    )
    return warehouse


def add_account(base_url: str, code: str, name: str, catalog: DemoCatalog) -> None:
    """A customer account on the sandbox at ``base_url``, stocked from the catalogue."""
    _admin(base_url, "add_account", code=code, name=name)
    _admin(base_url, "set_stock", account=code, levels=catalog.warehouse_stock())


def _admin(base_url: str, operation: str, **arguments: Any) -> Any:
    with requests.post(f"{base_url}/_sandbox/{operation}", json=arguments, timeout=10) as response:
        response.raise_for_status()
        return response.json()["result"]
