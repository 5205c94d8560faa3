"""HTTP calls to a WMS speaking the protocol: auth, safe transport, typed errors, validated replies.

Every call goes through :class:`~dropstream.net.outbound.OutboundSession` (https only, checked
addresses, no redirects, timeouts, size caps). What comes back is turned into the connector
contract's errors here and nowhere else:

* 401/403 → :class:`AuthError`; 409/422 (and other 4xx) → :class:`RejectedError` carrying the
  WMS's error code and field path; 404 → :class:`RemoteNotFound`;
* 429, 5xx, timeouts, resets and replies that break the protocol → :class:`TransientError`
  (with ``Retry-After`` honoured);
* a refused URL → :class:`RejectedError` naming ``settings.base_url``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from dropstream.connectors.base import (
    AuthError,
    RejectedError,
    RemoteNotFound,
    TransientError,
    redact,
)
from dropstream.net.outbound import OutboundPolicy, ResponseTooLarge, UnsafeURL, shared_session
from dropstream_wms_generic import protocol

USER_AGENT = f"DropStream-WMS-Generic/{protocol.VERSION}"


@dataclass(frozen=True)
class Auth:
    """How to authenticate towards the WMS (``mode``: bearer, basic or api_key)."""

    mode: str
    token: str = ""
    username: str = ""
    password: str = ""
    api_key: str = ""
    api_key_header: str = "X-API-Key"

    def headers(self) -> dict[str, str]:
        if self.mode == "basic":
            if not self.username:
                raise AuthError(
                    "Basic auth needs credentials.username and credentials.password.",
                    field="credentials.username",
                )
            pair = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if self.mode == "api_key":
            if not self.api_key:
                raise AuthError(
                    "API-key auth needs credentials.api_key.", field="credentials.api_key"
                )
            return {self.api_key_header: self.api_key}
        if not self.token:
            raise AuthError("Bearer auth needs credentials.token.", field="credentials.token")
        return {"Authorization": f"Bearer {self.token}"}

    def secrets(self) -> list[str]:
        return [value for value in (self.token, self.password, self.api_key) if value]


class WmsClient:
    """One WMS (``base_url``) as seen by one warehouse connection."""

    def __init__(self, base_url: str, auth: Auth, policy: OutboundPolicy) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.policy = policy

    def get(
        self, path: str, document: str, params: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        return self.request("GET", path, document, params=params)

    def post(self, path: str, document: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        return self.request("POST", path, document, body=body)

    def request(
        self,
        method: str,
        path: str,
        document: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """Call ``path`` (under ``/v1``) and return ``(status, reply)`` with the reply validated
        as ``document``. :raises ConnectorError: as the module docstring says."""
        url = f"{self.base_url}/{protocol.VERSION}/{path.lstrip('/')}"
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self.auth.headers()}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        what = f"{method} {path.split('?')[0]}"
        try:
            response = shared_session(self.policy).request(
                method, url, params=params, data=data, headers=headers
            )
        except UnsafeURL as error:
            raise RejectedError(
                f"The WMS address is not allowed: {error}. Fix settings.base_url.",
                code="unsafe_url",
                field="settings.base_url",
            ) from None
        except ResponseTooLarge as error:
            raise TransientError(f"WMS {what}: {error}", code="malformed_response") from None
        except requests.Timeout:
            raise TransientError(
                f"WMS {what}: no answer in time (timeout)", code="timeout"
            ) from None
        except requests.RequestException as error:
            raise TransientError(
                f"WMS {what}: connection failed ({type(error).__name__})", code="connection_failed"
            ) from None
        return response.status_code, self._reply(what, response, document)

    def _reply(self, what: str, response: requests.Response, document: str) -> Any:
        status = response.status_code
        payload = _json(response)
        if 200 <= status < 300:
            if payload is _NOT_JSON:
                raise TransientError(
                    f"WMS {what} answered {status} with a body that is not JSON",
                    code="malformed_response",
                    remote_status=status,
                )
            try:
                protocol.validate(document, payload)
            except protocol.ProtocolError as error:
                raise TransientError(
                    f"WMS {what} answered {status} with a reply that breaks the protocol: {error}",
                    code="malformed_response",
                    remote_status=status,
                ) from None
            return payload
        code, message, field = protocol.error_from(payload) or ("", "", None)
        said = self._said(message or response.reason or "")
        if status in (401, 403):
            raise AuthError(
                f"The WMS refused the credentials ({status}{': ' + said if said else ''}). "
                "Check the warehouse's credentials and auth mode.",
                remote_status=status,
            )
        if status == 404:
            raise RemoteNotFound(
                f"WMS {what}: not found{': ' + said if said else ''}", remote_status=status
            )
        if status == 429 or status >= 500:
            raise TransientError(
                f"WMS {what} answered {status}{': ' + said if said else ''}",
                retry_after=retry_after(response.headers.get("Retry-After")),
                remote_status=status,
            )
        raise self.refusal(status, code, message or response.reason or "", field)

    def refusal(self, status: int, code: str, message: str, field: str | None) -> RejectedError:
        """The error for a WMS's refusal of a request (or of one order of a batch) on its
        merits, with its code, field and words (credentials it echoed taken out)."""
        said = self._said(message)
        return RejectedError(
            f"The WMS refused it ({status}{', ' + code if code else ''}): "
            f"{said or 'no reason given'}",
            code=code or "rejected",
            field=field,
            remote_status=status,
        )

    def _said(self, message: str) -> str:
        # A WMS may echo what it was sent, credentials included: never pass those on.
        return redact(message, self.auth.secrets())[:500]


_NOT_JSON = object()


def _json(response: requests.Response) -> Any:
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return _NOT_JSON


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), 86400.0)


def path_segment(value: str) -> str:
    """``value`` safe as one path segment (ids come from the WMS)."""
    return quote(value, safe="")
