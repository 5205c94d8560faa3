"""Warehouses: the provider's WMS connections (provider staff only), set up from the warehouse
connector's own settings and credentials schemas; each has a page showing whether its WMS
refused DropStream's credentials, the stores it serves, and a form for new credentials."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from dropstream.connectors.base import ConnectorRole
from dropstream.console.access import bp, provider_only, scope
from dropstream.console.forms import Form, nested, schema_fields
from dropstream.errors import AppError, ValidationFailed
from dropstream.extensions import db
from dropstream.orders.models import Order
from dropstream.orders.statuses import OrderStatus
from dropstream.state import get_state
from dropstream.stores import services
from dropstream.stores.models import Store, Warehouse


def connector_choices(role: ConnectorRole) -> list[Any]:
    return get_state().connectors.of_role(role)


def _connector(connector_id: str) -> Any:
    """The installed warehouse connector class with that id, or None."""
    return next((c for c in connector_choices(ConnectorRole.WAREHOUSE) if c.id == connector_id),
                None)


def _page(form: Form, status: int = 200) -> Any:
    choices = connector_choices(ConnectorRole.WAREHOUSE)
    chosen = form.value("connector_id") or (choices[0].id if choices else "")
    cls = _connector(chosen)
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
        cls = _connector(form.value("connector_id"))
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


def load_warehouse(warehouse_id: int) -> Warehouse:
    return scope().get(db.session, Warehouse, warehouse_id)


def _warehouse_page(warehouse: Warehouse, form: Form, status: int = 200) -> Any:
    cls = _connector(warehouse.connector_id)
    stores = db.session.scalars(scope().select(Store, Store.warehouse_id == warehouse.id)
                                .order_by(Store.name)).all()
    # What a refusal or an outage holds up: each store's orders waiting to be sent again.
    retrying = dict(db.session.execute(
        select(Order.store_id, func.count()).where(
            scope().criteria(Order), Order.store_id.in_([store.id for store in stores]),
            Order.status == OrderStatus.RETRYING).group_by(Order.store_id)).all())
    credentials = schema_fields(cls.credentials_schema if cls else None, "credentials",
                                secret=True)
    return render_template("console/warehouse.html", warehouse=warehouse, stores=stores,
                           retrying=retrying, form=form, credentials=credentials), status


@bp.get("/warehouses/<int:warehouse_id>")
@provider_only
def warehouse(warehouse_id: int) -> Any:
    return _warehouse_page(load_warehouse(warehouse_id), Form())


@bp.post("/warehouses/<int:warehouse_id>/credentials")
@provider_only
def save_warehouse_credentials(warehouse_id: int) -> Any:
    """Replace the warehouse's credentials whole. Saving them, even unchanged (the WMS unlocked
    the account), ends a refusal: the work that waited for them runs now."""
    warehouse = load_warehouse(warehouse_id)
    form = Form.posted()
    cls = _connector(warehouse.connector_id)
    try:
        services.update_warehouse(db.session, scope(), warehouse, {
            "credentials": nested("credentials", cls.credentials_schema if cls else None)})
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return _warehouse_page(warehouse, form.fail(error), 422)
    flash(f"New credentials saved for {warehouse.name}: the work that waited for them runs now.")
    return redirect(url_for("console.warehouse", warehouse_id=warehouse.id))
