"""``dropstream sandbox bigcommerce``: run the sandbox in the foreground until Ctrl-C."""

from __future__ import annotations

import random
import time
from typing import Any

import click

from .admin import ADMIN_ROUTES
from .core import BigCommerceSandbox

DEMO_PRODUCTS: tuple[dict[str, Any], ...] = (
    {"name": "Organic Cotton Tee", "sku": "DS-TEE-BLK", "price": "24.00", "inventory_level": 25},
    {"name": "Stoneware Mug", "sku": "DS-MUG", "price": "14.50", "inventory_level": 40},
    {"name": "Canvas Poster", "sku": "DS-POSTER", "price": "18.00", "inventory_tracking": "none"},
    {"name": "Gift Wrap", "sku": None, "price": "3.00", "inventory_level": 100},
    {"name": "Field Guide (e-book)", "sku": "DS-EBOOK", "price": "9.00", "type": "digital",
     "inventory_tracking": "none"},
    {"name": "Zip Hoodie", "sku": "DS-HOODIE", "price": "55.00", "inventory_tracking": "variant",
     "variants": [{"sku": f"DS-HOODIE-{size}", "label": size, "option": "Size",
                   "inventory_level": level} for size, level in (("S", 5), ("M", 8), ("L", 3))]},
)


def seed_demo_store(sandbox: BigCommerceSandbox, seed: int = 0) -> dict[str, Any]:
    """A store with an API account, a small catalog (one product without a SKU, one untracked,
    one digital, one with variants) and a few orders awaiting fulfillment."""
    rng = random.Random(seed)
    store_hash = sandbox.create_store(name="DropStream demo store")
    credentials = sandbox.create_api_account(store_hash)
    for product in DEMO_PRODUCTS:
        sandbox.add_product(store_hash, **product)
    second_address = {"first_name": "Sam", "last_name": "Lee", "street_1": "12 Harbour Road",
                      "city": "Portland", "state": "Oregon", "zip": "97201",
                      "country": "United States", "country_iso2": "US", "email": "sam@example.com",
                      "shipping_method": "Express"}
    orders = [
        sandbox.create_order(store_hash, lines=[{"sku": "DS-TEE-BLK", "quantity": rng.randint(1, 3)},
                                                {"sku": "DS-MUG", "quantity": 1}]),
        sandbox.create_order(store_hash, lines=[{"sku": "DS-HOODIE-M", "quantity": 1},
                                                {"sku": "DS-EBOOK", "quantity": 1}],
                             customer_message="Please gift wrap the hoodie."),
        sandbox.create_order(
            store_hash,
            lines=[{"sku": "DS-MUG", "quantity": 2}, {"sku": "DS-POSTER", "quantity": 1,
                                                      "address_index": 1}],
            shipping_addresses=[{"first_name": "Jane", "last_name": "Doe",
                                 "street_1": "455 Main Street", "city": "Austin",
                                 "state": "Texas", "zip": "78751", "country": "United States",
                                 "country_iso2": "US", "email": "janedoe@example.com",
                                 "shipping_method": "Free Shipping"}, second_address],
            custom_products=[{"name": "Engraving service", "quantity": 1, "price": "5.00"}]),
    ]
    return {"store_hash": store_hash, **credentials, "orders": orders}


@click.command("bigcommerce")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option("--seed-demo", is_flag=True, help="Create a store, an API account, products "
                                                 "and orders, and print the credentials.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--no-rate-limits", is_flag=True, help="Do not enforce the per-store quota.")
@click.option("--webhook-retry-scale", default=0.01, show_default=True, type=float,
              help="Multiplier of BigCommerce's webhook retry delays (1 = real time).")
@click.option("--duration", type=float, default=None,
              help="Stop by itself after this many seconds (for scripts).")
def bigcommerce_sandbox_command(host: str, port: int, seed_demo: bool, seed: int,
                                no_rate_limits: bool, webhook_retry_scale: float,
                                duration: float | None) -> None:
    """Run a BigCommerce sandbox: the REST API, the OAuth token endpoint, webhooks that are
    really delivered, and admin routes to create stores, products and orders."""
    sandbox = BigCommerceSandbox(rate_limits=not no_rate_limits,
                                 webhook_retry_scale=webhook_retry_scale, seed=seed)
    url = sandbox.start(host, port)
    try:
        click.echo(f"BigCommerce sandbox at {url}")
        click.echo(f"  REST API     {url}/stores/{{store_hash}}/v2/... and .../v3/...")
        click.echo(f"  OAuth token  POST {url}/oauth2/token")
        click.echo("  Admin routes (JSON):")
        for method, rule, _, about in ADMIN_ROUTES:
            click.echo(f"    {method:6} {rule}  {about}".rstrip())
        if seed_demo:
            demo = seed_demo_store(sandbox, seed)
            click.echo("Demo store (sandbox credentials, not real secrets):")
            for key in ("store_hash", "client_id", "client_secret", "access_token"):
                click.echo(f"  {key:14} {demo[key]}")
            click.echo(f"  orders         {', '.join(map(str, demo['orders']))}")
        click.echo("Ctrl-C stops it.")
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
