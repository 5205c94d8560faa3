"""The plugin's web routes, under ``/connectors/bigcommerce``.

* ``POST /webhooks`` — order webhooks (:mod:`.webhooks`).
* ``GET /install?store_id=N`` — a signed-in DropStream user starts the app install for store N.
* ``GET /auth`` — BigCommerce's install callback: exchange the code, link the token.
* ``GET /load``, ``/uninstall``, ``/remove_user`` — BigCommerce's signed callbacks.

Pages are plain HTML (``/auth`` and ``/load`` render inside BigCommerce's control panel); every
refusal says why and what to do, and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, make_response, redirect, request, session
from flask.typing import ResponseReturnValue
from markupsafe import escape
from sqlalchemy.exc import SQLAlchemyError

from dropstream.api.auth import _password_mark
from dropstream.connectors.base import ConnectorContext, ConnectorError
from dropstream.errors import NotFound
from dropstream.extensions import db
from dropstream.stores.credentials import read_credentials, write_credentials
from dropstream.stores.models import Store, StoreState
from dropstream.tenants.models import User
from dropstream.tenants.scope import TenantScope, unscoped
from dropstream_bigcommerce import hooks, oauth, webhooks
from dropstream_bigcommerce.connector import BigCommerceConnector
from dropstream_bigcommerce.oauth import InstallRefused

log = logging.getLogger(__name__)


def blueprint() -> Blueprint:
    bp = Blueprint("bigcommerce", __name__, url_prefix="/connectors/bigcommerce")
    bp.add_url_rule("/webhooks", "webhooks", webhooks.receive, methods=["POST"])
    bp.add_url_rule("/install", "install", install)
    bp.add_url_rule("/auth", "auth", auth)
    bp.add_url_rule("/load", "load", load)
    bp.add_url_rule("/uninstall", "uninstall", uninstall)
    bp.add_url_rule("/remove_user", "remove_user", remove_user)
    return bp


def page(title: str, message: str, status: int = 200) -> ResponseReturnValue:
    body = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)} · DropStream"
        f"</title><body style='font-family:sans-serif;max-width:40em;margin:2em auto'>"
        f"<h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>"
    )
    response = make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_in_user() -> User | None:
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    with unscoped(db.session):
        user = db.session.get(User, user_id)
    if user is None or not user.is_active or session.get("pw") != _password_mark(user):
        return None
    return user


def install() -> ResponseReturnValue:
    """Send a signed-in user to BigCommerce's install page for one of their stores, with the
    signed state that lets ``/auth`` link the install to that store."""
    try:
        config = oauth.app_config()
    except InstallRefused as refusal:
        return page("The app is not available", refusal.message, refusal.status)
    user = _signed_in_user()
    if user is None:
        return page(
            "Sign in first",
            "Sign in to DropStream, open your BigCommerce store there and "
            "choose Install app again.",
            401,
        )
    if not user.role.can_write:
        return page("Not allowed", "Your role can view but not change stores.", 403)
    try:
        store_id = int(request.args.get("store_id", ""))
        store = TenantScope.for_user(user).get(db.session, Store, store_id)
    except (ValueError, NotFound):
        return page(
            "No such store", "Open the store in DropStream and choose Install app from there.", 404
        )
    if store.connector_id != oauth.CONNECTOR_ID:
        return page("Not a BigCommerce store", "Only BigCommerce stores install this app.", 400)
    response = redirect(config.install_url, 302)
    response.set_cookie(
        oauth.STATE_COOKIE,
        oauth.install_state(store.id, user.id),
        max_age=oauth.STATE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
        path="/connectors/bigcommerce",
    )
    return response


def auth() -> ResponseReturnValue:
    """BigCommerce's install callback (the merchant's browser): code, scope, context."""
    try:
        config = oauth.app_config()
        code, scope, context = (request.args.get(name, "") for name in ("code", "scope", "context"))
        if not code or len(code) > 512 or len(scope) > 4000:
            raise InstallRefused(400, "The install callback has no usable code.")
        store_hash = oauth.store_hash_of(context)
        missing = oauth.missing_scopes(scope)
        if missing:
            raise InstallRefused(
                403,
                "The app asks for too few scopes for DropStream: "
                f"{', '.join(missing)} missing. Nothing was saved.",
            )
        started_for = oauth.read_install_state(request.cookies.get(oauth.STATE_COOKIE))
        store = oauth.store_for_install(db.session, store_hash, started_for)  # before any call out
        token = oauth.exchange_code(config, code, context, scope)
        previous = read_credentials(store)
        credentials = oauth.credentials_from_token(config, store_hash, token, previous)
        oauth.link(db.session, store, store_hash, credentials)
        db.session.commit()
        _register_webhooks(store, credentials)
    except InstallRefused as refusal:
        db.session.rollback()
        return page("DropStream was not connected", refusal.message, refusal.status)
    except SQLAlchemyError:
        db.session.rollback()
        return page(
            "Try again",
            "DropStream could not save the installation just now; install the "
            "app again in a minute.",
            503,
        )
    response = make_response(
        page(
            "DropStream is connected",
            f"BigCommerce store {store_hash} is "
            f"linked to {store.name} in DropStream. Finish the set-up there "
            "(run the set-up checks).",
        )
    )
    response.delete_cookie(oauth.STATE_COOKIE, path="/connectors/bigcommerce")
    return response


def _register_webhooks(store: Store, credentials: dict[str, Any]) -> None:
    """Connected: register the webhooks at once (the set-up checks repair them if this fails)."""
    connector = BigCommerceConnector(
        ConnectorContext(
            BigCommerceConnector.id,
            store.id,
            dict(store.settings or {}),
            credentials,
            save_credentials=lambda values: write_credentials(store, values),
            public_base_url=current_app.config["PUBLIC_BASE_URL"],
        )
    )
    try:
        with connector.client() as client:
            hooks.ensure(client, connector)
        db.session.commit()  # the webhook secret made for them
    except ConnectorError as error:
        db.session.rollback()
        log.warning(
            "BigCommerce store %s: webhooks not registered on install: %s",
            store.external_id,
            error.message,
        )


def _signed_callback(handle: Any) -> ResponseReturnValue:
    try:
        config = oauth.app_config()
        claims, store = oauth.verify_signed_payload(
            db.session, config, request.args.get("signed_payload_jwt")
        )
        result = handle(store, claims)
        db.session.commit()
        return result
    except InstallRefused as refusal:
        db.session.rollback()
        return jsonify(error=refusal.message), refusal.status
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(error="DropStream cannot take the callback now; retry later."), 503


def load() -> ResponseReturnValue:
    def show(store: Store, claims: dict[str, Any]) -> ResponseReturnValue:
        base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
        return page(
            "DropStream",
            f"This store is connected to DropStream as {store.name} "
            f"({store.state.value.replace('_', ' ')}). Orders, holds and shipments are in "
            f"DropStream at {base}/console.",
        )

    return _signed_callback(show)


def uninstall() -> ResponseReturnValue:
    def disconnect(store: Store, claims: dict[str, Any]) -> ResponseReturnValue:
        credentials = read_credentials(store)
        credentials.pop("access_token", None)  # revoked by BigCommerce; never sent again
        write_credentials(store, credentials)
        store.state = StoreState.DISCONNECTED
        store.state_reason = (
            "The DropStream app was uninstalled in BigCommerce. Orders and "
            "history are kept; install the app again to reconnect."
        )
        return jsonify(disconnected=True)

    return _signed_callback(disconnect)


def remove_user() -> ResponseReturnValue:
    # DropStream keeps no per-BigCommerce-user data: verifying (and spending the jti) is all.
    return _signed_callback(lambda store, claims: jsonify(removed=True))
