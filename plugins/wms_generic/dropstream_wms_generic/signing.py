"""Signing pushes from a WMS to DropStream's inbound endpoints, and checking them.

A push carries three headers: the warehouse's inbound key (which warehouse connection it claims
to be), the time it was signed, and ``v1=<hex HMAC-SHA256(signing secret, "<timestamp>.<body>")>``.
The receiver refuses a timestamp more than :data:`TOLERANCE_SECONDS` away from its own clock, so
a captured request stops working within minutes; the event id inside the signed body makes a
replay within that window a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import time

KEY_HEADER = "X-DropStream-Key"
TIMESTAMP_HEADER = "X-DropStream-Timestamp"
SIGNATURE_HEADER = "X-DropStream-Signature"
SCHEME = "v1"
TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The request's signature headers are missing, stale or wrong; the message says which."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SCHEME}={digest.hexdigest()}"


def sign(key: str, secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The headers for pushing ``body`` (what a WMS, and the sandbox, send)."""
    timestamp = str(int(now if now is not None else time.time()))
    return {
        KEY_HEADER: key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(
    secret: str, timestamp: str | None, given: str | None, body: bytes, now: float | None = None
) -> None:
    """:raises SignatureError: unless ``given`` signs ``body`` at a ``timestamp`` within the
    tolerance of ``now``."""
    if not timestamp or not given:
        raise SignatureError(f"sign the request: send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix time in seconds") from None
    if abs((now if now is not None else time.time()) - sent_at) > TOLERANCE_SECONDS:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS // 60} minutes "
            "from DropStream's clock: sign each request when it is sent (and "
            "check the WMS's clock)"
        )
    # Several signatures may be sent (space-separated) while a secret is being rotated.
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given.split()):
        raise SignatureError(
            f"{SIGNATURE_HEADER} does not match the body: sign "
            f"'<timestamp>.<body>' with HMAC-SHA256 and the signing secret"
        )
