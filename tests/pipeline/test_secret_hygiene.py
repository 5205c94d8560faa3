"""Credentials never leak: not into job arguments, timelines, errors or logs — even when a remote
system echoes them back.

``test_canary_secrets_are_found_nowhere`` (S2/S3) runs the whole loop over the BigCommerce and
WMS sandboxes with canary values for every kind of secret DropStream holds — a store's token and
client secret, its webhook secret, the app's client secret, a warehouse's token, inbound key and
signing secret, a user's password and API key — including a WMS error that echoes its token, and
then looks for each canary in the database as stored (the SQLite file's bytes, or ``pg_dump``),
every log record, every Redis key and job payload, and every HTTP answer the test received.
"""

# The security suite's app (every connector plugin) and its served address, by name.
# ruff: noqa: F401, F811

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem
from dropstream.jobs.scheduler import tick
from dropstream.orders.models import Order, OrderEvent
from dropstream.orders.statuses import OrderStatus
from dropstream.state import get_state
from dropstream.stores import services
from dropstream.stores.credentials import read_credentials
from dropstream.stores.setup import run_setup_checks
from dropstream.tenants.models import Role
from dropstream.tenants.scope import TenantScope
from dropstream.tenants.services import issue_api_key
from dropstream.testing.jobs import make_due, run_until_idle
from dropstream_bigcommerce.connector import WEBHOOK_SECRET_HEADER
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.testing import new_store
from dropstream_wms_generic import signing
from dropstream_wms_generic.sandbox import WmsSandbox
from tests.console.conftest import Console
from tests.factories import MerchantFactory, ProviderFactory, ShippingRuleFactory, UserFactory
from tests.pipeline.conftest import Loop
from tests.security.conftest import BC_CLIENT_SECRET, app, served

CANARY = "canary-wms-token-5f1d2a9c"
ACCOUNT = "CANARY"
#: The remote systems' own logs (they are the other side, not DropStream).
REMOTE_LOGGERS = ("dropstream_bigcommerce.sandbox", "dropstream_wms_generic.sandbox")


def test_an_echoed_credential_is_redacted_everywhere(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    from dropstream.stores.credentials import write_credentials

    loop.wms.token = CANARY
    write_credentials(loop.tenant.warehouse, {"token": CANARY})
    db.session.commit()
    loop.wms.faults.fail("leaky", times=1, on="forward_order")
    caplog.set_level(logging.DEBUG)
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()

    events = db.session.scalars(select(OrderEvent)).all()
    retry = [e for e in events if e.kind == "retrying"][0]
    assert "[redacted]" in retry.message
    stored_text = " ".join(
        [e.message + str(e.detail) for e in events]
        + [str(o.last_error) + str(o.payload) for o in db.session.scalars(select(OutboxItem))]
    )
    assert CANARY not in stored_text
    assert CANARY not in caplog.text
    make_due()
    run_until_idle()
    assert len(loop.wms.orders) == 1


def test_jobs_carry_only_an_outbox_id(loop: Loop) -> None:
    queue = get_state().queue
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    from dropstream.jobs.scheduler import tick

    tick()
    if hasattr(queue, "drain"):
        ids = queue.drain()
        assert ids and all(isinstance(i, int) for i in ids)
        return
    from rq.job import Job

    jobs = [Job.fetch(job_id, connection=queue.connection)
            for name in ("webhooks", "default", "bulk") for job_id in queue.queue(name).job_ids]
    assert jobs and all(job.args == (int(job.id.split("-")[1]),) and not job.kwargs for job in jobs)
    stored = redis_bytes(queue.connection)
    assert b"run_outbox_item" in stored  # the job payloads were read (decompressed)
    assert b"store-token" not in stored and b"wms-token" not in stored


# ------------------------------------------------------------------------------------------------
# Where a secret could end up, read whole
# ------------------------------------------------------------------------------------------------


def database_bytes() -> bytes:
    """The database as stored: the SQLite file (and its journals), or a ``pg_dump`` of it."""
    db.session.commit()
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal"))
                        if p.exists())
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed to scan the PostgreSQL database"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run([pg_dump, "--no-owner", "--dbname", dsn], check=True, capture_output=True,
                          timeout=120).stdout


