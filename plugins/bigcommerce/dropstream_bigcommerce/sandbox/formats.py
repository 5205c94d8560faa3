"""How BigCommerce writes values on the wire: money, dates, v3 pagination.

V2 money is a string with four decimals (``"55.9900"``) and V2 dates are RFC-2822 in UTC
(``"Tue, 05 Mar 2019 21:40:11 +0000"``); V3 catalog prices are JSON numbers and V3 dates ISO-8601.
Date filters accept RFC-2822 or ISO-8601 (orders.v2.oas2.yml, ``min_date_modified``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

FOUR_PLACES = Decimal("0.0001")


def money(value: Decimal | int | str) -> str:
    """``Decimal("10")`` → ``"10.0000"``."""
    return str(Decimal(value).quantize(FOUR_PLACES))


def decimal(value: Any, field: str) -> Decimal:
    """A non-negative amount given as a number or a numeric string; ``ValueError`` names the
    field otherwise."""
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{field} must be a decimal amount such as \"10.00\", not {value!r}") from None
    if not result.is_finite() or result < 0:
        raise ValueError(f"{field} must be a finite amount of zero or more, not {value!r}")
    return result


def rfc2822(timestamp: float | None) -> str:
    """Unix seconds → RFC-2822 in UTC; ``None`` → ``""`` (as ``date_shipped`` before shipping)."""
    if timestamp is None:
        return ""
    return format_datetime(datetime.fromtimestamp(int(timestamp), UTC))


def iso8601(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).isoformat()


def parse_date(text: str) -> float:
    """RFC-2822 (``Thu, 20 Apr 2017 11:32:00 -0400``) or ISO-8601
    (``2017-04-20T11:32:00.000-04:00``) → Unix seconds. A date without a zone is UTC."""
    text = text.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            parsed = None
    if parsed is None:
        raise ValueError("not an RFC-2822 or ISO-8601 date")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def resource_url(base_url: str, store_hash: str) -> Callable[[str], str]:
    """The maker of V2 resource links: ``/orders/1/products`` →
    ``{base_url}/stores/{store_hash}/v2/orders/1/products``."""
    return lambda resource: f"{base_url}/stores/{store_hash}/v2{resource}"


def v3_page(items: list[Any], page: int, limit: int, query: dict[str, str]) -> dict[str, Any]:
    """``{"data": [...], "meta": {"pagination": {...}}}`` for one page of ``items``; the links
    are query strings (``"?page=2&limit=50"``) as the V3 specs show them."""
    total = len(items)
    total_pages = math.ceil(total / limit) if total else 0
    chunk = items[(page - 1) * limit: page * limit]

    def link(number: int) -> str:
        return "?" + urlencode({**query, "page": number, "limit": limit})

    links = {"current": link(page)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < total_pages:
        links["next"] = link(page + 1)
    return {"data": chunk, "meta": {"pagination": {
        "total": total, "count": len(chunk), "per_page": limit, "current_page": page,
        "total_pages": total_pages, "links": links}}}
