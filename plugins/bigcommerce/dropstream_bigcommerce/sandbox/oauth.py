"""The single-click app flow: install codes, ``POST /oauth2/token``, signed callbacks.

Follows docs: auth.mdx and callbacks.mdx (bigcommerce.md §1.4-1.5). The merchant's browser is
sent to the app's auth callback with ``code``, ``scope`` (space-separated), ``context``
(``stores/{hash}``) and ``account_uuid``; the app exchanges the code at ``/oauth2/token`` (JSON
or form body) with its client id and secret, the same ``context`` and a ``redirect_uri``
identical to the registered auth callback. A code works once and expires. The token endpoint's
error bodies are not documented; the sandbox answers RFC 6749 ones
(``{"error": "invalid_grant", "error_description": ...}``, 401 for bad client credentials).

``signed_payload_jwt`` is HS256 with the client secret, claims as callbacks.mdx lists them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request

from .errors import SandboxError, UnknownObject
from .state import ApiAccount, App, InstallCode, SandboxState, Store

JWT_LIFETIME = 24 * 3600
CALLBACK_KINDS = ("load", "uninstall", "remove_user")


def owner(store: Store) -> dict[str, Any]:
    return {"id": store.store_id % 1_000_000, "username": "owner@example.com",
            "email": "owner@example.com"}


def register_app(state: SandboxState, client_id: str, client_secret: str, *,
                 auth_callback_url: str, load_callback_url: str, uninstall_callback_url: str,
                 remove_user_callback_url: str | None, scopes: Sequence[str]) -> App:
    for name, value in (("client_id", client_id), ("client_secret", client_secret)):
        if not isinstance(value, str) or len(value) < 8:
            raise SandboxError(f"{name} must be a string of at least 8 characters")
    urls = {"auth_callback_url": auth_callback_url, "load_callback_url": load_callback_url,
            "uninstall_callback_url": uninstall_callback_url}
    if remove_user_callback_url is not None:
        urls["remove_user_callback_url"] = remove_user_callback_url
    for name, url in urls.items():
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise SandboxError(f"{name} must be an absolute http(s) URL, not {url!r}")
    if isinstance(scopes, str) or not scopes or not all(isinstance(s, str) and s for s in scopes):
        raise SandboxError("scopes must be a non-empty list of OAuth scope strings, such as "
                           "[\"store_v2_orders\"]")
    app = App(client_id, client_secret, auth_callback_url, load_callback_url,
              uninstall_callback_url, remove_user_callback_url, tuple(scopes),
              str(uuid.UUID(int=state.rng.getrandbits(128))))
    state.apps[client_id] = app
    return app


def app_or_error(state: SandboxState, client_id: str) -> App:
    app = state.apps.get(client_id)
    if app is None:
        raise UnknownObject(f"no app with client_id {client_id!r}; register_app first")
    return app


def install_url(state: SandboxState, store_hash: str, client_id: str, code_ttl: float) -> str:
    store = state.store(store_hash)
    app = app_or_error(state, client_id)
    code = InstallCode(secrets.token_urlsafe(12), client_id, store.hash, time.time() + code_ttl)
    state.codes[code.code] = code
    query = urlencode({"account_uuid": app.account_uuid, "code": code.code,
                       "context": f"stores/{store.hash}", "scope": " ".join(app.scopes)})
    separator = "&" if "?" in app.auth_callback_url else "?"
    return f"{app.auth_callback_url}{separator}{query}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_payload_jwt(app: App, store: Store, kind: str) -> str:
    issued = int(time.time())
    user = ({"id": owner(store)["id"] + 1, "email": "staff@example.com", "locale": "en-US"}
            if kind == "remove_user" else
            {"id": owner(store)["id"], "email": "owner@example.com", "locale": "en-US"})
    claims = {"aud": app.client_id, "iss": "bc", "iat": issued, "nbf": issued,
              "exp": issued + JWT_LIFETIME, "jti": str(uuid.uuid4()),
              "sub": f"stores/{store.hash}", "user": user,
              "owner": {"id": owner(store)["id"], "email": "owner@example.com"},
              "url": "/", "channel_id": None}
    signing_input = (_b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode()) + "."
                     + _b64(json.dumps(claims).encode()))
    digest = hmac.new(app.client_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def callback_url(state: SandboxState, store_hash: str, client_id: str, kind: str) -> str:
    if kind not in CALLBACK_KINDS:
        raise SandboxError(f"kind must be one of {CALLBACK_KINDS}, not {kind!r}")
    store = state.store(store_hash)
    app = app_or_error(state, client_id)
    base = {"load": app.load_callback_url, "uninstall": app.uninstall_callback_url,
            "remove_user": app.remove_user_callback_url}[kind]
    if base is None:
        raise SandboxError(f"app {client_id} registered no remove_user_callback_url")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode({'signed_payload_jwt': signed_payload_jwt(app, store, kind)})}"


class TokenError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def _fields(request: Request) -> dict[str, Any]:
    if request.mimetype == "application/json":
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            raise TokenError(400, "invalid_request", "the JSON body is not valid JSON") from None
        if not isinstance(body, dict):
            raise TokenError(400, "invalid_request", "the body must be a JSON object")
        return body
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    raise TokenError(400, "invalid_request", "send the fields as JSON or as a form "
                                             "(Content-Type application/json or "
                                             "application/x-www-form-urlencoded)")


def exchange_code(state: SandboxState, request: Request) -> dict[str, Any]:
    """The token endpoint. Raises :class:`TokenError`; on success the store gets an app
    account for the client (replacing any earlier token of that app for that store)."""
    fields = _fields(request)
    required = ("client_id", "client_secret", "code", "context", "grant_type", "redirect_uri")
    for name in required:
        if not isinstance(fields.get(name), str) or not fields[name]:
            raise TokenError(400, "invalid_request", f"{name} is required")
    if fields["grant_type"] != "authorization_code":
        raise TokenError(400, "unsupported_grant_type", "grant_type must be authorization_code")
    app = state.apps.get(fields["client_id"])
    if app is None or not hmac.compare_digest(app.client_secret.encode(),
                                              fields["client_secret"].encode()):
        raise TokenError(401, "invalid_client", "client_id and client_secret do not match an app")
    code = state.codes.get(fields["code"])
    if code is None or code.client_id != app.client_id:
        raise TokenError(400, "invalid_grant", "the code is not valid for this client")
    if code.used:
        raise TokenError(400, "invalid_grant", "the code was already used")
    if code.expires_at < time.time():
        raise TokenError(400, "invalid_grant", "the code has expired; install the app again")
    if fields["context"] != f"stores/{code.store_hash}":
        raise TokenError(400, "invalid_grant", "context does not match the store the code was "
                                               "issued for")
    if fields["redirect_uri"] != app.auth_callback_url:
        raise TokenError(400, "invalid_grant", "redirect_uri must be identical to the app's "
                                               "registered auth callback URL")
    scope = fields.get("scope")
    if scope is not None and set(str(scope).split()) != set(app.scopes):
        raise TokenError(400, "invalid_scope", "scope differs from the scopes granted to the app")
    code.used = True
    store = state.store(code.store_hash)
    account = ApiAccount(store.hash, app.client_id, app.client_secret, secrets.token_hex(16),
                         frozenset(app.scopes), kind="app")
    state.add_account(account)
    user = owner(store)
    return {"access_token": account.access_token, "scope": " ".join(app.scopes), "user": user,
            "owner": dict(user), "context": f"stores/{store.hash}",
            "account_uuid": app.account_uuid}
