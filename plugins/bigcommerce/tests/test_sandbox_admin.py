"""The admin interface over HTTP (for other processes) and ``dropstream sandbox bigcommerce``."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from dropstream.app import create_app
from dropstream_bigcommerce.sandbox import BigCommerceSandbox
from dropstream_bigcommerce.sandbox.admin import ADMIN_ROUTES


@pytest.fixture(scope="module")
def sandbox() -> Iterator[BigCommerceSandbox]:
    with BigCommerceSandbox(webhook_retry_scale=0.000002) as sandbox:
        yield sandbox


@pytest.fixture
def admin(sandbox: BigCommerceSandbox) -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def test_a_whole_scenario_driven_over_http(sandbox: BigCommerceSandbox,
                                           admin: requests.Session) -> None:
    base = f"{sandbox.base_url}/_sandbox"
    store = admin.post(f"{base}/stores", json={"plan": "pro", "name": "Other process"})
    store_hash = store.json()["store_hash"]
    credentials = admin.post(f"{base}/stores/{store_hash}/api_accounts", json={}).json()
    product = admin.post(f"{base}/stores/{store_hash}/products",
                         json={"name": "Tee", "sku": "TEE/1", "inventory_level": 4})
    order = admin.post(f"{base}/stores/{store_hash}/orders",
                       json={"lines": [{"sku": "TEE/1", "quantity": 2}]})
    order_id = order.json()["id"]
    status = admin.put(f"{base}/stores/{store_hash}/orders/{order_id}/status", json={"status_id": 9})
    fault = admin.post(f"{base}/faults", json={"kind": "503", "store_hash": store_hash})
    with requests.Session() as api:
        api.headers["X-Auth-Token"] = credentials["access_token"]
        faulted = api.get(f"{sandbox.api_base_url}/stores/{store_hash}/v2/orders/{order_id}")
        read = api.get(f"{sandbox.api_base_url}/stores/{store_hash}/v2/orders/{order_id}")

    assert (store.status_code, product.status_code, order.status_code) == (201, 201, 201)
    assert status.json() == {"changed": True} and fault.status_code == 201
    assert (faulted.status_code, read.status_code) == (503, 200)
    assert read.json()["status_id"] == 9
    fetched = admin.get(f"{base}/stores/{store_hash}/orders/{order_id}").json()
    assert fetched["products"][0]["sku"] == "TEE/1" and fetched["shipments"] == []
    assert admin.get(f"{base}/stores/{store_hash}/inventory/TEE/1").json() == {
        "sku": "TEE/1", "inventory_level": 4}
    stats = admin.get(f"{base}/stats/{store_hash}").json()
    assert (stats["calls"], stats["quota"], stats["faults_injected"]) == (2, 450, 1)
    calls = admin.get(f"{base}/calls", params={"store_hash": store_hash}).json()
    assert [(c["method"], c["status"]) for c in calls] == [("GET", 503), ("GET", 200)]
    assert admin.get(f"{base}/faults").json() == []
    assert admin.delete(f"{base}/faults").status_code == 204
    assert admin.post(f"{base}/webhooks/wait", json={"timeout": 2}).json() == {"idle": True}


def test_admin_errors_name_the_problem(sandbox: BigCommerceSandbox, admin: requests.Session) -> None:
    base = f"{sandbox.base_url}/_sandbox"
    store_hash = sandbox.create_store()

    unknown_field = admin.post(f"{base}/stores/{store_hash}/products", json={"colour": "red"})
    missing = admin.post(f"{base}/stores/{store_hash}/products", json={})
    bad_value = admin.post(f"{base}/stores/{store_hash}/orders", json={"lines": [{"sku": "NOPE"}]})
    no_store = admin.post(f"{base}/stores/nosuchstore/orders", json={"lines": []})
    no_route = admin.get(f"{base}/nothing-here")

    assert unknown_field.status_code == 400 and "'colour'" in unknown_field.json()["error"]
    assert missing.status_code == 400 and "name" in missing.json()["error"]
    assert bad_value.status_code == 400 and "lines[0].sku" in bad_value.json()["error"]
    assert no_store.status_code == 404 and "nosuchstore" in no_store.json()["error"]
    assert no_route.status_code == 404 and "GET /_sandbox" in no_route.json()["error"]


def test_the_index_lists_every_admin_route(sandbox: BigCommerceSandbox, admin: requests.Session) -> None:
    routes = admin.get(f"{sandbox.base_url}/_sandbox").json()["routes"]
    assert [(r["method"], r["path"]) for r in routes] == [(m, p) for m, p, _, _ in ADMIN_ROUTES]
    assert all(callable(getattr(sandbox, name)) for _, _, name, _ in ADMIN_ROUTES)


def test_the_command_serves_a_seeded_store_until_interrupted() -> None:
    program = ("from dropstream_bigcommerce.sandbox.cli import bigcommerce_sandbox_command as c;"
               " c()")
    command = [sys.executable, "-c", program, "--seed-demo", "--duration", "60"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        printed = dict(line.split(None, 1) for line in lines if line.startswith("  ")
                       and len(line.split(None, 1)) == 2)
        url = lines[0].split(" at ")[1].strip()
        with requests.Session() as session:
            session.headers["X-Auth-Token"] = printed["access_token"].strip()
            orders = session.get(f"{url}/stores/{printed['store_hash'].strip()}/v2/orders")
            index = session.get(f"{url}/_sandbox")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    assert orders.status_code == 200 and len(orders.json()) == 3
    assert index.status_code == 200
    assert any("POST   /_sandbox/stores/<store_hash>/orders" in line for line in lines)


def test_the_dropstream_command_has_the_sandbox(tmp_path: Path) -> None:
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'cli.db'}",
        "SECRET_KEY": "plugin-test-secret-key-0123456789abcdef",
        "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
        "INSTANCE_PATH": str(tmp_path),
    }, env={}, load_entry_points=True)

    sandbox_group = app.cli.commands["sandbox"]
    result = app.test_cli_runner().invoke(args=["sandbox", "bigcommerce", "--duration", "0.1"])

    assert "bigcommerce" in sandbox_group.commands  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert result.output.startswith("BigCommerce sandbox at http://127.0.0.1:")
