"""Store information V2: ``/v2/store`` and ``/v2/time`` (store_information.v2.yml).

``id`` is the store hash and ``store_id`` the numeric id (different things, bigcommerce.md §6);
``plan_name``/``plan_level`` tell the rate-limit plan.
"""

from __future__ import annotations

import time
from typing import Any

from .routing import Call, Reply, Route
from .state import Store

PLAN_NAMES = {"standard": "Standard", "plus": "Plus", "pro": "Pro", "unlimited": "Enterprise"}


def store_json(store: Store, base_url: str) -> dict[str, Any]:
    domain = f"{store.hash}.sandbox.example"
    return {
        "id": store.hash, "account_uuid": store.account_uuid, "domain": domain,
        "secure_url": f"https://{domain}",
        "control_panel_base_url": f"https://store-{store.hash}.mybigcommerce.com",
        "status": "live", "name": store.name, "first_name": "Sandbox", "last_name": "Owner",
        "address": "455 Main Street, Austin, TX 78751", "country": "United States",
        "country_code": "US", "infrastructure_region": "us-central1", "phone": "555-123-4567",
        "admin_email": "owner@example.com", "order_email": "orders@example.com",
        "favicon_url": "",
        "timezone": {"name": "Etc/UTC", "raw_offset": 0, "dst_offset": 0,
                     "dst_correction": False,
                     "date_format": {"display": "M jS Y", "export": "M jS Y",
                                     "extended_display": "M jS Y @ g:i A"}},
        "language": "en", "currency": "USD", "currency_symbol": "$", "decimal_separator": ".",
        "thousands_separator": ",", "decimal_places": 2, "currency_symbol_location": "left",
        "weight_units": "Ounces", "dimension_units": "Inches", "dimension_decimal_places": 2,
        "dimension_decimal_token": ".", "dimension_thousands_token": ",",
        "plan_name": PLAN_NAMES[store.plan], "plan_level": PLAN_NAMES[store.plan],
        "plan_is_trial": False, "industry": "Technology", "logo": [],
        "is_price_entered_with_tax": False, "store_id": store.store_id,
        "default_channel_id": 1, "default_site_id": 1000, "active_comparison_modules": [],
        "features": {"stencil_enabled": True, "sitewidehttps_enabled": True,
                     "facebook_catalog_id": "", "checkout_type": "optimized",
                     "wishlists_enabled": True, "graphql_storefront_api_enabled": True,
                     "shopper_consent_tracking_enabled": True,
                     "multi_storefront_enabled": False,
                     "storefront_limits": {"active": 1, "total_including_inactive": 1}},
    }


def get_store(call: Call) -> Reply:
    return Reply(200, store_json(call.store, call.base_url))


def get_time(call: Call) -> Reply:
    return Reply(200, {"time": int(time.time())})


ROUTES = (
    Route(("GET",), "/v2/store", get_store, "information"),
    Route(("GET",), "/v2/time", get_time, "information"),
)
