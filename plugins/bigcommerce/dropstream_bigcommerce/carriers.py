"""Warehouse carrier codes → what a BigCommerce shipment names: its ``shipping_provider`` (an
enum BigCommerce turns into a tracking link) and its ``tracking_carrier`` (an AfterShip courier
slug, used when the provider is not in the enum, e.g. DHL).

Warehouses spell carriers many ways ("UPS", "ups", "U.P.S."), so codes are compared by their
letters and digits only. A store can add or override codes with its ``carrier_map`` setting.
"""

from __future__ import annotations

import re

#: BigCommerce's ``shipping_provider`` enum (besides "" and ``carrier_<id>``), see the Orders V2
#: shipment schema.
PROVIDERS = frozenset(
    {
        "auspost",
        "canadapost",
        "endicia",
        "usps",
        "fedex",
        "ups",
        "upsready",
        "upsonline",
        "shipperhq",
        "royalmail",
    }
)

#: normalised warehouse code → (shipping_provider, tracking_carrier)
DEFAULTS: dict[str, tuple[str, str]] = {
    "ups": ("ups", "ups"),
    "upsground": ("ups", "ups"),
    "fedex": ("fedex", "fedex"),
    "fdx": ("fedex", "fedex"),
    "fedexground": ("fedex", "fedex"),
    "usps": ("usps", "usps"),
    "unitedstatespostalservice": ("usps", "usps"),
    "endicia": ("endicia", "usps"),
    "stamps": ("usps", "usps"),
    "dhl": ("", "dhl"),
    "dhlexpress": ("", "dhl"),
    "dhlecommerce": ("", "dhl-global-mail"),
    "dhlglobalmail": ("", "dhl-global-mail"),
    "auspost": ("auspost", "australia-post"),
    "australiapost": ("auspost", "australia-post"),
    "canadapost": ("canadapost", "canada-post"),
    "royalmail": ("royalmail", "royal-mail"),
    "ontrac": ("", "ontrac"),
    "lasership": ("", "lasership"),
    "purolator": ("", "purolator"),
    "amazon": ("", "amazon"),
}
#: The AfterShip slug of each enum provider, for overrides that name only the provider.
_SLUG_OF_PROVIDER = {provider: slug for provider, slug in DEFAULTS.values() if provider}


def normalise(code: str) -> str:
    return re.sub(r"[^a-z0-9]", "", (code or "").lower())


def resolve(carrier: str, overrides: dict[str, str] | None = None) -> tuple[str, str]:
    """``(shipping_provider, tracking_carrier)`` for a warehouse carrier code; ``("", "")`` for
    an unknown one (the shipment then carries the tracking number and method only)."""
    key = normalise(carrier)
    custom = {normalise(code): provider for code, provider in (overrides or {}).items()}
    if key in custom:
        provider = custom[key]
        return provider, _SLUG_OF_PROVIDER.get(provider, DEFAULTS.get(key, ("", ""))[1])
    return DEFAULTS.get(key, ("", ""))
