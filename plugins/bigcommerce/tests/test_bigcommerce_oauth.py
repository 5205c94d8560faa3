"""The app install (Authlib, against the sandbox's token endpoint over real HTTP) and the signed
callbacks: linked only to the store it was started for, or re-installing an app-linked store;
scopes and context checked; every forged, expired or replayed ``signed_payload_jwt`` refused
with nothing changed; uninstall disconnects and keeps the data."""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from bigcommerce_support import app, connector, sandbox, served
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import func, select
from tests.conftest import _schema, app_config, client, database_url
from tests.factories import PASSWORD, MerchantFactory, ProviderFactory, UserFactory

from dropstream.extensions import db
from dropstream.stores import services
from dropstream.stores.credentials import read_credentials
from dropstream.stores.models import Store, StoreState
from dropstream.tenants.models import Role
from dropstream.tenants.scope import TenantScope
from dropstream_bigcommerce.models import UsedJwt
from dropstream_bigcommerce.hooks import SCOPES as HOOK_SCOPES
from dropstream_bigcommerce.oauth import REQUIRED_SCOPES
from dropstream_bigcommerce.sandbox import DROPSTREAM_SCOPES, BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import SandboxStore

CLIENT_ID = "dropstream-app-client"
CLIENT_SECRET = "dropstream-app-secret-0123456789abcdef"


@pytest.fixture
def bc_app(app: Any, sandbox: BigCommerceSandbox, served: str) -> BigCommerceSandbox:
    """The DropStream app registered in the sandbox and configured in DropStream."""
    app.config.update(
        BIGCOMMERCE_APP_CLIENT_ID=CLIENT_ID,
        BIGCOMMERCE_APP_CLIENT_SECRET=CLIENT_SECRET,
        BIGCOMMERCE_LOGIN_URL=sandbox.login_base_url,
    )
    base = f"{served}/connectors/bigcommerce"
    sandbox.register_app(
        CLIENT_ID,
        CLIENT_SECRET,
        auth_callback_url=f"{base}/auth",
        load_callback_url=f"{base}/load",
        uninstall_callback_url=f"{base}/uninstall",
        remove_user_callback_url=f"{base}/remove_user",
        scopes=DROPSTREAM_SCOPES,
    )
    return sandbox


def _merchant_session(client: Any, sandbox: BigCommerceSandbox | None = None) -> tuple[Any, Store]:
    """A merchant admin signed in to a browser session, and an unconnected BigCommerce store."""
    provider = ProviderFactory()
    merchant = MerchantFactory(provider_id=provider.id)
    user = UserFactory(provider_id=provider.id, merchant_id=merchant.id, role=Role.MERCHANT_ADMIN)
    store = services.create_store(
        db.session,
        TenantScope(provider.id),
        {
            "name": "Shop",
            "connector_id": "bigcommerce",
            "merchant_id": merchant.id,
            "settings": {"api_base_url": sandbox.api_base_url} if sandbox else {},
        },
    )
    db.session.commit()
    signed_in = client.post("/api/v1/session", json={"email": user.email, "password": PASSWORD})
    assert signed_in.status_code == 201
    return user, store


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _install(client: Any, sandbox: BigCommerceSandbox, store_hash: str) -> Any:
    return client.get(_path(sandbox.install_app(store_hash, CLIENT_ID)))


