"""Warehouses: the provider's WMS connections (provider staff only), set up from the warehouse
connector's own settings and credentials schemas."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from dropstream.connectors.base import ConnectorRole
from dropstream.console.access import bp, provider_only, scope
from dropstream.console.forms import Form, nested, schema_fields
from dropstream.errors import AppError, ValidationFailed
from dropstream.extensions import db
from dropstream.state import get_state
from dropstream.stores import services
from dropstream.stores.models import Warehouse


def connector_choices(role: ConnectorRole) -> list[Any]:
    return get_state().connectors.of_role(role)


def _page(form: Form, status: int = 200) -> Any:
    choices = connector_choices(ConnectorRole.WAREHOUSE)
    chosen = form.value("connector_id") or (choices[0].id if choices else "")
    cls = next((c for c in choices if c.id == chosen), None)
    warehouses = db.session.scalars(scope().select(Warehouse).order_by(Warehouse.name)).all()
    return render_template(
        "console/warehouses.html", warehouses=warehouses, choices=choices, chosen=chosen, form=form,
        settings=schema_fields(cls.settings_schema if cls else None, "settings"),
        credentials=schema_fields(cls.credentials_schema if cls else None, "credentials", secret=True),
    ), status


@bp.get("/warehouses")
@provider_only
def warehouses() -> Any:
    return _page(Form(values={"connector_id": request.args.get("connector_id", "")}))


@bp.post("/warehouses")
@provider_only
def create_warehouse() -> Any:
    form = Form.posted()
    try:
        name = form.value("name").strip()
        if not name:
            raise ValidationFailed("Name the warehouse.", fields={"name": ["Required."]})
        cls = next((c for c in connector_choices(ConnectorRole.WAREHOUSE)
                    if c.id == form.value("connector_id")), None)
        warehouse = services.create_warehouse(db.session, scope(), {
            "name": name[:200], "connector_id": form.value("connector_id"),
            "settings": nested("settings", cls.settings_schema if cls else None),
            "credentials": nested("credentials")})
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return _page(form.fail(error), 422)
    flash(f"Warehouse {warehouse.name} added.")
    return redirect(url_for("console.warehouses"))
