"""One HTTP client for BigCommerce's v2 and v3 REST APIs, over DropStream's guarded session.

It turns every outcome into what the pipeline understands: JSON (``None`` for 204), or one of
the connector errors — 401/403 :class:`AuthError` (a 403 names the scope to grant), 404
:class:`RemoteNotFound`, 4xx :class:`RejectedError` with the field BigCommerce named, and
429/5xx/timeouts/resets/truncated or non-JSON bodies :class:`TransientError` with how long to
wait. It keeps the store under its quota (see :mod:`.ratelimit`), waits out a 429 by its reset
header, and retries 5xx a bounded number of times, never a non-idempotent POST (a lost POST is
found again by the caller's look-up, not repeated blindly). Nothing it raises or logs contains
the access token.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import requests

from dropstream.connectors.base import (
    AuthError,
    RejectedError,
    RemoteNotFound,
    TransientError,
    redact,
)
from dropstream.net.outbound import OutboundSession, ResponseTooLarge, UnsafeURL
from dropstream_bigcommerce.ratelimit import Limiter, read_headers

log = logging.getLogger(__name__)
V2_PAGE = 250  # the list maximum BigCommerce documents (and its own client pages by)
V3_PAGE = 250
#: 5xx retries inside one call (then the job's own backoff takes over).
RETRY_DELAYS = (0.5, 2.0)
#: Longest the client waits for a quota window itself; longer waits go back to the job queue.
MAX_WAIT = 35.0
MAX_429_WAITS = 3
#: Seconds a 429 without quota headers (the platform under load) holds the store's calls back.
LOAD_PAUSE = 5.0
#: The code of the :class:`TransientError` for an answer larger than DropStream reads at once
#: (an order with thousands of lines embedded): ask for less, page by page, instead.
TOO_LARGE = "response_too_large"
MAX_PAGES = 10_000

#: API path prefix → (scope string, the name the control panel shows) for 403 messages.
SCOPES: Sequence[tuple[str, str, str]] = (
    ("/v2/orders", "store_v2_orders", "Orders"),
    ("/v2/order_statuses", "store_v2_orders_read_only", "Orders"),
    ("/v3/orders", "store_v2_orders", "Orders"),
    ("/v3/catalog", "store_v2_products_read_only", "Products"),
    ("/v3/inventory/locations", "store_locations_read_only", "Store Locations"),
    ("/v3/inventory", "store_inventory", "Store Inventory"),
    ("/v2/store", "store_v2_information_read_only", "Information & Settings"),
    ("/v2/time", "store_v2_information_read_only", "Information & Settings"),
    ("/v2/shipping", "store_v2_information_read_only", "Information & Settings"),
    ("/v3/hooks", "default", "(default scope)"),
)


def scope_for(path: str) -> tuple[str, str]:
    for prefix, scope, label in SCOPES:
        if path.startswith(prefix):
            return scope, label
    return "", ""


def missing_scope_message(method: str, path: str) -> str:
    scope, label = scope_for(path)
    if not scope:
        return (
            f"BigCommerce refused {method} {path} (403 Forbidden): the API account lacks a "
            "permission, or the store hash is wrong."
        )
    level = (
        "Modify"
        if method != "GET" and not scope.endswith("_read_only")
        else "Read-only (or Modify)"
    )
    return (
        f"BigCommerce refused {method} {path} (403 Forbidden): the API account lacks the "
        f"{label} scope ({scope}). Grant {label}: {level} under Settings › Store-level API "
        "accounts (create a new account: scopes cannot be changed afterwards), or re-install "
        "the app."
    )


class BigCommerceClient:
    """Calls one store's API. Build one per piece of work and close it afterwards."""

    def __init__(
        self,
        base_url: str,
        store_hash: str,
        access_token: str,
        *,
        session: OutboundSession,
        limiter: Limiter,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        max_wait: float = MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root = f"{base_url.rstrip('/')}/stores/{store_hash}"
        self.store_hash = store_hash
        self._token = access_token
        self._session = session
        self._limiter = limiter
        self._retry_delays = tuple(retry_delays)
        self._max_wait = max_wait
        self._sleep = sleep
        self.calls = 0

    def close(self) -> None:
        """Close the session (for a caller that made one for this client alone; the connector
        lends the thread's shared session, which outlives its clients)."""
        self._session.close()

    # -- verbs ------------------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body, idempotent=False)

    def v2_pages(
        self, path: str, params: dict[str, Any] | None = None, limit: int = V2_PAGE
    ) -> Iterator[list[Any]]:
        """Every page of a v2 list: a bare JSON array; 204 or a short page is the end."""
        for page in range(1, MAX_PAGES):
            items = self.get(path, {**(params or {}), "page": page, "limit": limit})
            if items is None:
                return
            if not isinstance(items, list):
                raise TransientError(
                    f"BigCommerce returned a non-list for {path}", remote_status=200
                )
            if items:
                yield items
            if len(items) < limit:
                return

    def v3_pages(
        self, path: str, params: dict[str, Any] | None = None, limit: int = V3_PAGE
    ) -> Iterator[list[Any]]:
        """Every page of a v3 list (``{"data": [...], "meta": {"pagination": ...}}``)."""
        for page in range(1, MAX_PAGES):
            body = self.get(path, {**(params or {}), "page": page, "limit": limit})
            data, total_pages = unwrap_v3_page(body, path)
            if data:
                yield data
            if total_pages is None:
                if len(data) < limit:
                    return
            elif page >= total_pages:
                return

    # -- the one place a request is made -------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        retries = list(self._retry_delays if idempotent else ())
        waits_429 = 0
        while True:
            self._respect_quota()
            try:
                response = self._send(method, path, params, body)
            except BaseException:
                self._limiter.release(self.store_hash)  # no answer: if it was the probe, say so
                raise
            self._observe(response)
            status = response.status_code
            if status == 429:
                waits_429 += 1
                wait = _reset_seconds(response)
                if waits_429 > MAX_429_WAITS or wait > self._max_wait:
                    raise TransientError(
                        f"BigCommerce rate limit reached (429) on {method} {path}; "
                        "retrying after the quota resets.",
                        retry_after=wait or 30.0,
                        remote_status=429,
                    )
                log.info("BigCommerce store %s: 429, waiting %.1fs", self.store_hash, wait)
                self._sleep(wait or 1.0)
                continue
            if status >= 500 and retries:
                self._sleep(retries.pop(0) * (1 + random.random() / 4))
                continue
            return self._result(method, path, response)

    def _respect_quota(self) -> None:
        """Wait until the limiter reserves this call a request.

        The limiter is asked again after every wait: a wait ends when the window resets, and
        every worker waiting for that moment would otherwise send at once. The waits asked for,
        not the clock, bound the loop at ``max_wait``, so a no-op ``sleep`` cannot spin forever.
        """
        waited = 0.0
        while (wait := self._limiter.acquire(self.store_hash)) > 0:
            if waited + wait > self._max_wait:
                raise TransientError(
                    "DropStream is holding back calls to stay under the store's BigCommerce API "
                    "quota.",
                    retry_after=wait,
                )
            self._sleep(wait)
            waited += wait

    def _send(
        self, method: str, path: str, params: dict[str, Any] | None, body: Any
    ) -> requests.Response:
        headers = {"X-Auth-Token": self._token, "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        self.calls += 1
        try:
            response = self._session.request(
                method, self.root + path, params=params, data=data, headers=headers
            )
        except UnsafeURL as error:
            raise AuthError(
                f"The store's API address is not allowed: {error}. Check the api_base_url setting.",
                code="unsafe_url",
            ) from None
        except ResponseTooLarge as error:
            raise TransientError(
                f"BigCommerce sent too large a response for {method} {path}: {error}",
                code=TOO_LARGE,
            ) from None
        except requests.Timeout:
            raise TransientError(f"BigCommerce did not answer {method} {path} in time.") from None
        except requests.RequestException as error:
            # Connection refused or reset, truncated chunked body...: say which, not the details
            # (they can echo the request).
            raise TransientError(
                f"BigCommerce could not be reached for {method} {path} ({type(error).__name__})."
            ) from None
        return response

    def _observe(self, response: requests.Response) -> None:
        quota = read_headers(response.headers)
        if quota is not None:
            self._limiter.observe(self.store_hash, *quota)
            if response.status_code == 429:
                # The quota is spent until the reset: hold every worker's calls back until then,
                # whatever later answers say. An answer to a call sent before this refusal can
                # arrive after it and report a window with requests left; as the quota's state
                # alone it would let calls through early.
                self._limiter.pause(self.store_hash, quota[1])
            return
        if _is_api_answer(response):
            # The API answered without quota headers: the store's plan has no quota.
            self._limiter.unmetered(self.store_hash)
            return
        # A failure says nothing of the quota: if this call was the window's probe, another may
        # go now rather than when its claim expires.
        self._limiter.release(self.store_hash)
        if response.status_code == 429:
            # A 429 without the headers: the platform is under load; wait a little. Only a
            # little: recorded as the quota's state, it would hold every call back until the
            # quota window resets (up to 30 s), and the jobs waiting meanwhile hold their
            # database transactions (on SQLite, the one write lock).
            self._limiter.pause(self.store_hash, LOAD_PAUSE)

    def _result(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        if status == 204 or (200 <= status < 300 and not response.content):
            return None
        if 200 <= status < 300:
            try:
                return _json(response)
            except ValueError:
                raise TransientError(
                    f"BigCommerce answered {method} {path} with a body that is not "
                    "JSON (truncated, or an error page).",
                    remote_status=status,
                ) from None
        message, field = self._remote_message(response)
        if status == 401:
            raise AuthError(
                "BigCommerce refused the access token (401 Unauthorized): it is wrong, "
                "or its API account was deleted or the app uninstalled. Enter the "
                "store's current access token (or re-install the app).",
                remote_status=401,
            )
        if status == 403:
            raise AuthError(
                missing_scope_message(method, path), code="missing_scope", remote_status=403
            )
        if status == 404:
            raise RemoteNotFound(
                f"BigCommerce has no {path} (404){': ' + message if message else ''}.",
                remote_status=404,
            )
        if status >= 500:
            raise TransientError(
                f"BigCommerce failed on {method} {path} ({status})"
                f"{': ' + message if message else ''}.",
                retry_after=_retry_after(response),
                remote_status=status,
            )
        raise RejectedError(
            f"BigCommerce refused {method} {path} ({status}): {message or 'no reason given'}",
            field=field,
            remote_status=status,
        )

    def _remote_message(self, response: requests.Response) -> tuple[str, str | None]:
        """BigCommerce's words from either error shape (v2 ``[{status, message}]``, v3
        ``{title, errors: {field: message}}``), short and without the token."""
        try:
            body = _json(response)
        except ValueError:
            return "", None
        field = None
        parts: list[str] = []
        if isinstance(body, list):
            parts = [str(item.get("message", "")) for item in body if isinstance(item, dict)]
            parts = [p for p in parts if p]
        elif isinstance(body, dict):
            if body.get("title"):
                parts.append(str(body["title"]))
            errors = body.get("errors")
            if isinstance(errors, dict) and errors:
                field = str(next(iter(errors)))
                parts += [f"{key}: {value}" for key, value in errors.items()]
            elif body.get("detail"):
                parts.append(str(body["detail"]))
        text = redact("; ".join(parts), [self._token])
        return (text[:500] + "…" if len(text) > 500 else text), field


def unwrap_v3_page(body: Any, path: str) -> tuple[list[Any], int | None]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise TransientError(
            f"BigCommerce returned an unexpected body for {path}", remote_status=200
        )
    pagination = (body.get("meta") or {}).get("pagination") or {}
    total = pagination.get("total_pages")
    return body["data"], total if isinstance(total, int) else None


def unwrap(body: Any) -> Any:
    """v3 single objects come wrapped (``{"data": {...}, "meta": {}}``) in the spec and bare in
    the narrative docs: accept both."""
    if (
        isinstance(body, dict)
        and isinstance(body.get("data"), (dict, list))
        and set(body) <= {"data", "meta"}
    ):
        return body["data"]
    return body


def _json(response: requests.Response) -> Any:
    content_type = response.headers.get("Content-Type", "")
    if "json" not in content_type:
        raise ValueError(f"not JSON: {content_type}")
    return json.loads(response.content)


def _is_api_answer(response: requests.Response) -> bool:
    """A success from the API itself: JSON or nothing (not a proxy's or a maintenance page's
    200, which says nothing of the store's quota)."""
    if not 200 <= response.status_code < 300:
        return False
    return not response.content or "json" in response.headers.get("Content-Type", "")


def _reset_seconds(response: requests.Response) -> float:
    quota = read_headers(response.headers)
    if quota is not None:
        return quota[1]
    retry = _retry_after(response)
    return retry if retry is not None else 5.0


def _retry_after(response: requests.Response) -> float | None:
    for header in ("X-Retry-After", "Retry-After"):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None
