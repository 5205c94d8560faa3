"""S4–S6: forged, tampered and replayed requests to every door that takes a signature instead of
a user — BigCommerce webhooks, the app's install callback and its signed callbacks
(``signed_payload_jwt``), and the generic WMS's signed pushes.

Each case in :data:`CASES` is one request a genuine sender would never make (or a genuine one
made twice). It must be refused with a 4xx and a message that says what is wrong (a replayed
webhook or push is acknowledged as a duplicate instead: the sender may retry), and it must
change nothing: every row of the tenant, the table of spent JWT ids and the remote token endpoint
are compared before and after. ``test_the_genuine_requests_are_accepted`` sends the requests the
cases are forged from, so a refusal is never a broken harness.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import func, select

from dropstream.extensions import db
from dropstream.stores.models import Store
from dropstream.tenants.models import Role
from dropstream_bigcommerce import oauth
from dropstream_bigcommerce.connector import WEBHOOK_SECRET_HEADER
from dropstream_bigcommerce.models import UsedJwt
from dropstream_bigcommerce.sandbox import DROPSTREAM_SCOPES, BigCommerceSandbox
from dropstream_bigcommerce.webhooks import MAX_BODY
from dropstream_wms_generic import signing
from dropstream_wms_generic.inbound import MAX_BODY_BYTES
from tests.api.test_cross_tenant import snapshot
from tests.factories import StoreFactory
from tests.security.conftest import BC_CLIENT_ID, BC_CLIENT_SECRET
from tests.security.tenants import FullTenant, full_tenant

MIN_CASES = 40
WEBHOOKS = "/connectors/bigcommerce/webhooks"


@dataclass
class Env:
    """The victim (whose doors are knocked on), another tenant, and a BigCommerce sandbox with
    the DropStream app registered, started only for the cases that exchange a code."""

    app: Any
    client: Any
    victim: FullTenant
    other: FullTenant
    unlinked: Store
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _sandbox: BigCommerceSandbox | None = None
    #: What a replay case's set-up sent first (the case sends it again).
    delivered: dict[str, Any] = field(default_factory=dict)
    spent: str = ""
    captured: tuple[Any, ...] = ()
    replayed: tuple[Any, ...] = ()

    @property
    def bc(self) -> BigCommerceSandbox:
        if self._sandbox is None:
            sandbox = self._stack.enter_context(BigCommerceSandbox())
            base = "http://dropstream.test/connectors/bigcommerce"
            sandbox.register_app(
                BC_CLIENT_ID,
                BC_CLIENT_SECRET,
                auth_callback_url=f"{base}/auth",
                load_callback_url=f"{base}/load",
                uninstall_callback_url=f"{base}/uninstall",
                remove_user_callback_url=f"{base}/remove_user",
                scopes=DROPSTREAM_SCOPES,
            )
            self.app.config["BIGCOMMERCE_LOGIN_URL"] = sandbox.login_base_url
            self._sandbox = sandbox
        return self._sandbox

    def token_calls(self) -> int:
        if self._sandbox is None:
            return 0
        return len([c for c in self._sandbox.call_log() if c["path"] == "/oauth2/token"])


def new_env(app: Any, name: str, other: FullTenant | None = None) -> Env:
    victim = full_tenant(name, rich=False)
    return Env(
        app,
        app.test_client(),
        victim,
        other or full_tenant("other", rich=False),
        unlinked_store(victim),
    )


def unlinked_store(tenant: FullTenant) -> Store:
    """A BigCommerce store of ``tenant`` not connected yet (what an install is started for)."""
    store = StoreFactory(
        provider_id=tenant.data.tenant.provider.id,
        merchant_id=tenant.data.tenant.merchant.id,
        connector_id="bigcommerce",
        external_id=None,
        settings={},
    )
    db.session.commit()
    return store


@pytest.fixture(scope="module")
def env(module_app: Any) -> Iterator[Env]:
    """Shared by every case: a case changes nothing (that is what it asserts), and what a case's
    set-up adds (a first delivery, a spent token) is its own, under ids no other case uses."""
    environment = new_env(module_app, "victim")
    with environment._stack:
        yield environment


# ------------------------------------------------------------------------------------------------
# Senders: a genuine request of each kind, and the ways to spoil it
# ------------------------------------------------------------------------------------------------


def webhook_body(env: Env, **change: Any) -> dict[str, Any]:
    return {
        "scope": "store/order/created",
        "store_id": "1001",
        "hash": "a1b2c3d4e5f60718293a",
        "created_at": int(time.time()),
        "producer": f"stores/{env.victim.bc_hash}",
        "data": {"type": "order", "id": 4242},
        **change,
    }


def deliver(
    env: Env,
    body: Any = None,
    *,
    secret: str | None = "",
    raw: bytes | None = None,
    signature: dict[str, str] | None = None,
) -> Any:
    """POST a webhook; ``secret=""`` sends the victim store's own secret header, ``None`` none."""
    data = (
        raw
        if raw is not None
        else json.dumps(body if body is not None else webhook_body(env)).encode()
    )
    headers = {"Content-Type": "application/json", **(signature or {})}
    if secret is not None:
        headers[WEBHOOK_SECRET_HEADER] = secret or env.victim.webhook_secret
    return env.client.post(WEBHOOKS, data=data, headers=headers)


