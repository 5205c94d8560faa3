"""The DropStream app's install flow (Authlib) and its signed callbacks (``signed_payload_jwt``).

**Which merchant an install belongs to.** BigCommerce's ``/auth`` callback carries no state of
ours, so DropStream never guesses: an install is linked to a store only when

* it was started from DropStream (:func:`install_state`): the signed-in user's browser carries
  a short-lived cookie, signed with the app's ``SECRET_KEY``, naming the DropStream store it was
  started for (whose merchant the user may act for); or
* it is a re-install of a store already linked by an app install (same store hash): only that
  store's token is replaced.

Any other install (a store hash DropStream has no app link for, started from BigCommerce's side)
is refused with a page that says to start it from DropStream, and nothing is stored: a store
hash is no secret, so "whoever typed it first" must never decide which merchant gets a store's
token.

**Signed callbacks** (load, uninstall, remove_user) are verified completely: HS256 only, signed
with the app's client secret, ``aud`` = the client id, ``iss`` = ``bc``, ``exp`` and ``nbf``,
``sub`` naming a store linked to the app, and a ``jti`` never seen before (kept in
``bigcommerce_used_jtis`` until the token expires).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.integrations.requests_client.oauth2_session import (
    OAuth2Auth,
    OAuth2ClientAuth,
    OAuthError,
)
from authlib.oauth2.client import OAuth2Client
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropstream.net.outbound import OutboundSession, app_policy
from dropstream.stores.credentials import read_credentials, write_credentials
from dropstream.stores.models import Store, StoreState
from dropstream.tenants.scope import unscoped
from dropstream_bigcommerce.models import UsedJwt

CONNECTOR_ID = "bigcommerce"
#: What DropStream needs, as BigCommerce names the scopes (a modify scope covers read-only).
REQUIRED_SCOPES = (
    "store_v2_orders",
    "store_v2_products_read_only",
    "store_inventory",
    "store_locations_read_only",
    "store_v2_information_read_only",
)
STATE_COOKIE = "bigcommerce_install"
STATE_MAX_AGE = 3600
MAX_TOKEN_LENGTH = 4096
LEEWAY = 60  # seconds of clock difference tolerated on exp/nbf
CONTEXT = re.compile(r"^stores/([a-z0-9]{1,40})$")


class InstallRefused(Exception):
    """The install or callback is refused; ``message`` is shown to the merchant."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class AppConfig:
    login_url: str
    client_id: str
    client_secret: str

    @property
    def install_url(self) -> str:
        return f"{self.login_url}/app/{self.client_id}/install"


def app_config() -> AppConfig:
    config = current_app.config
    client_id = config.get("BIGCOMMERCE_APP_CLIENT_ID") or ""
    client_secret = config.get("BIGCOMMERCE_APP_CLIENT_SECRET") or ""
    if not client_id or not client_secret:
        raise InstallRefused(
            503,
            "The DropStream app is not configured on this DropStream "
            "(BIGCOMMERCE_APP_CLIENT_ID and BIGCOMMERCE_APP_CLIENT_SECRET). Connect "
            "the store with a store-level API account instead.",
        )
    login = (config.get("BIGCOMMERCE_LOGIN_URL") or "https://login.bigcommerce.com").rstrip("/")
    return AppConfig(login, client_id, client_secret)


