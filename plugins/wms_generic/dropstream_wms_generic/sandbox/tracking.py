"""Tracking numbers that look and check like each carrier's (so store-side validation and
tracking links behave as they would with real parcels)."""

from __future__ import annotations

import random
import string

#: Carrier → tracking page, with ``{}`` for the number.
TRACKING_URLS = {
    "UPS": "https://www.ups.com/track?tracknum={}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "DHL": "https://www.dhl.com/en/express/tracking.html?AWB={}",
}


def ups(rng: random.Random) -> str:
    """``1Z`` + 6-character shipper number + 2-digit service + 7 digits + check digit."""
    body = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))
    body += rng.choice(["01", "02", "03", "12", "13", "42"])
    body += "".join(rng.choice(string.digits) for _ in range(7))
    values = [int(c) if c.isdigit() else (ord(c) - 63) % 10 for c in body]
    total = sum(values[0::2]) + 2 * sum(values[1::2])
    return f"1Z{body}{(10 - total % 10) % 10}"


def fedex(rng: random.Random) -> str:
    """12 digits; the last checks the first 11 (weights 1, 3, 7 from the right, mod 11)."""
    digits = [rng.randrange(10) for _ in range(11)]
    weights = [1, 3, 7]
    total = sum(d * weights[i % 3] for i, d in enumerate(reversed(digits)))
    return "".join(map(str, digits)) + str(total % 11 % 10)


def usps(rng: random.Random) -> str:
    """22 digits (an IMpb ``9400 1…`` number); mod-10 check digit with weights 3 and 1."""
    digits = [9, 4, 0, 0, 1] + [rng.randrange(10) for _ in range(16)]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def dhl(rng: random.Random) -> str:
    """10 digits (DHL Express air waybill); the last is the first nine mod 7."""
    number = rng.randrange(10**8, 10**9)
    return f"{number}{number % 7}"


GENERATORS = {"UPS": ups, "FedEx": fedex, "USPS": usps, "DHL": dhl}


def tracking_number(carrier: str, rng: random.Random) -> tuple[str, str]:
    """``(number, tracking URL)`` for ``carrier`` (UPS when the carrier is unknown)."""
    carrier = carrier if carrier in GENERATORS else "UPS"
    number = GENERATORS[carrier](rng)
    return number, TRACKING_URLS[carrier].format(number)
