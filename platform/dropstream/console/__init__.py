"""The operator console: server-rendered pages for provider staff and merchants.

The console is a client of the same services as the REST API (``stores.services``,
``catalog.services``, ``orders.actions``, ``stores.channels``, ``stores.setup``), never a second
implementation of them. Each request runs in the signed-in user's :class:`TenantScope`, exactly
as an API request does, so a page shows what the API would let that user see: another tenant's
object is a 404, a role's missing right a 403. Every form carries the session's CSRF token.
Pages work without JavaScript; a little script only adds polling for live parts.
"""

from __future__ import annotations

from flask import Flask, redirect, url_for


def init_console(app: Flask) -> None:
    """Mount the console on ``app`` under ``/console`` (and send ``/`` there)."""
    from dropstream.console import (  # noqa: F401  (each module adds its views to the blueprint)
        alerts,
        catalog,
        dashboard,
        inventory,
        orders,
        queues,
        signin,
        stores,
        users,
        warehouses,
        wizard,
    )
    from dropstream.console.access import bp
    from dropstream.console.queues import mount_rq_dashboard

    app.register_blueprint(bp)
    app.add_url_rule("/", "console_home", lambda: redirect(url_for("console.dashboard")))
    app.config.setdefault("CONSOLE_INVITATION_DAYS", 7)
    app.config.setdefault("CONSOLE_DIGEST_MINUTES", 10)
    if app.config.get("REDIS_URL"):
        mount_rq_dashboard(app)
