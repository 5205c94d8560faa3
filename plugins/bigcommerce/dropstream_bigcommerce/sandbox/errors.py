"""Error responses in BigCommerce's two shapes, and the sandbox's own admin errors.

V2 answers an array of ``{status, message}`` (orders.v2.oas2.yml error examples); V3 a problem
object ``{status, title, type[, errors]}`` (webhooks.v3.yml ``error_Full``), served as
``application/problem+json`` by the Inventory API and as ``application/json`` elsewhere.
"""

from __future__ import annotations

from typing import Any

STATUS_CODES_URL = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"

#: The V3 401 title, word for word from webhooks.v3.yml ``401_Unauthorized``.
UNAUTHORIZED_V3 = ("Unauthorized - the v3 Auth client ID or token in the request are not a valid "
                   "combination for this store.")
UNAUTHORIZED_V2 = "You are not authorized to access this resource with this X-Auth-Token."
#: V2 and V3 403 for a token without the scope the endpoint needs.
MISSING_SCOPE_V2 = "You don't have a required scope to access the endpoint"
MISSING_SCOPE_V3 = "Unauthorized Access. You do not have permission to make this request."
NOT_FOUND_V2 = "The requested resource was not found."


class ApiError(Exception):
    """Raised by a route handler; rendered in the shape of the API version being called."""

    def __init__(self, status: int, message: str, *, errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}


def error_body(version: str, status: int, message: str,
               errors: dict[str, str] | None = None) -> Any:
    if version == "v2":
        return [{"status": status, "message": message}]
    body: dict[str, Any] = {"status": status, "title": message, "type": STATUS_CODES_URL}
    if errors is not None or status == 422:
        body["errors"] = errors or {}
    return body


class SandboxError(ValueError):
    """An admin call the sandbox cannot do (bad argument, unknown store): the message names the
    argument and what to change. The admin HTTP routes answer it as 400 (404 for
    :class:`UnknownObject`)."""


class UnknownObject(SandboxError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
