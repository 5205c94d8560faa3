"""Who is signed in to the console, what they may do, and the CSRF check on every form.

The console shares the API's browser session (``session["user_id"]``, the password mark and the
CSRF token), so signing in here also signs the browser in to ``/api/v1`` and back. The user's
:class:`TenantScope` is activated for the whole request, with the same fail-closed backstop the
API relies on.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from markupsafe import Markup, escape

from dropstream.api.auth import _password_mark as password_mark
from dropstream.connectors.base import ConnectorError
from dropstream.errors import AppError, Forbidden
from dropstream.extensions import db
from dropstream.plugins import UnknownConnector
from dropstream.security.secrets import SecretError
from dropstream.tenants import scope as tenant_scope
from dropstream.tenants.models import Role, User
from dropstream.tenants.scope import TenantScope, unscoped

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
#: Endpoints anyone may open: signing in, accepting an invitation, the stylesheet.
PUBLIC = frozenset({"console.sign_in", "console.accept_invitation", "console.static"})
#: Unsafe requests a read-only role may still make (only for itself).
ALWAYS_ALLOWED = frozenset({"console.sign_out", "console.account"})

F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> User:
    return g.console_user


def scope() -> TenantScope:
    return g.console_scope


def csrf_token() -> str:
    """The session's CSRF token (made on first use, also before sign-in: the sign-in form is
    protected too, so no one can sign a browser in to their own account behind its back)."""
    if not session.get("csrf"):
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_field() -> Markup:
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">')


def require_provider() -> None:
    if not current_user().role.is_provider:
        raise Forbidden("Only the fulfillment provider's staff may do this.")


def require_provider_admin() -> None:
    if current_user().role is not Role.PROVIDER_ADMIN:
        raise Forbidden("Only a provider admin may do this.")


def provider_only(view: F) -> F:
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        require_provider()
        return view(*args, **kwargs)
    return guarded  # type: ignore[return-value]


def provider_admin_only(view: F) -> F:
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        require_provider_admin()
        return view(*args, **kwargs)
    return guarded  # type: ignore[return-value]


def session_user() -> User | None:
    """The active user of this browser session, or None (a changed password ends it)."""
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    with unscoped(db.session):
        user = db.session.get(User, user_id)
    if user is None or not user.is_active or session.get("pw") != password_mark(user):
        return None
    return user


def start_session(user: User) -> None:
    session.clear()  # nothing from before sign-in survives it (session fixation)
    session["user_id"] = user.id
    session["pw"] = password_mark(user)
    session["csrf"] = secrets.token_urlsafe(32)


@bp.before_request
def resolve_user() -> Any:
    g.pop("console_user", None)
    if request.method not in SAFE_METHODS:
        sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token", "")
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(str(sent).encode(), str(expected).encode()):
            return render_template("console/error.html", status=400, title="This form has expired",
                                   message="Reload the page and submit the form again."), 400
    if request.endpoint in PUBLIC:
        return None
    user = session_user()
    if user is None:
        session.pop("user_id", None)
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("console.sign_in", next=target))
    g.console_user = user
    g.console_scope = TenantScope.for_user(user)
    tenant_scope.activate(db.session, g.console_scope)
    if request.method not in SAFE_METHODS and not user.role.can_write \
            and request.endpoint not in ALWAYS_ALLOWED:
        raise Forbidden("Your role can view but not change anything.")
    return None


@bp.teardown_request
def release_scope(error: BaseException | None = None) -> None:
    if g.pop("console_user", None) is not None:
        tenant_scope.activate(db.session, None)


@bp.app_template_global()
def console_csrf_field() -> Markup:
    return csrf_field()


@bp.context_processor
def inject() -> dict[str, Any]:
    return {"csrf_field": csrf_field, "csrf_token": csrf_token, "me": g.get("console_user"),
            "Role": Role}


# ------------------------------------------------------------------------------------------------
# Errors: pages in the console's own look (the app-wide handlers only speak JSON under /api).
# ------------------------------------------------------------------------------------------------


def _error_page(status: int, title: str, message: str) -> Any:
    db.session.rollback()
    return render_template("console/error.html", status=status, title=title, message=message), status


@bp.errorhandler(AppError)
def app_error(error: AppError) -> Any:
    titles = {404: "Not found", 403: "Not allowed", 409: "Not possible right now"}
    return _error_page(error.status, titles.get(error.status, "Something is wrong"), error.message)


@bp.errorhandler(ConnectorError)
def connector_error(error: ConnectorError) -> Any:
    # Messages are redacted by the connection wrapper and meant for operators.
    return _error_page(502, "The remote system failed", error.message)


@bp.errorhandler(UnknownConnector)
def unknown_connector(error: UnknownConnector) -> Any:
    return _error_page(409, "Connector not installed",
                       f"The connector {error.args[0]!r} is not installed; install or enable its plugin.")


@bp.errorhandler(SecretError)
def secret_error(error: SecretError) -> Any:
    return _error_page(409, "Credentials unreadable", "The stored credentials cannot be decrypted "
                       "with the configured keys; enter them again.")


@bp.errorhandler(404)
def not_found(error: Any) -> Any:
    return _error_page(404, "Not found", "There is no such page, or it is not yours to see.")


def not_found_unless(condition: bool) -> None:
    if not condition:
        abort(404)