def standard_signature(
    body: bytes,
    *,
    secret: str = BC_CLIENT_SECRET,
    message_id: str = "msg_1",
    at: float | None = None,
) -> dict[str, str]:
    """Standard Webhooks headers as BigCommerce sends them, signed with the app's secret."""
    timestamp = str(int(at if at is not None else time.time()))
    digest = hmac.new(
        secret.encode(), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


def signed_webhook(
    env: Env, spoil: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]
) -> Any:
    body = json.dumps(webhook_body(env)).encode()
    raw, headers = spoil(body, standard_signature(body))
    return deliver(env, raw=raw, signature=headers)


def claims(env: Env, **change: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {
        "aud": BC_CLIENT_ID,
        "iss": "bc",
        "iat": now,
        "nbf": now,
        "exp": now + 86400,
        "jti": f"jti-{time.monotonic_ns()}",
        "sub": f"stores/{env.victim.bc_hash}",
        "user": {"id": 1, "email": "owner@example.com"},
        **change,
    }
    return {key: value for key, value in values.items() if value is not None}


def token(env: Env, *, secret: str = BC_CLIENT_SECRET, alg: str = "HS256", **change: Any) -> str:
    return jwt.encode(
        {"alg": alg}, claims(env, **change), OctKey.import_key(secret), algorithms=[alg]
    )


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_signed(env: Env, header: dict[str, Any], key: bytes = BC_CLIENT_SECRET.encode()) -> str:
    """A token with any header (``RS256``, ``none``…), HMAC-SHA256 signed with ``key`` (or not at
    all for an empty key) — what a library that trusts the header would accept."""
    signing_input = f"{_b64(header)}.{_b64(claims(env))}"
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


def with_payload(valid: str, payload: dict[str, Any]) -> str:
    """``valid`` with its claims replaced and its signature kept."""
    header, _claims, signature = valid.split(".")
    return f"{header}.{_b64(payload)}.{signature}"


def callback(env: Env, kind: str, signed: str | None) -> Any:
    query = {} if signed is None else {"signed_payload_jwt": signed}
    return env.client.get(f"/connectors/bigcommerce/{kind}", query_string=query)


def state_cookie(
    env: Env, store_id: int | None = None, *, secret_key: str | None = None, age: float = 0
) -> str:
    """The install state ``/install`` sets (signed with ``secret_key``, made ``age`` seconds ago)."""

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age)

    serializer = URLSafeTimedSerializer(
        secret_key or env.app.config["SECRET_KEY"], salt="bigcommerce-install", signer=Signer
    )
    user = env.victim.data.tenant.users[Role.MERCHANT_ADMIN]
    return serializer.dumps({"store_id": store_id or env.unlinked.id, "user_id": user.id})