def callback_url(name: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/connectors/bigcommerce/{name}"


def missing_scopes(granted: str | list[str] | None) -> list[str]:
    scopes = set(granted.split() if isinstance(granted, str) else granted or [])
    return [
        scope
        for scope in REQUIRED_SCOPES
        if scope not in scopes and scope.removesuffix("_read_only") not in scopes
    ]


def store_hash_of(context: Any) -> str:
    match = CONTEXT.match(context) if isinstance(context, str) else None
    if match is None:
        raise InstallRefused(400, "The callback's context is not stores/<store hash>.")
    return match.group(1)


# ------------------------------------------------------------------------------------------------
# Starting an install from DropStream: the signed state
# ------------------------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="bigcommerce-install")


def install_state(store_id: int, user_id: int) -> str:
    return _serializer().dumps({"store_id": store_id, "user_id": user_id})


def read_install_state(value: str | None) -> int | None:
    """The store id a valid, unexpired state names, else None."""
    if not value or len(value) > 1000:
        return None
    try:
        state = _serializer().loads(value, max_age=STATE_MAX_AGE)
    except BadSignature:
        return None
    store_id = state.get("store_id") if isinstance(state, dict) else None
    return store_id if isinstance(store_id, int) else None


# ------------------------------------------------------------------------------------------------
# The /auth callback: exchange the code, check it, link it
# ------------------------------------------------------------------------------------------------


class _TokenClient(OAuth2Client):
    """Authlib's OAuth 2 client over DropStream's guarded session (requests-style auth)."""

    client_auth_class = OAuth2ClientAuth
    token_auth_class = OAuth2Auth
    oauth_error_class = OAuthError


def exchange_code(config: AppConfig, code: str, context: str, scope: str) -> dict[str, Any]:
    """POST the grant code to BigCommerce's token endpoint; its answer, checked.

    :raises InstallRefused: BigCommerce refused the code, or answered for another store or with
        fewer scopes than DropStream needs.
    """
    session = OutboundSession(app_policy())
    client = _TokenClient(
        session,
        client_id=config.client_id,
        client_secret=config.client_secret,
        token_endpoint_auth_method="client_secret_post",
        redirect_uri=callback_url("auth"),
    )
    try:
        token = client.fetch_token(
            f"{config.login_url}/oauth2/token",
            grant_type="authorization_code",
            code=code,
            context=context,
            scope=scope,
        )
    except OAuthError as error:
        raise InstallRefused(
            400,
            f"BigCommerce refused the install code ({error.error}): start the installation again.",
        ) from None
    except Exception as error:  # noqa: BLE001 - network failures, non-JSON answers: say which
        raise InstallRefused(
            502,
            "BigCommerce's token endpoint could not be reached or gave no "
            f"token ({type(error).__name__}); try the installation again.",
        ) from None
    finally:
        session.close()
    token = dict(token)
    if token.get("context") != context:
        raise InstallRefused(
            400,
            "BigCommerce's token is for another store than the callback named; nothing was saved.",
        )
    if not token.get("access_token"):
        raise InstallRefused(502, "BigCommerce answered without an access token.")
    missing = missing_scopes(token.get("scope"))
    if missing:
        raise InstallRefused(
            403,
            "The app was installed without scopes DropStream needs: "
            f"{', '.join(missing)}. Update the app's scopes and install it again.",
        )
    return token


def credentials_from_token(
    config: AppConfig, store_hash: str, token: dict[str, Any], previous: dict[str, Any]
) -> dict[str, Any]:
    user = token.get("user") if isinstance(token.get("user"), dict) else {}
    owner = token.get("owner") if isinstance(token.get("owner"), dict) else {}
    credentials = {
        "store_hash": store_hash,
        "access_token": token["access_token"],
        "client_id": config.client_id,
        "installed_via": "app",
        "scopes": str(token.get("scope") or ""),
        "account_uuid": str(token.get("account_uuid") or ""),
        "user_id": str(user.get("id") or ""),
        "user_email": str(user.get("email") or ""),
        "owner_id": str(owner.get("id") or ""),
        "owner_email": str(owner.get("email") or ""),
    }
    if previous.get("webhook_secret"):  # the hooks already carry it
        credentials["webhook_secret"] = previous["webhook_secret"]
    return credentials


#: Built once: every webhook starts with it, and building the statement (and its cache key)
#: on each call cost more CPU than running it.
_STORE_BY_HASH = select(Store).where(Store.connector_id == CONNECTOR_ID,
                                     Store.external_id == bindparam("store_hash"))


def find_store(session: Session, store_hash: str) -> Store | None:
    """The store connected as ``store_hash`` (unique per connector), whoever's it is."""
    with unscoped(session):
        return session.scalar(_STORE_BY_HASH, {"store_hash": store_hash})


def store_for_install(session: Session, store_hash: str, started_for: int | None) -> Store:
    """The one store this install may update (see the module docstring), else refuse."""
    linked = find_store(session, store_hash)
    if started_for is not None:
        with unscoped(session):
            store = session.get(Store, started_for)
        if store is None or store.connector_id != CONNECTOR_ID:
            raise InstallRefused(
                404,
                "The DropStream store this installation was started for no "
                "longer exists; start it again from DropStream.",
            )
        if linked is not None and linked.id != store.id:
            raise InstallRefused(
                409,
                f"BigCommerce store {store_hash} is connected to another DropStream store already.",
            )
        if store.external_id not in (None, store_hash):
            raise InstallRefused(
                409,
                "The DropStream store this installation was started for is "
                f"connected to BigCommerce store {store.external_id}, not "
                f"{store_hash}.",
            )
        return store
    if linked is not None and read_credentials(linked).get("installed_via") == "app":
        return linked
    raise InstallRefused(
        403,
        f"DropStream has no store linked to BigCommerce store {store_hash} "
        "through the app. Start the installation from DropStream (open your store "
        "there and choose Install app) so it is linked to the right merchant; "
        "nothing was saved.",
    )


def link(session: Session, store: Store, store_hash: str, credentials: dict[str, Any]) -> None:
    """Save the app's token on ``store`` (only that store) and make it ready for its checks."""
    store.external_id = store_hash
    write_credentials(store, credentials)
    if store.state in (StoreState.DISCONNECTED, StoreState.PAUSED):
        store.state = StoreState.SETTING_UP
        store.state_reason = "The DropStream app was installed again: run the set-up checks."


# ------------------------------------------------------------------------------------------------
# Signed callbacks
# ------------------------------------------------------------------------------------------------


def verify_signed_payload(
    session: Session, config: AppConfig, token: Any, now: datetime | None = None
) -> tuple[dict[str, Any], Store]:
    """Verify a ``signed_payload_jwt`` completely and spend its ``jti``.

    :returns: the claims and the linked store they name.
    :raises InstallRefused: anything wrong (the message says what; nothing is changed).
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InstallRefused(400, "signed_payload_jwt is missing or too long.")
    moment = now or datetime.now(UTC)
    try:
        decoded = jwt.decode(token, OctKey.import_key(config.client_secret), algorithms=["HS256"])
        jwt.JWTClaimsRegistry(
            now=int(moment.timestamp()),
            leeway=LEEWAY,
            iss={"essential": True, "value": "bc"},
            aud={"essential": True, "value": config.client_id},
            exp={"essential": True},
            nbf={"essential": True},
            jti={"essential": True},
            sub={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError) as error:
        raise InstallRefused(401, f"signed_payload_jwt is not valid: {_words(error)}.") from None
    claims = decoded.claims
    store_hash = store_hash_of(claims.get("sub"))
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 200:
        raise InstallRefused(401, "signed_payload_jwt has no usable jti.")
    store = find_store(session, store_hash)
    if store is None or read_credentials(store).get("installed_via") != "app":
        raise InstallRefused(
            403, f"BigCommerce store {store_hash} is not linked to DropStream through the app."
        )
    _spend(session, jti, store_hash, claims.get("exp"), moment)
    return claims, store


def _spend(session: Session, jti: str, store_hash: str, exp: Any, now: datetime) -> None:
    session.execute(delete(UsedJwt).where(UsedJwt.expires_at < now - timedelta(seconds=LEEWAY)))
    expires = (
        datetime.fromtimestamp(int(exp), UTC) if isinstance(exp, int) else now + timedelta(days=1)
    )
    try:
        with session.begin_nested():
            session.add(UsedJwt(jti=jti, store_hash=store_hash, expires_at=expires, used_at=now))
            session.flush()
    except IntegrityError:
        raise InstallRefused(401, "signed_payload_jwt was used already (replay).") from None


def _words(error: Exception) -> str:
    text = getattr(error, "description", None) or getattr(error, "error", None) or str(error)
    return str(text).replace("_", " ")[:200] or type(error).__name__
