"""``dropstream demo``: DropStream on the embedded default in one command.

For now it migrates the database, seeds a demo provider, merchant and admin, prints a fresh API
key and the API docs address, and serves the application with its job threads and scheduler
in-process. The sandboxes and a connected store join it with the connector issues.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
import flask_migrate
from flask import Flask, current_app, url_for
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import run_simple

from dropstream.extensions import db
from dropstream.state import get_state
from dropstream.tenants import services
from dropstream.tenants.models import Merchant, Provider, Role, User

DEMO_PROVIDER_SLUG = "demo"
DEMO_ADMIN_EMAIL = "admin@demo.test"
#: flask-smorest's documentation endpoints, the most readable first.
DOC_ENDPOINTS = ("api-docs.openapi_swagger_ui", "api-docs.openapi_redoc",
                 "api-docs.openapi_rapidoc", "api-docs.openapi_json")


@dataclass
class DemoTenant:
    provider: Provider
    merchant: Merchant
    admin: User
    api_key: str


def seed_demo(session: Session) -> DemoTenant:
    """Create the demo provider, merchant and admin once; issue a new API key on every call
    (a key is only ever shown when it is made)."""
    provider = session.scalar(select(Provider).where(Provider.slug == DEMO_PROVIDER_SLUG))
    if provider is None:
        provider = services.create_provider(session, "Demo Fulfillment", DEMO_PROVIDER_SLUG)
    merchant = session.scalar(select(Merchant).where(Merchant.provider_id == provider.id)
                              .order_by(Merchant.id))
    if merchant is None:
        merchant = services.create_merchant(session, provider, "Demo Goods", "owner@demo.test")
    admin = session.scalar(select(User).where(User.email == DEMO_ADMIN_EMAIL))
    if admin is None:
        # No password: the console's sign-in comes later, and a printed password would leak.
        admin = services.create_user(session, provider=provider, email=DEMO_ADMIN_EMAIL,
                                     role=Role.PROVIDER_ADMIN, password=None, name="Demo admin")
    _key, plaintext = services.issue_api_key(session, admin, "demo")
    return DemoTenant(provider, merchant, admin, plaintext)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@with_appcontext
def demo_command(host: str, port: int) -> None:
    """Migrate the database, seed a demo tenant and serve DropStream until Ctrl-C.

    Prints a new API key for the demo admin (shown once) and the API docs address.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    flask_migrate.upgrade()
    tenant = seed_demo(db.session)
    db.session.commit()
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    click.echo("DropStream demo")
    click.echo(f"  provider  {tenant.provider.name} (slug {tenant.provider.slug})")
    click.echo(f"  merchant  {tenant.merchant.name} (id {tenant.merchant.id})")
    click.echo(f"  admin     {tenant.admin.email}")
    click.echo(f"  API key   {tenant.api_key}  (shown once; send it as 'Authorization: Bearer …')")
    click.echo(f"  API docs  {api_docs_url(app, base) or 'not available in this build'}")
    click.echo(f"  health    {base}/healthz")
    click.echo("Press Ctrl-C to stop.")
    # End this thread's transaction: on SQLite an open one would lock out the job threads.
    db.session.remove()
    serve(app, host, port)


def api_docs_url(app: Flask, base: str) -> str | None:
    with app.test_request_context(base_url=base):
        for endpoint in DOC_ENDPOINTS:
            if endpoint in app.view_functions:
                return url_for(endpoint, _external=True)
    return None


def serve(app: Flask, host: str, port: int) -> None:
    """Serve ``app`` with the in-process job threads and scheduler; stop them all on Ctrl-C."""
    from dropstream.jobs.scheduler import start_in_process

    queue = get_state(app).queue
    start = getattr(queue, "start", None)  # RQ has no in-process threads: workers run apart
    if callable(start):
        start()
    # Stopping joins the scheduler thread, so no tick is cut off holding a connection.
    scheduler = start_in_process(app)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    except KeyboardInterrupt:
        pass  # Ctrl-C before werkzeug's loop (which handles it itself) was running
    finally:
        scheduler.stop(timeout=30)
        queue.close()
        click.echo("DropStream stopped.")