def redis_bytes(connection: Any) -> bytes:
    """Every key and value of the test's Redis database, compressed values (RQ's job payloads)
    also decompressed."""
    chunks: list[bytes] = []
    for key in connection.scan_iter("*"):
        kind = connection.type(key)
        values: list[bytes] = []
        if kind == b"string":
            values = [connection.get(key) or b""]
        elif kind == b"hash":
            values = [part for item in connection.hgetall(key).items() for part in item]
        elif kind == b"list":
            values = connection.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(connection.smembers(key))
        elif kind == b"zset":
            values = connection.zrange(key, 0, -1)
        elif kind == b"stream":
            values = [part for _id, fields in connection.xrange(key)
                      for item in fields.items() for part in item]
        chunks.append(key)
        for value in values:
            chunks.append(value)
            with contextlib.suppress(zlib.error):
                chunks.append(zlib.decompress(value))
    return b"\n".join(chunks)


def log_text(records: list[logging.LogRecord]) -> str:
    """Every record DropStream (or a library it drives) logged: message, traceback, extras."""
    formatter = logging.Formatter()
    return "\n".join(formatter.format(record) + repr(vars(record)) for record in records
                     if not record.name.startswith(REMOTE_LOGGERS))


# ------------------------------------------------------------------------------------------------
# The canary loop
# ------------------------------------------------------------------------------------------------