def test_an_install_started_from_dropstream_links_that_store(
    client: Any, bc_app: BigCommerceSandbox
) -> None:
    _user, store = _merchant_session(client, bc_app)
    started = client.get(f"/connectors/bigcommerce/install?store_id={store.id}")
    assert started.status_code == 302
    assert started.headers["Location"] == f"{bc_app.login_base_url}/app/{CLIENT_ID}/install"
    store_hash = bc_app.create_store()

    answer = _install(client, bc_app, store_hash)  # the browser comes back with the code

    assert answer.status_code == 200 and "connected" in answer.get_data(as_text=True)
    db.session.expire_all()
    store = db.session.get(Store, store.id)
    credentials = read_credentials(store)
    assert store.external_id == store_hash and credentials["installed_via"] == "app"
    assert set(credentials["scopes"].split()) >= set(REQUIRED_SCOPES)
    assert credentials["owner_email"] == "owner@example.com" and credentials["account_uuid"]
    token_calls = [e for e in bc_app.call_log() if e["path"] == "/oauth2/token"]
    assert [e["status"] for e in token_calls] == [200]
    # Connected: its webhooks are registered at once, with the store's secret.
    hooks = bc_app.hooks(store_hash)
    assert {h["scope"] for h in hooks} == set(HOOK_SCOPES)
    assert all(
        h["client_id"] == CLIENT_ID
        and h["headers"] == {"X-DropStream-Webhook-Secret": credentials["webhook_secret"]}
        for h in hooks
    )
    # The token works: the store reads its orders with it.
    shop = SandboxStore(bc_app, store_hash, credentials)
    assert connector(shop, credentials).fetch_orders(None).orders == ()


def test_an_install_dropstream_cannot_place_is_refused_and_nothing_is_kept(
    client: Any, bc_app: BigCommerceSandbox
) -> None:
    _user, store = _merchant_session(client)  # signed in, but the install was not started here
    store_hash = bc_app.create_store()

    answer = _install(client, bc_app, store_hash)

    assert (
        answer.status_code == 403
        and "Start the installation from DropStream" in answer.get_data(as_text=True)
    )
    db.session.expire_all()
    assert db.session.get(Store, store.id).external_id is None
    assert not [
        e for e in bc_app.call_log() if e["path"] == "/oauth2/token"
    ]  # the code was not used


def test_too_few_scopes_are_refused_before_the_code_is_used(
    client: Any, bc_app: BigCommerceSandbox, served: str
) -> None:
    _user, store = _merchant_session(client)
    base = f"{served}/connectors/bigcommerce"
    bc_app.register_app(
        CLIENT_ID,
        CLIENT_SECRET,
        auth_callback_url=f"{base}/auth",
        load_callback_url=f"{base}/load",
        uninstall_callback_url=f"{base}/uninstall",
        scopes=["store_v2_orders", "store_v2_products_read_only"],
    )
    client.get(f"/connectors/bigcommerce/install?store_id={store.id}")

    answer = _install(client, bc_app, bc_app.create_store())

    text = answer.get_data(as_text=True)
    assert answer.status_code == 403 and "store_inventory" in text and "Nothing was saved" in text
    db.session.expire_all()
    assert not db.session.get(Store, store.id).has_credentials


