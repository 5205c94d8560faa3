"""The sandbox's own outbound HTTP: webhook deliveries and the uninstall callback.

Standard library only (``http.client``), one connection per call, always closed; failures come
back as text, never raised, because BigCommerce's side just records them.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


#: How much of an answer's body :func:`exchange` keeps (the delivery log shows it).
ANSWER_KEPT = 500


def send(method: str, url: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 5.0
         ) -> tuple[int | None, str | None]:
    """``(status, None)`` when an answer came back, ``(None, why)`` when none did."""
    status, error, _ = exchange(method, url, body=body, headers=headers, timeout=timeout)
    return status, error


def exchange(method: str, url: str, *, body: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float = 5.0
             ) -> tuple[int | None, str | None, str]:
    """As :func:`send`, with the start of the answer's body (text, at most
    :data:`ANSWER_KEPT` characters; empty when no answer came)."""
    parts = urlsplit(url)
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        answer = response.read()
        return response.status, None, answer[:ANSWER_KEPT].decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as failure:
        return None, f"{type(failure).__name__}: {failure}", ""
    finally:
        connection.close()