def install_callback(env: Env, *, cookie: str | None = None, **query: str) -> Any:
    client = env.app.test_client()
    if cookie is not None:
        client.set_cookie(oauth.STATE_COOKIE, cookie, path="/connectors/bigcommerce")
    values = {
        "code": "a-code",
        "scope": " ".join(DROPSTREAM_SCOPES),
        "context": "stores/newstore1",
        "account_uuid": "0b6f0c3e",
        **query,
    }
    return client.get(
        "/connectors/bigcommerce/auth",
        query_string={k: v for k, v in values.items() if v is not None},
    )


def sandbox_install(
    env: Env,
    *,
    cookie: str | None = None,
    code: str | None = None,
    context: str | None = None,
    scope: str | None = None,
    store_hash: str | None = None,
) -> Any:
    """The callback the sandbox sends after an install, with any part replaced."""
    from urllib.parse import parse_qs, urlsplit

    sandbox = env.bc
    url = sandbox.install_app(store_hash or sandbox.create_store(), BC_CLIENT_ID)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    query.update(
        {k: v for k, v in (("code", code), ("context", context), ("scope", scope)) if v is not None}
    )
    return install_callback(
        env, cookie=cookie if cookie is not None else state_cookie(env), **query
    )


def replay_install(env: Env) -> Any:
    store_hash = env.bc.create_store()
    url = env.bc.install_app(store_hash, BC_CLIENT_ID)
    from urllib.parse import parse_qs, urlsplit

    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    env.replayed = (state_cookie(env, unlinked_store(env.victim).id), query)
    first = install_callback(env, cookie=env.replayed[0], **query)
    assert first.status_code == 200, first.get_data(as_text=True)


def push(
    env: Env,
    path: str = "stock",
    event: dict[str, Any] | bytes | None = None,
    *,
    key: str | None = None,
    secret: str | None = None,
    at: float | None = None,
    headers: dict[str, str] | None = None,
    warehouse_id: int | None = None,
    signed_body: bytes | None = None,
) -> Any:
    """POST to the victim's WMS inbound endpoint, signed with its key and secret unless told."""
    if event is None:
        event = stock_event(env)
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    if headers is None:
        headers = signing.sign(
            key or env.victim.inbound_key,
            secret or env.victim.signing_secret,
            signed_body if signed_body is not None else raw,
            now=at,
        )
    return env.client.post(
        f"/connectors/wms_generic/warehouses/{warehouse_id or env.victim.wms.id}/{path}",
        data=raw,
        headers=headers,
    )


def stock_event(env: Env, event_id: str = "evt-stock-1", quantity: int = 12) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "snapshot": {
            "account": env.victim.account,
            "complete": False,
            "items": [{"sku": "WH-1", "quantity": quantity, "as_of": "2026-11-27T10:00:00Z"}],
        },
    }


def replayed_push(env: Env) -> None:
    event = stock_event(env, event_id=f"evt-{time.monotonic_ns()}")
    raw = json.dumps(event).encode()
    env.captured = (
        event,
        raw,
        signing.sign(env.victim.inbound_key, env.victim.signing_secret, raw),
    )
    first = env.client.post(
        f"/connectors/wms_generic/warehouses/{env.victim.wms.id}/stock",
        data=raw,
        headers=env.captured[2],
    )
    assert first.status_code == 202, first.get_data(as_text=True)


def delivered_once(env: Env) -> None:
    env.delivered = webhook_body(env, hash=f"replayed-{time.monotonic_ns()}")
    first = deliver(env, env.delivered)
    assert first.status_code == 200 and first.get_json() == {"received": True, "duplicate": False}


def loaded_once(env: Env) -> None:
    env.spent = token(env)
    assert callback(env, "load", env.spent).status_code == 200