class _WrongStoreTokens(BaseHTTPRequestHandler):
    """A token endpoint answering with a token for another store than the code's."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "access_token": "t" * 32,
                "scope": " ".join(DROPSTREAM_SCOPES),
                "context": "stores/someoneelse",
                "user": {"id": 1},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def wrong_store_tokens() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WrongStoreTokens)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_token_for_another_store_than_the_callbacks_is_refused(
    app: Any, client: Any, bc_app: BigCommerceSandbox, wrong_store_tokens: str
) -> None:
    _user, store = _merchant_session(client)
    client.get(f"/connectors/bigcommerce/install?store_id={store.id}")
    install_url = bc_app.install_app(bc_app.create_store(), CLIENT_ID)
    app.config["BIGCOMMERCE_LOGIN_URL"] = wrong_store_tokens

    answer = client.get(_path(install_url))

    assert answer.status_code == 400 and "another store" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert not db.session.get(Store, store.id).has_credentials


def _linked(client: Any, bc_app: BigCommerceSandbox) -> tuple[Store, str]:
    _user, store = _merchant_session(client, bc_app)
    client.get(f"/connectors/bigcommerce/install?store_id={store.id}")
    store_hash = bc_app.create_store()
    assert _install(client, bc_app, store_hash).status_code == 200
    client.delete("/api/v1/session")
    db.session.expire_all()
    return db.session.get(Store, store.id), store_hash


def test_a_reinstall_replaces_the_token_of_that_store_only(
    app: Any, bc_app: BigCommerceSandbox
) -> None:
    first, first_hash = _linked(app.test_client(), bc_app)
    second, _second_hash = _linked(app.test_client(), bc_app)
    before = {s.id: read_credentials(s)["access_token"] for s in (first, second)}

    again = _install(app.test_client(), bc_app, first_hash)  # from BigCommerce, no state needed

    assert again.status_code == 200
    db.session.expire_all()
    after = {
        s.id: read_credentials(db.session.get(Store, s.id))["access_token"] for s in (first, second)
    }
    assert after[first.id] != before[first.id] and after[second.id] == before[second.id]


def test_signed_callbacks_load_once_and_uninstall_disconnects_keeping_the_store(
    app: Any, client: Any, bc_app: BigCommerceSandbox
) -> None:
    store, store_hash = _linked(client, bc_app)
    load_url = bc_app.signed_callback_url(store_hash, CLIENT_ID, "load")
    loaded = client.get(_path(load_url))
    assert loaded.status_code == 200 and store.name in loaded.get_data(as_text=True)
    replayed = client.get(_path(load_url))
    assert replayed.status_code == 401 and "replay" in replayed.json["error"]
    assert (
        client.get(
            _path(bc_app.signed_callback_url(store_hash, CLIENT_ID, "remove_user"))
        ).status_code
        == 200
    )

    db.session.commit()
    outcome = bc_app.uninstall_app(store_hash, CLIENT_ID)  # BigCommerce's server calls us

    assert outcome["callback_status"] == 200
    db.session.expire_all()
    store = db.session.get(Store, store.id)
    assert store.state is StoreState.DISCONNECTED and "install the app again" in store.state_reason
    credentials = read_credentials(store)
    assert "access_token" not in credentials and credentials["store_hash"] == store_hash


def _token(store_hash: str, secret: str = CLIENT_SECRET, alg: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "aud": CLIENT_ID,
        "iss": "bc",
        "iat": now,
        "nbf": now,
        "exp": now + 86400,
        "jti": f"jti-{time.monotonic_ns()}",
        "sub": f"stores/{store_hash}",
        "user": {"id": 1, "email": "owner@example.com"},
        **claims,
    }
    return jwt.encode({"alg": alg}, payload, OctKey.import_key(secret), algorithms=[alg])


def _unsigned(store_hash: str) -> str:
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "aud": CLIENT_ID,
        "iss": "bc",
        "nbf": now,
        "exp": now + 60,
        "jti": "x",
        "sub": f"stores/{store_hash}",
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "forgery",
    [
        "alg none",
        "wrong audience",
        "wrong issuer",
        "expired",
        "not yet valid",
        "other secret",
        "tampered",
        "HS512",
        "store not linked",
        "no jti",
        "garbage",
    ],
)
def test_forged_signed_payloads_are_refused_and_change_nothing(
    app: Any, client: Any, bc_app: BigCommerceSandbox, forgery: str
) -> None:
    store, store_hash = _linked(client, bc_app)
    now = int(time.time())
    token = {
        "alg none": lambda: _unsigned(store_hash),
        "wrong audience": lambda: _token(store_hash, aud="another-app"),
        "wrong issuer": lambda: _token(store_hash, iss="evil"),
        "expired": lambda: _token(store_hash, exp=now - 3600, nbf=now - 90000, iat=now - 90000),
        "not yet valid": lambda: _token(store_hash, nbf=now + 3600),
        "other secret": lambda: _token(store_hash, secret="not-the-app-secret-0123456789"),
        "tampered": lambda: _token(store_hash)[:-4] + "AAAA",
        "HS512": lambda: _token(store_hash, alg="HS512"),
        "store not linked": lambda: _token(bc_app.create_store()),
        "no jti": lambda: _token(store_hash, jti=None),
        "garbage": lambda: "not.a.jwt",
    }[forgery]()
    db.session.commit()

    answer = client.get(
        "/connectors/bigcommerce/uninstall", query_string={"signed_payload_jwt": token}
    )

    assert answer.status_code in (400, 401, 403), answer.json
    db.session.expire_all()
    assert db.session.get(Store, store.id).state is not StoreState.DISCONNECTED
    assert "access_token" in read_credentials(db.session.get(Store, store.id))
    assert db.session.scalar(select(func.count()).select_from(UsedJwt)) == 0
