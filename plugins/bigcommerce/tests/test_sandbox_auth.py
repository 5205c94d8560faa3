"""Credentials: X-Auth-Token, scopes (403), store information, the app install and callbacks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import OctKey

from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.receiver import WebhookReceiver
from dropstream_bigcommerce.sandbox.testing import SandboxStore, new_store

V3_401 = ("Unauthorized - the v3 Auth client ID or token in the request are not a valid "
          "combination for this store.")
APP_ID = "dropstream-app-client-id"
APP_SECRET = "dropstream-app-client-secret-0123456789abcdef"
APP_SCOPES = ["store_v2_orders", "store_v2_products_read_only", "store_inventory"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(rate_limits=False) as sandbox:
        yield sandbox


@pytest.fixture
def store(sandbox: BigCommerceSandbox) -> SandboxStore:
    return new_store(sandbox)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
def test_a_missing_or_wrong_token_is_401_in_each_version_shape(store: SandboxStore, http: requests.Session,
                                                              token: str | None) -> None:
    headers = {} if token is None else {"X-Auth-Token": token}

    v2 = http.get(store.url("/v2/orders"), headers=headers)
    v3 = http.get(store.url("/v3/catalog/products"), headers=headers)

    assert v2.status_code == 401 and v2.json()[0]["status"] == 401
    assert v3.status_code == 401
    assert v3.json()["title"] == V3_401 and v3.json()["status"] == 401


def test_another_stores_token_is_401_and_an_unknown_store_is_403(
        sandbox: BigCommerceSandbox, store: SandboxStore, http: requests.Session) -> None:
    other = new_store(sandbox)
    headers = {"X-Auth-Token": other.token}

    assert http.get(store.url("/v2/orders"), headers=headers).status_code == 401
    assert http.get(f"{sandbox.api_base_url}/stores/nosuchstore/v2/orders",
                    headers=headers).status_code == 403


def test_the_token_header_name_is_case_insensitive(store: SandboxStore, http: requests.Session) -> None:
    response = http.get(store.url("/v2/store"), headers={"x-auth-token": store.token})
    assert response.status_code == 200


def test_a_token_only_passes_the_endpoints_its_scopes_cover(sandbox: BigCommerceSandbox) -> None:
    reader = new_store(sandbox, scopes=["store_v2_orders_read_only"])
    sandbox.add_product(reader.hash, name="Tee", sku="TEE")
    order_id = sandbox.create_order(reader.hash, lines=[{"sku": "TEE"}])

    with reader.client() as api:
        read = api.get(f"/v2/orders/{order_id}")
        write = api.put(f"/v2/orders/{order_id}", json={"status_id": 9})
        catalog = api.get("/v3/catalog/products")
        hooks = api.get("/v3/hooks")

    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json() == [{"status": 403, "message": "You don't have a required scope to "
                                                       "access the endpoint"}]
    assert catalog.status_code == 403 and catalog.json()["status"] == 403
    assert hooks.status_code == 200  # webhooks need only the default scope
    assert sandbox.get_order(reader.hash, order_id)["status_id"] == 11


def test_the_default_scopes_are_dropstreams_minimum(store: SandboxStore) -> None:
    with store.client() as api:
        assert api.get("/v2/store").status_code == 200
        assert api.put("/v3/inventory/adjustments/absolute", json={"items": []}).status_code == 422
        assert api.get("/v3/inventory/locations").status_code == 200
        assert api.get("/v3/catalog/products").status_code == 200
    assert "store_v2_products" not in store.credentials["scopes"]  # products: read-only
    assert "store_v2_products_read_only" in store.credentials["scopes"]


def test_store_information_and_time(store: SandboxStore, sandbox: BigCommerceSandbox) -> None:
    pro = new_store(sandbox, plan="pro")
    with store.client() as api, pro.client() as pro_api:
        info = api.get("/v2/store").json()
        pro_info = pro_api.get("/v2/store").json()
        now = api.get("/v2/time").json()

    assert info["id"] == store.hash and isinstance(info["store_id"], int)
    assert str(info["store_id"]) != store.hash
    assert (info["plan_name"], pro_info["plan_name"]) == ("Standard", "Pro")
    assert abs(now["time"] - time.time()) < 5


def test_a_revoked_account_stops_working(sandbox: BigCommerceSandbox, store: SandboxStore) -> None:
    sandbox.revoke_api_account(store.hash, store.credentials["client_id"])
    with store.client() as api:
        assert api.get("/v2/store").status_code == 401


def _register(sandbox: BigCommerceSandbox, base: str = "https://app.example") -> None:
    sandbox.register_app(APP_ID, APP_SECRET, auth_callback_url=f"{base}/auth",
                         load_callback_url=f"{base}/load",
                         uninstall_callback_url=f"{base}/uninstall",
                         remove_user_callback_url=f"{base}/remove_user", scopes=APP_SCOPES)


def _exchange(sandbox: BigCommerceSandbox, http: requests.Session, query: dict[str, list[str]],
              as_form: bool = False, **overrides: str) -> requests.Response:
    fields = {"client_id": APP_ID, "client_secret": APP_SECRET, "code": query["code"][0],
              "context": query["context"][0], "scope": query["scope"][0],
              "grant_type": "authorization_code", "redirect_uri": "https://app.example/auth",
              **overrides}
    url = f"{sandbox.login_base_url}/oauth2/token"
    return http.post(url, data=fields) if as_form else http.post(url, json=fields)


@pytest.mark.parametrize("as_form", [False, True])
def test_the_install_code_exchanges_once_for_a_working_token(
        sandbox: BigCommerceSandbox, store: SandboxStore, http: requests.Session,
        as_form: bool) -> None:
    _register(sandbox)
    url = sandbox.install_app(store.hash, APP_ID)
    parts = urlsplit(url)
    query = parse_qs(parts.query)

    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://app.example/auth"
    assert "scope=store_v2_orders+store_v2_products_read_only+store_inventory" in url
    assert query["context"] == [f"stores/{store.hash}"] and query["account_uuid"][0]

    granted = _exchange(sandbox, http, query, as_form)
    replayed = _exchange(sandbox, http, query, as_form)

    assert granted.status_code == 200
    body = granted.json()
    assert body["context"] == f"stores/{store.hash}" and body["scope"] == " ".join(APP_SCOPES)
    assert isinstance(body["user"]["id"], int) and isinstance(body["owner"]["id"], int)
    assert body["user"]["email"] and body["account_uuid"] == query["account_uuid"][0]
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    with store.client(body["access_token"]) as api:
        assert api.get("/v2/orders").status_code == 204
        assert api.get("/v2/store").status_code == 403  # not among the app's scopes


@pytest.mark.parametrize("overrides, status, error", [
    ({"client_secret": "wrong-secret-wrong-secret"}, 401, "invalid_client"),
    ({"redirect_uri": "https://app.example/other"}, 400, "invalid_grant"),
    ({"context": "stores/someoneelse"}, 400, "invalid_grant"),
    ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    ({"code": "made-up-code"}, 400, "invalid_grant"),
    ({"scope": "store_v2_orders"}, 400, "invalid_scope"),
])
def test_the_token_endpoint_checks_every_field(
        sandbox: BigCommerceSandbox, store: SandboxStore, http: requests.Session,
        overrides: dict[str, str], status: int, error: str) -> None:
    _register(sandbox)
    query = parse_qs(urlsplit(sandbox.install_app(store.hash, APP_ID)).query)

    response = _exchange(sandbox, http, query, **overrides)

    assert (response.status_code, response.json()["error"]) == (status, error)
    assert _exchange(sandbox, http, query).status_code == 200  # the code was not used up


def test_an_expired_code_is_refused(store: SandboxStore, http: requests.Session) -> None:
    with BigCommerceSandbox(oauth_code_ttl=0.05) as sandbox:
        target = new_store(sandbox)
        _register(sandbox)
        query = parse_qs(urlsplit(sandbox.install_app(target.hash, APP_ID)).query)
        time.sleep(0.1)
        response = _exchange(sandbox, http, query)
    assert response.status_code == 400 and "expired" in response.json()["error_description"]


@pytest.mark.parametrize("kind", ["load", "uninstall", "remove_user"])
def test_signed_callbacks_verify_with_the_client_secret(sandbox: BigCommerceSandbox,
                                                        store: SandboxStore, kind: str) -> None:
    _register(sandbox)
    url = sandbox.signed_callback_url(store.hash, APP_ID, kind)
    parts = urlsplit(url)
    token = parse_qs(parts.query)["signed_payload_jwt"][0]

    decoded = jwt.decode(token, OctKey.import_key(APP_SECRET), algorithms=["HS256"])
    claims = decoded.claims

    assert parts.path == f"/{kind}" and decoded.header["alg"] == "HS256"
    assert claims["aud"] == APP_ID and claims["iss"] == "bc"
    assert claims["sub"] == f"stores/{store.hash}"
    assert claims["nbf"] == claims["iat"] and claims["exp"] - claims["nbf"] == 24 * 3600
    assert len(claims["jti"]) == 36 and claims["url"] == "/" and claims["channel_id"] is None
    assert set(claims["user"]) == {"id", "email", "locale"} and set(claims["owner"]) == {"id", "email"}
    with pytest.raises(BadSignatureError):
        jwt.decode(token, OctKey.import_key("another-secret-another-secret-0123"),
                   algorithms=["HS256"])


def test_uninstall_deletes_the_apps_hooks_and_calls_its_uninstall_callback(
        sandbox: BigCommerceSandbox, store: SandboxStore, http: requests.Session) -> None:
    with WebhookReceiver() as app_server:
        base = app_server.url.rsplit("/", 1)[0]
        _register(sandbox, base)
        query = parse_qs(urlsplit(sandbox.install_app(store.hash, APP_ID)).query)
        token = _exchange(sandbox, http, query, redirect_uri=f"{base}/auth").json()["access_token"]
        with store.client(token) as api:
            api.post("/v3/hooks", json={"scope": "store/app/uninstalled",
                                        "destination": app_server.url})
            api.post("/v3/hooks", json={"scope": "store/order/created",
                                        "destination": app_server.url})
        with store.client() as merchant:  # another client's hook survives the uninstall
            merchant.post("/v3/hooks", json={"scope": "store/order/created",
                                             "destination": app_server.url})

        result = sandbox.uninstall_app(store.hash, APP_ID)

        assert app_server.wait_for(2)
        assert sandbox.wait_for_webhooks()
        assert result["hooks_deleted"] == 2 and result["callback_status"] == 200
        paths = sorted(request["path"].split("?")[0] for request in app_server.received)
        assert paths == ["/uninstall", "/webhooks"]
        delivered = next(r for r in app_server.received if r["path"] == "/webhooks")
        assert delivered["json"]["scope"] == "store/app/uninstalled"
        assert delivered["json"]["data"] == {"type": "store"}
        assert [hook["client_id"] for hook in sandbox.hooks(store.hash)] == [
            store.credentials["client_id"]]
        with store.client(token) as api:
            assert api.get("/v2/orders").status_code == 401