def _swap(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


# ------------------------------------------------------------------------------------------------
# The cases: (send, expected status, what the answer must say, set-up done before "before")
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    send: Callable[[Env], Any]
    status: int
    says: str
    setup: Callable[[Env], None] | None = None
    #: The code is offered to BigCommerce's token endpoint, which refuses it (one call); every
    #: other case must be refused before DropStream calls out at all.
    exchanges: bool = False


def _tampered_signature(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body, {**headers, "webhook-signature": headers["webhook-signature"][:-6] + "AAAAA="}


CASES: dict[str, Case] = {
    # BigCommerce webhooks -----------------------------------------------------------------------
    "webhook without the secret header": Case(
        lambda e: deliver(e, secret=None), 401, "not signed with a store's secret"
    ),
    "webhook with a wrong secret": Case(
        lambda e: deliver(e, secret="x" * 43), 401, "not signed with a store's secret"
    ),
    "webhook with another store's secret": Case(
        lambda e: deliver(e, secret=e.other.webhook_secret), 401, "not signed with a store's secret"
    ),
    "webhook with the secret of the store it names, sent for another": Case(
        lambda e: deliver(e, webhook_body(e, producer=f"stores/{e.other.bc_hash}")),
        401,
        "not signed with a store's secret",
    ),
    "webhook from an unknown store hash": Case(
        lambda e: deliver(e, webhook_body(e, producer="stores/nosuchstore")),
        401,
        "not signed with a store's secret",
    ),
    "webhook with a path in the producer": Case(
        lambda e: deliver(e, webhook_body(e, producer="stores/../../admin")),
        400,
        "producer is not stores/",
    ),
    "webhook without a producer": Case(
        lambda e: deliver(e, {k: v for k, v in webhook_body(e).items() if k != "producer"}),
        400,
        "producer is not stores/",
    ),
    "webhook that is not JSON": Case(
        lambda e: deliver(e, raw=b"{scope: store/order/created"), 400, "not JSON"
    ),
    "webhook that is a JSON list": Case(
        lambda e: deliver(e, [webhook_body(e)]), 400, "not a JSON object"
    ),
    "webhook larger than the limit": Case(
        lambda e: deliver(e, webhook_body(e, padding="x" * MAX_BODY)), 413, "larger than"
    ),
    "webhook without an event hash": Case(
        lambda e: deliver(e, {k: v for k, v in webhook_body(e).items() if k != "hash"}),
        400,
        "hash is missing",
    ),
    "webhook of a scope outside the store": Case(
        lambda e: deliver(e, webhook_body(e, scope="app/uninstalled")), 400, "not a store event"
    ),
    "webhook with an injected order id": Case(
        lambda e: deliver(e, webhook_body(e, data={"type": "order", "id": "42 OR 1=1"})),
        400,
        "not an order id",
    ),
    "webhook with a signature that does not verify": Case(
        lambda e: signed_webhook(e, _tampered_signature), 401, "does not verify"
    ),
    "webhook body changed after signing": Case(
        lambda e: signed_webhook(e, lambda b, h: (_swap(b.decode(), "4242", "4243").encode(), h)),
        401,
        "does not verify",
    ),
    "webhook signed with another secret": Case(
        lambda e: signed_webhook(
            e, lambda b, h: (b, standard_signature(b, secret="not-the-app-secret-0123"))
        ),
        401,
        "does not verify",
    ),
    "webhook signed ten minutes ago": Case(
        lambda e: signed_webhook(e, lambda b, h: (b, standard_signature(b, at=time.time() - 600))),
        401,
        "too far from now",
    ),
    "webhook signed in the future": Case(
        lambda e: signed_webhook(e, lambda b, h: (b, standard_signature(b, at=time.time() + 600))),
        401,
        "too far from now",
    ),
    "webhook with a timestamp that is not a time": Case(
        lambda e: signed_webhook(e, lambda b, h: (b, {**h, "webhook-timestamp": "yesterday"})),
        401,
        "not a time",
    ),
    "webhook delivered again (replay)": Case(
        lambda e: deliver(e, e.delivered), 200, '"duplicate":true', setup=delivered_once
    ),
    # The install callback -----------------------------------------------------------------------
    "install callback without a code": Case(
        lambda e: install_callback(e, cookie=state_cookie(e), code=None), 400, "no usable code"
    ),
    "install callback with an oversized code": Case(
        lambda e: install_callback(e, cookie=state_cookie(e), code="c" * 600), 400, "no usable code"
    ),
    "install callback with a forged context": Case(
        lambda e: install_callback(e, cookie=state_cookie(e), context="stores/../victim"),
        400,
        "context is not stores/",
    ),
    "install callback granting too few scopes": Case(
        lambda e: install_callback(e, cookie=state_cookie(e), scope="store_v2_orders"),
        403,
        "too few scopes",
    ),
    "install callback without DropStream's state": Case(
        lambda e: install_callback(e), 403, "Start the installation from DropStream"
    ),
    "install callback with a state signed by another key": Case(
        lambda e: install_callback(
            e, cookie=state_cookie(e, secret_key="another-secret-key-0123456789")
        ),
        403,
        "Start the installation from DropStream",
    ),
    "install callback with an expired state": Case(
        lambda e: install_callback(e, cookie=state_cookie(e, age=oauth.STATE_MAX_AGE + 60)),
        403,
        "Start the installation from DropStream",
    ),
    "install callback with a tampered state": Case(
        lambda e: install_callback(e, cookie=_swap(state_cookie(e), ".", "A.")),
        403,
        "Start the installation from DropStream",
    ),
    "install callback linking another tenant's store hash": Case(
        lambda e: install_callback(e, cookie=state_cookie(e), context=f"stores/{e.other.bc_hash}"),
        409,
        "connected to another DropStream store",
    ),
    "install callback with a tampered code": Case(
        lambda e: sandbox_install(e, code="not-the-code"),
        400,
        "BigCommerce refused the install code",
        exchanges=True,
    ),
    "install callback with a code issued for another store": Case(
        lambda e: sandbox_install(e, context=f"stores/{e.bc.create_store()}"),
        400,
        "BigCommerce refused the install code",
        exchanges=True,
    ),
    "install callback with tampered scopes": Case(
        lambda e: sandbox_install(e, scope=" ".join([*DROPSTREAM_SCOPES, "store_v2_customers"])),
        400,
        "BigCommerce refused the install code",
        exchanges=True,
    ),
    "install callback replayed": Case(
        lambda e: install_callback(e, cookie=e.replayed[0], **e.replayed[1]),
        400,
        "BigCommerce refused the install code",
        setup=replay_install,
        exchanges=True,
    ),
    # Signed callbacks (signed_payload_jwt) -------------------------------------------------------
    "load without signed_payload_jwt": Case(
        lambda e: callback(e, "load", None), 400, "missing or too long"
    ),
    "load with an oversized token": Case(
        lambda e: callback(e, "load", "a" * 5000), 400, "missing or too long"
    ),
    "load with a token that is not a JWT": Case(
        lambda e: callback(e, "load", "not.a.jwt"), 401, "not valid"
    ),
    "uninstall with alg none": Case(
        lambda e: callback(e, "uninstall", hand_signed(e, {"alg": "none", "typ": "JWT"}, key=b"")),
        401,
        "not valid",
    ),
    "uninstall with RS256 in the header, HMAC-signed (algorithm confusion)": Case(
        lambda e: callback(e, "uninstall", hand_signed(e, {"alg": "RS256", "typ": "JWT"})),
        401,
        "not valid",
    ),
    "uninstall signed with HS512": Case(
        lambda e: callback(e, "uninstall", token(e, alg="HS512")), 401, "not valid"
    ),
    "uninstall signed with another secret": Case(
        lambda e: callback(e, "uninstall", token(e, secret="not-the-app-secret-0123456789")),
        401,
        "not valid",
    ),
    "uninstall for another app (wrong client id)": Case(
        lambda e: callback(e, "uninstall", token(e, aud="another-app-client")), 401, "not valid"
    ),
    "uninstall from another issuer": Case(
        lambda e: callback(e, "uninstall", token(e, iss="evil")), 401, "not valid"
    ),
    "uninstall with an expired token": Case(
        lambda e: callback(
            e,
            "uninstall",
            token(
                e,
                exp=int(time.time()) - 3600,
                iat=int(time.time()) - 90000,
                nbf=int(time.time()) - 90000,
            ),
        ),
        401,
        "not valid",
    ),
    "uninstall with a token not yet valid": Case(
        lambda e: callback(e, "uninstall", token(e, nbf=int(time.time()) + 3600)), 401, "not valid"
    ),
    "uninstall with the store swapped in the payload": Case(
        lambda e: callback(
            e, "uninstall", with_payload(token(e), claims(e, sub=f"stores/{e.other.bc_hash}"))
        ),
        401,
        "not valid",
    ),
    "uninstall with a tampered signature": Case(
        lambda e: callback(e, "uninstall", token(e)[:-4] + "AAAA"), 401, "not valid"
    ),
    "uninstall without jti": Case(
        lambda e: callback(e, "uninstall", token(e, jti=None)), 401, "jti"
    ),
    "uninstall without exp": Case(
        lambda e: callback(e, "uninstall", token(e, exp=None)), 401, "exp"
    ),
    "uninstall without aud": Case(
        lambda e: callback(e, "uninstall", token(e, aud=None)), 401, "aud"
    ),
    "remove_user without sub": Case(
        lambda e: callback(e, "remove_user", token(e, sub=None)), 401, "sub"
    ),
    "remove_user for a store not linked through the app": Case(
        lambda e: callback(e, "remove_user", token(e, sub="stores/nosuchstore")), 403, "not linked"
    ),
    "remove_user with a malformed sub": Case(
        lambda e: callback(e, "remove_user", token(e, sub="stores/../victim")),
        400,
        "context is not stores/",
    ),
    "load replayed (a spent jti)": Case(
        lambda e: callback(e, "load", e.spent), 401, "replay", setup=loaded_once
    ),
    # Generic WMS pushes -------------------------------------------------------------------------
    "push without signature headers": Case(
        lambda e: push(e, headers={signing.KEY_HEADER: e.victim.inbound_key}),
        401,
        "sign the request",
    ),
    "push without any header": Case(lambda e: push(e, headers={}), 401, "is not warehouse"),
    "push with a wrong key": Case(
        lambda e: push(e, key="not-the-inbound-key-0000"), 401, "is not warehouse"
    ),
    "push with another warehouse's key and secret": Case(
        lambda e: push(e, key=e.other.inbound_key, secret=e.other.signing_secret),
        401,
        "is not warehouse",
    ),
    "push to another warehouse with this one's key": Case(
        lambda e: push(e, warehouse_id=e.other.wms.id), 401, "is not warehouse"
    ),
    "push signed with a wrong secret": Case(
        lambda e: push(e, secret="s" * 40), 401, "does not match the body"
    ),
    "push body changed after signing": Case(
        lambda e: push(
            e, event=stock_event(e, quantity=999), signed_body=json.dumps(stock_event(e)).encode()
        ),
        401,
        "does not match the body",
    ),
    "push signed six minutes ago": Case(
        lambda e: push(e, at=time.time() - 360), 401, "from DropStream's clock"
    ),
    "push signed in the future": Case(
        lambda e: push(e, at=time.time() + 360), 401, "from DropStream's clock"
    ),
    "push with a timestamp that is not a time": Case(
        lambda e: push(
            e,
            headers={
                **signing.sign(e.victim.inbound_key, e.victim.signing_secret, b""),
                signing.TIMESTAMP_HEADER: "now",
            },
        ),
        401,
        "Unix time",
    ),
    "push signed without the timestamp": Case(
        lambda e: push(
            e,
            headers={
                **signing.sign(e.victim.inbound_key, e.victim.signing_secret, b""),
                signing.SIGNATURE_HEADER: "v1="
                + hmac.new(
                    e.victim.signing_secret.encode(),
                    json.dumps(stock_event(e)).encode(),
                    hashlib.sha256,
                ).hexdigest(),
            },
        ),
        401,
        "does not match the body",
    ),
    "push larger than the limit": Case(
        lambda e: push(e, event=b" " * (MAX_BODY_BYTES + 1)), 413, "exceeds"
    ),
    "push of signed garbage": Case(
        lambda e: push(e, event=b'{"event_id": "e1", '), 400, "not JSON"
    ),
    "push replayed as captured": Case(
        lambda e: e.client.post(
            f"/connectors/wms_generic/warehouses/{e.victim.wms.id}/stock",
            data=e.captured[1],
            headers=e.captured[2],
        ),
        409,
        "received already",
        setup=replayed_push,
    ),
    "push of a seen event id, signed again": Case(
        lambda e: push(e, event=e.captured[0]), 409, "received already", setup=replayed_push
    ),
}


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= MIN_CASES, len(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_forged_tampered_or_replayed_requests_are_refused_and_change_nothing(
    env: Env, name: str
) -> None:
    case = CASES[name]
    if case.setup:
        case.setup(env)
    before = _state(env)

    response = case.send(env)

    text = response.get_data(as_text=True)
    assert response.status_code == case.status, text[:500]
    assert case.says in text, text[:500]
    if response.status_code >= 400:
        assert _message(response) and len(_message(response)) >= 15, text[:500]
    for secret in (
        env.victim.webhook_secret,
        env.victim.signing_secret,
        env.victim.inbound_key,
        BC_CLIENT_SECRET,
    ):
        assert secret not in text
    after = _state(env)
    if case.exchanges:
        assert after.pop("token calls") == before.pop("token calls") + 1
    assert after == before


def test_the_genuine_requests_are_accepted(env: Env) -> None:
    """The requests the cases spoil, sent as a genuine sender would: each one is accepted and
    changes something, so a refusal above is the door's doing, not the harness's. (A tenant of
    its own: the cases' victim stays as it was.)"""
    genuine = new_env(env.app, "genuine", other=env.other)
    genuine._sandbox = env.bc  # one sandbox: its store hashes are unique within it
    with genuine._stack:
        before = _state(genuine)
        body = json.dumps(webhook_body(genuine)).encode()
        assert (
            deliver(genuine, raw=body, signature=standard_signature(body)).get_json()["received"]
            is True
        )
        assert push(genuine).status_code == 202
        assert callback(genuine, "load", token(genuine)).status_code == 200
        assert callback(genuine, "remove_user", token(genuine)).status_code == 200
        answer = sandbox_install(genuine)
        assert answer.status_code == 200 and "connected" in answer.get_data(as_text=True)
        assert callback(genuine, "uninstall", token(genuine)).get_json() == {"disconnected": True}
        after = _state(genuine)
    changed = {name for name in before if before[name] != after[name]}
    assert {
        "webhook_inbox",
        "outbox",
        "stock_levels",
        "stores",
        "bigcommerce_used_jtis",
        "token calls",
    } <= changed


def _state(env: Env) -> dict[str, Any]:
    state: dict[str, Any] = snapshot(provider_id=env.victim.data.tenant.provider.id)
    state["bigcommerce_used_jtis"] = db.session.scalar(select(func.count()).select_from(UsedJwt))
    state["token calls"] = env.token_calls()
    db.session.rollback()
    return state


def _message(response: Any) -> str:
    if response.is_json:
        error = response.get_json()["error"]
        return error["message"] if isinstance(error, dict) else error
    return response.get_data(as_text=True)