def test_canary_secrets_are_found_nowhere(app: Any, served: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    canaries = {name: f"canary-{name}-{uuid.uuid4().hex}"
                for name in ("wms-token", "inbound-key", "signing-secret", "password")}
    control = f"control-{uuid.uuid4().hex}"  # planted in every source: the scans can see
    answers: list[str] = []

    def keep(response: Any) -> Any:
        answers.append(response.text if isinstance(response, requests.Response)
                       else response.get_data(as_text=True))
        return response

    with BigCommerceSandbox(webhook_retry_scale=0.001) as bc, \
            WmsSandbox(auto=False, ship_delay=0, partial_ratio=0) as wms:
        wms.add_account(ACCOUNT)
        wms.set_credentials(token=canaries["wms-token"])
        wms.set_stock(ACCOUNT, {"CANARY-SKU": 30})
        shop = new_store(bc)
        bc.add_product(shop.hash, name="Canary tee", sku="CANARY-SKU", inventory_tracking="product",
                       inventory_level=10)
        provider = ProviderFactory()
        merchant = MerchantFactory(provider_id=provider.id, name=control)
        scope = TenantScope(provider.id)
        warehouse = services.create_warehouse(db.session, scope, {
            "name": "Canary WMS", "connector_id": "wms_generic",
            "settings": {"base_url": wms.url, "default_account": ACCOUNT},
            "credentials": {"token": canaries["wms-token"], "inbound_key": canaries["inbound-key"],
                            "signing_secret": canaries["signing-secret"]}})
        store = services.create_store(db.session, scope, {
            "name": "Canary shop", "connector_id": "bigcommerce", "merchant_id": merchant.id,
            "warehouse_id": warehouse.id, "settings": {"api_base_url": bc.api_base_url},
            "credentials": {"store_hash": shop.hash, "client_id": shop.credentials["client_id"],
                            "client_secret": shop.credentials["client_secret"],
                            "access_token": shop.credentials["access_token"]}})
        ShippingRuleFactory(provider_id=provider.id, merchant_id=merchant.id, store_id=store.id,
                            store_method="Free Shipping", match_key="free shipping", warehouse_code="GRND")
        user = UserFactory(provider_id=provider.id, role=Role.PROVIDER_ADMIN, password=canaries["password"])
        _key, canaries["api-key"] = issue_api_key(db.session, user, "canary key")
        db.session.commit()
        assert all(check.passed for check in run_setup_checks(db.session, store) if check.required)
        db.session.commit()
        canaries |= {"bc-access-token": shop.credentials["access_token"],
                     "bc-client-secret": shop.credentials["client_secret"],
                     "webhook-secret": read_credentials(store)["webhook_secret"],
                     "app-client-secret": BC_CLIENT_SECRET}
        store_id, warehouse_id, merchant_id, email = store.id, warehouse.id, merchant.id, user.email
        inbound = f"{served}/connectors/wms_generic/warehouses/{warehouse_id}"
        wms.configure_push(inbound, canaries["inbound-key"], canaries["signing-secret"])

        # The loop: the first send fails with the WMS echoing its token; the retry goes through;
        # the shipment and the stock come back as signed pushes; both reach BigCommerce. Redis is
        # read whenever work waits in it (a finished job's payload does not stay).
        queue = get_state().queue
        redis_seen: list[bytes] = []

        def read_redis() -> None:
            if hasattr(queue, "connection"):
                tick()
                redis_seen.append(redis_bytes(queue.connection))

        wms.inject("error", status=503, on="create_order", message=f"token {canaries['wms-token']} refused")
        order_id = bc.create_order(shop.hash, lines=[{"sku": "CANARY-SKU", "quantity": 1}])
        db.session.commit()
        assert bc.wait_for_webhooks(10)
        read_redis()
        run_until_idle()
        make_due()
        read_redis()
        run_until_idle()
        [wms_order] = wms.orders()
        wms.ship(wms_order["reference"])
        wms.push_stock_snapshot(ACCOUNT)
        db.session.remove()  # hold no transaction while DropStream takes the pushes
        assert wms.deliver_pushes()["delivered"] >= 2, wms.pushes()
        read_redis()
        run_until_idle()
        order = db.session.scalars(select(Order).where(Order.external_id == str(order_id))).one()
        assert order.status is OrderStatus.SHIPPED, [e.message for e in order.events]
        assert "[redacted]" in " ".join(e.message for e in order.events if e.kind == "retrying")
        assert bc.get_order(shop.hash, order_id)["status_id"] == 2

        # Every answer a user or a sender could get, errors first.
        api = app.test_client()
        good = {"Authorization": f"Bearer {canaries['api-key']}"}
        keep(api.post("/api/v1/session", json={"email": email, "password": canaries["password"] + "!"}))
        keep(api.get("/api/v1/orders", headers={"Authorization": f"Bearer {canaries['api-key']}x"}))
        keep(api.patch(f"/api/v1/warehouses/{warehouse_id}", headers=good,
                       json={"credentials": {"token": canaries["wms-token"] * 20}}))
        keep(api.patch(f"/api/v1/warehouses/{warehouse_id}", headers=good,
                       json={"credentials": {"token": canaries["wms-token"],
                                             "bogus": canaries["signing-secret"]}}))
        keep(api.post("/api/v1/stores", headers=good, json={
            "name": "x", "connector_id": "bigcommerce", "merchant_id": merchant_id,
            "settings": {"api_base_url": "https://10.0.0.1"},
            "credentials": {"access_token": canaries["bc-access-token"], "store_hash": "bad hash!"}}))
        for path in (f"/orders/{order.id}", f"/stores/{store_id}", f"/warehouses/{warehouse_id}", "/alerts",
                     "/shipments", "/merchants", f"/stores/{store_id}/inventory-items"):
            assert keep(api.get(f"/api/v1{path}", headers=good)).status_code == 200, path
        console = Console(app.test_client())
        console.sign_in(email, canaries["password"])
        for path in (f"/console/orders/{order.id}", "/console/queues", f"/console/stores/{store_id}",
                     f"/console/stores/{store_id}/setup/1", "/console/warehouses", "/console/alerts"):
            keep(console.get(path))
        keep(console.post(f"/console/stores/{store_id}/setup/1", {
            "name": "Canary shop", "credentials.access_token": canaries["bc-access-token"],
            "credentials.client_secret": canaries["bc-client-secret"], "settings.api_base_url": "ftp://x"}))
        db.session.commit()  # hold no transaction (SQLite's write lock) while the served app answers
        keep(requests.post(f"{served}/connectors/bigcommerce/webhooks", timeout=10, json={"producer": "x"},
                           headers={WEBHOOK_SECRET_HEADER: canaries["webhook-secret"] + "x"}))
        keep(requests.post(f"{inbound}/stock", timeout=10, data=b"{}", headers=signing.sign(
            canaries["inbound-key"], canaries["signing-secret"] + "x", b"{}")))

        logging.getLogger("dropstream.tests").warning("planted %s", control)
        sources = {"database": database_bytes(), "logs": log_text(caplog.records).encode(),
                   "http answers": "\n".join(answers).encode()}
        if hasattr(queue, "connection"):
            queue.connection.set(f"control:{control}", control)
            read_redis()
            sources["redis"] = b"\n".join(redis_seen)
            assert b"run_outbox_item" in sources["redis"]  # job payloads were there, and read
    assert all(control.encode() in blob for blob in sources.values()), [
        where for where, blob in sources.items() if control.encode() not in blob]
    found = [f"{name} in {where}" for name, secret in canaries.items() for where, blob in sources.items()
             if secret.encode() in blob]
    assert not found, found
