"""Who is calling: an API key (``Authorization: Bearer``) or a browser session.

Every API request is resolved here once, before its view runs (Redash's ``org_resolving``): the
principal goes to ``g.principal`` and its :class:`TenantScope` is activated on ``db.session`` for
the whole request, so the backstop filters every ORM query even if a view forgot the scope.
Views opt *out* of authentication with :func:`public`; nothing under the API opts in by
accident. Session-authenticated unsafe requests must echo the session's CSRF token in
``X-CSRF-Token``; API keys are not sent by browsers on their own, so they need none.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app, g, request, session
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from dropstream.api.common import Text, guard_json_body
from dropstream.errors import Forbidden, Unauthorized
from dropstream.extensions import db
from dropstream.observability import context as log_context
from dropstream.tenants import scope as tenant_scope
from dropstream.tenants.models import Role, User
from dropstream.tenants.scope import TenantScope, unscoped
from dropstream.tenants.services import authenticate_api_key, authenticate_password

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
#: Largest request body the API reads (CSV imports are the big ones).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

MAX_KEY_LENGTH = 200

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    user: User
    scope: TenantScope
    via: str  # "api_key" or "session"

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def actor(self) -> str:
        """How actions by this principal are named on timelines."""
        return self.user.email


def public(view: F) -> F:
    """Mark a view (or one method of a MethodView) as needing no principal."""
    view.public = True  # type: ignore[attr-defined]
    return view


def principal() -> Principal:
    return g.principal


def current_scope() -> TenantScope:
    return g.principal.scope


def require_provider() -> None:
    """Provider staff and admins only (warehouses, alert resolution)."""
    if not principal().role.is_provider:
        raise Forbidden("Only the fulfillment provider's staff may do this.")


def require_provider_admin() -> None:
    """Provider admins only (merchants and users)."""
    if principal().role is not Role.PROVIDER_ADMIN:
        raise Forbidden("Only a provider admin may do this.")


def before_api_request() -> None:
    if not request.path.startswith("/api/"):
        return
    g.pop("principal", None)  # an app context may outlive a request (tests, CLI): start clean
    request.max_content_length = current_app.config.get("API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
    if request.url_rule is None:
        return  # routing will answer 404/405 in the envelope
    if not _is_public():
        resolved = _from_bearer() or _from_session()
        if resolved is None:
            raise Unauthorized("Sign in, or send an API key as 'Authorization: Bearer <key>'.")
        g.principal = resolved
        tenant_scope.activate(db.session, resolved.scope)
        log_context.add(provider_id=resolved.scope.provider_id, merchant_id=resolved.scope.merchant_id,
                        user_id=resolved.user.id)
        if request.method not in SAFE_METHODS and not resolved.role.can_write and not _always_allowed():
            raise Forbidden("Your role can view but not change anything.")
    guard_json_body()  # after authentication: strangers' bodies are not even parsed


def teardown_api_request(error: BaseException | None = None) -> None:
    if g.pop("principal", None) is not None:
        tenant_scope.activate(db.session, None)


def _is_public() -> bool:
    if request.blueprint and request.blueprint.endswith("api-docs"):
        return True
    return _view_flag("public")


def _always_allowed() -> bool:
    """Signing out is allowed to everyone, viewers included."""
    return _view_flag("always_allowed")


def _view_flag(name: str) -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        view = getattr(view_class, request.method.lower(), None)
    return bool(getattr(view, name, False))


def _from_bearer() -> Principal | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    # Keys are short URL-safe text: anything else cannot match and must not reach the database.
    if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_LENGTH or not token.isascii() \
            or not token.isprintable():
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'.")
    with unscoped(db.session):
        user = authenticate_api_key(db.session, token)
        if user is None:
            db.session.rollback()
            raise Unauthorized("This API key is unknown, revoked, or its user is deactivated.")
        # authenticate_api_key stamps last_used_at; keep it even if the view later fails.
        db.session.commit()
    return Principal(user, TenantScope.for_user(user), "api_key")


def _from_session() -> Principal | None:
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    with unscoped(db.session):
        user = db.session.get(User, user_id)
    if user is None or not user.is_active or session.get("pw") != _password_mark(user):
        session.clear()
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent.encode(), str(expected).encode()):
            raise Forbidden(f"Send the session's CSRF token in the {CSRF_HEADER} header.",
                            code="csrf_failed")
    return Principal(user, TenantScope.for_user(user), "session")


def _password_mark(user: User) -> str:
    # Changing the password (or removing it) ends every browser session signed in with the old one.
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# /api/v1/session
# ------------------------------------------------------------------------------------------------

blp = Blueprint("session", __name__, url_prefix="/api/v1/session",
                description="Sign in and out of a browser session; who am I.")


class LoginSchema(Schema):
    email = Text(320, min_length=1, required=True)
    password = Text(1024, min_length=1, required=True, load_only=True)


class MeSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()
    role = fields.Enum(Role, by_value=True)
    provider_id = fields.Integer()
    merchant_id = fields.Integer(allow_none=True)


class SessionSchema(Schema):
    user = fields.Nested(MeSchema)
    via = fields.String(metadata={"description": "api_key or session"})
    csrf_token = fields.String(allow_none=True, metadata={
        "description": f"Send it as {CSRF_HEADER} on unsafe requests of this browser session."})


@blp.route("")
class SessionResource(MethodView):
    @public
    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(201, SessionSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Sign in with e-mail and password

        Sets the session cookie and returns the CSRF token the browser must send back as
        ``X-CSRF-Token`` on every unsafe request.
        """
        with unscoped(db.session):
            user = authenticate_password(db.session, data["email"], data["password"])
        if user is None:
            raise Unauthorized("Wrong e-mail or password.", code="invalid_credentials")
        session.clear()  # never carry anything over from before sign-in
        session["user_id"] = user.id
        session["pw"] = _password_mark(user)
        session["csrf"] = secrets.token_urlsafe(32)
        return {"user": user, "via": "session", "csrf_token": session["csrf"]}

    @blp.response(200, SessionSchema)
    def get(self) -> dict[str, Any]:
        """Who am I

        The signed-in user (by session or API key) and, for a browser session, its CSRF token.
        """
        who = principal()
        return {"user": who.user, "via": who.via,
                "csrf_token": session.get("csrf") if who.via == "session" else None}

    @blp.response(204)
    def delete(self) -> None:
        """Sign out

        Ends the browser session (a no-op for API keys, which are revoked instead).
        """
        session.clear()

    delete.always_allowed = True  # type: ignore[attr-defined]
