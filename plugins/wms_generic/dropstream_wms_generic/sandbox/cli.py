"""``dropstream sandbox wms``: the WMS sandbox from the command line, until Ctrl-C."""

from __future__ import annotations

import threading

import click

from dropstream_wms_generic.sandbox.server import WmsSandbox


def _stock(values: tuple[str, ...]) -> dict[str, dict[str, int]]:
    stock: dict[str, dict[str, int]] = {}
    for value in values:
        account, _, rest = value.partition(":")
        sku, _, quantity = rest.partition("=")
        if not (account and sku and quantity.isdigit()):
            raise click.BadParameter(
                f"{value!r}: write ACCOUNT:SKU=UNITS, e.g. ACME:TSHIRT-M=40", param_hint="--stock"
            )
        stock.setdefault(account, {})[sku] = int(quantity)
    return stock


@click.command("wms")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on."
)
@click.option("--port", default=8701, show_default=True, type=int, help="Port (0: any free port).")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="CODE",
    help="A customer account (repeat for several merchants).",
)
@click.option("--stock", "stock", multiple=True, metavar="ACCOUNT:SKU=UNITS", help="Units on hand.")
@click.option("--token", default=None, help="Bearer token the WMS accepts (default: wms-token).")
@click.option(
    "--ship-delay",
    default=10.0,
    show_default=True,
    type=float,
    help="Seconds from order to shipment.",
)
@click.option(
    "--partial-ratio",
    default=0.25,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of orders shipped in two parcels.",
)
@click.option("--no-dedupe", is_flag=True, help="Accept a repeated reference as a new order.")
@click.option("--strict-skus", is_flag=True, help="Refuse SKUs the account has no stock of.")
@click.option(
    "--push-url",
    default=None,
    help="DropStream's inbound address of the warehouse "
    "(…/connectors/wms_generic/warehouses/<id>) to push shipments and stock to.",
)
@click.option("--push-key", default="", help="The warehouse's credentials.inbound_key.")
@click.option(
    "--push-secret",
    default="",
    envvar="WMS_SANDBOX_PUSH_SECRET",
    help="The warehouse's credentials.signing_secret (or WMS_SANDBOX_PUSH_SECRET).",
)
@click.option(
    "--seed",
    default=7,
    show_default=True,
    type=int,
    help="Random seed (tracking numbers, partials).",
)
@click.option(
    "--duration", default=0.0, type=float, help="Stop after this many seconds (0: at Ctrl-C)."
)
def wms_sandbox_command(
    host: str,
    port: int,
    accounts: tuple[str, ...],
    stock: tuple[str, ...],
    token: str | None,
    ship_delay: float,
    partial_ratio: float,
    no_dedupe: bool,
    strict_skus: bool,
    push_url: str | None,
    push_key: str,
    push_secret: str,
    seed: int,
    duration: float,
) -> None:
    """Run the WMS sandbox: the generic WMS protocol (PROTOCOL.md) on a real HTTP server.

    Admin operations are served as JSON under /_sandbox/ (GET /_sandbox/summary; POST
    /_sandbox/set_stock, /_sandbox/ship, /_sandbox/inject, /_sandbox/outage, …).
    """
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise click.BadParameter("the sandbox listens on loopback only", param_hint="--host")
    levels = _stock(stock)
    sandbox = WmsSandbox(
        host,
        port,
        seed=seed,
        ship_delay=ship_delay,
        partial_ratio=partial_ratio,
        dedupe=not no_dedupe,
        strict_skus=strict_skus,
    )
    for code in dict.fromkeys([*accounts, *levels]):
        sandbox.add_account(code)
    for code, skus in levels.items():
        sandbox.set_stock(code, skus)
    if token:
        sandbox.set_credentials(token=token)
    if push_url:
        sandbox.configure_push(push_url, push_key, push_secret)
    stop = threading.Event()
    with sandbox:
        click.echo(f"WMS sandbox (protocol v1) at {sandbox.url}")
        codes = ", ".join(sandbox.state.accounts) or "(none yet: /_sandbox/add_account)"
        click.echo(f"  accounts   {codes}")
        click.echo(
            f"  ship delay {ship_delay:g} s; dedupe {'on' if not no_dedupe else 'off'}; "
            f"pushes {'to ' + push_url if push_url else 'off'}"
        )
        click.echo(f"  admin      {sandbox.url}/_sandbox/summary")
        click.echo("Press Ctrl-C to stop." if not duration else f"Stopping after {duration:g} s.")
        try:
            stop.wait(duration or None)
        except KeyboardInterrupt:
            pass
    click.echo("WMS sandbox stopped.")
