"""The onboarding wizard: the seed article's six steps, in its order, each with live checks.

1 Get API credentials · 2 Enable API access · 3 Configure SKUs · 4 Gather shipping methods ·
5 (Optional) Inventory tracking · 6 Review order status.

Everything connector-specific comes from the connector through the contract: its settings and
credentials schemas (the fields of step 1), its set-up checks (verification, products without
SKUs, inventory tracking, webhooks), ``order_statuses()`` and ``monitored_status_setting``
(step 2), ``install_endpoint`` ("Install app"), and the warehouse's ``ship_methods()`` (step 4).
A merchant may do step 1 alone and hand the rest to the provider, whose staff can do every
step on the merchant's behalf (only they link the store to a warehouse).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from dropstream.catalog.models import ShippingRule, shipping_match_key
from dropstream.connectors.base import Capability, ConnectorError, ConnectorRole
from dropstream.connectors.types import OrderStatusChoice, ShipMethod
from dropstream.console.access import bp, current_user, scope
from dropstream.console.checks import details_of, last_checks, run_and_record
from dropstream.console.forms import Form, nested, schema_fields, shown
from dropstream.console.stores import load_store
from dropstream.console.warehouses import connector_choices
from dropstream.errors import AppError, ValidationFailed
from dropstream.extensions import db
from dropstream.inventory.models import InventoryItem, ItemState
from dropstream.orders.models import Order, OrderAddress
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.plugins import UnknownConnector
from dropstream.state import get_state
from dropstream.stores import services
from dropstream.stores.connections import store_connector, warehouse_connector
from dropstream.stores.credentials import read_credentials
from dropstream.stores.models import Channel, Store, StoreState, Warehouse
from dropstream.tenants.models import Merchant

STEPS = (
    (1, "Get API credentials"),
    (2, "Enable API access"),
    (3, "Configure SKUs"),
    (4, "Gather shipping methods"),
    (5, "(Optional) Inventory tracking"),
    (6, "Review order status"),
)
FIRST_ORDERS = 20


# ------------------------------------------------------------------------------------------------
# Step 1 for a new store
# ------------------------------------------------------------------------------------------------


def _connector(connector_id: str) -> Any:
    try:
        return get_state().connectors.get(connector_id, ConnectorRole.STOREFRONT)
    except UnknownConnector:
        return None


def _new_store_page(form: Form, status: int = 200) -> Any:
    choices = connector_choices(ConnectorRole.STOREFRONT)
    chosen = form.value("connector_id") or (choices[0].id if choices else "")
    cls = _connector(chosen)
    merchants = db.session.scalars(scope().select(Merchant).order_by(Merchant.name)).all()
    warehouses, account = _warehouse_fields(form)
    return render_template(
        "console/store_new.html", form=form, choices=choices, chosen=chosen, cls=cls,
        merchants=merchants, warehouses=warehouses, account=account,
        settings=schema_fields(cls.settings_schema if cls else None, "settings"),
        credentials=schema_fields(cls.credentials_schema if cls else None, "credentials", secret=True),
        steps=STEPS, step=1, store=None), status


def _warehouse_fields(form: Form) -> tuple[list[Warehouse], list[Any]]:
    if not current_user().role.is_provider:
        return [], []
    warehouses = list(db.session.scalars(scope().select(Warehouse).order_by(Warehouse.name)))
    chosen = form.value("warehouse_id")
    warehouse = next((w for w in warehouses if str(w.id) == chosen), warehouses[0] if warehouses else None)
    if warehouse is None:
        return warehouses, []
    try:
        cls = get_state().connectors.get(warehouse.connector_id, ConnectorRole.WAREHOUSE)
    except UnknownConnector:
        return warehouses, []
    return warehouses, schema_fields(cls.account_schema, "warehouse_account")


@bp.get("/stores/new")
def new_store() -> Any:
    values = {key: request.args.get(key, "") for key in ("connector_id", "merchant_id", "warehouse_id")}
    return _new_store_page(Form(values=values))


def _store_payload(form: Form, creating: bool, connector_id: str) -> dict[str, Any]:
    cls = _connector(connector_id)
    data: dict[str, Any] = {"settings": nested("settings", cls.settings_schema if cls else None)}
    credentials = nested("credentials")
    if credentials or creating:
        data["credentials"] = credentials
    name = form.value("name").strip()
    if creating or "name" in form.values:
        data["name"] = name[:200]
    if "external_id" in form.values:
        data["external_id"] = form.value("external_id").strip()[:200]
    if current_user().role.is_provider and form.value("warehouse_id"):
        if not form.value("warehouse_id").isdigit():
            raise ValidationFailed("Choose a warehouse.", fields={"warehouse_id": ["Choose one."]})
        data["warehouse_id"] = int(form.value("warehouse_id"))
        data["warehouse_account"] = nested("warehouse_account")
    return data


def _check_all(data: dict[str, Any], connector_id: str) -> None:
    """Report every bad field at once (the services stop at the first failing group)."""
    fields: dict[str, list[str]] = {}
    if "name" in data and not data["name"]:
        fields["name"] = ["Required."]
    cls = _connector(connector_id)
    if cls is not None:
        for key, schema in (("settings", cls.settings_schema), ("credentials", cls.credentials_schema)):
            if key in data:
                try:
                    services.validate_with(schema, data[key], key)
                except ValidationFailed as error:
                    fields.update(error.fields)
    if fields:
        raise ValidationFailed("The store could not be saved: some fields are invalid.", fields=fields)


@bp.post("/stores/new")
def create_store() -> Any:
    form = Form.posted()
    try:
        data = _store_payload(form, creating=True, connector_id=form.value("connector_id"))
        data["connector_id"] = form.value("connector_id")
        _check_all(data, data["connector_id"])
        if current_user().role.is_provider:
            merchant = form.value("merchant_id")
            data["merchant_id"] = int(merchant) if merchant.isdigit() else None
        store = services.create_store(db.session, scope(), data)
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return _new_store_page(form.fail(error), 422)
    _verify(store)
    return redirect(url_for("console.setup_step", store_id=store.id, step=1))


def _verify(store: Store) -> None:
    """Run the checks now (the connector's own words come back on the page) and record them."""
    try:
        run_and_record(db.session, store)
        db.session.commit()
    except (AppError, ConnectorError, UnknownConnector) as error:
        db.session.rollback()
        flash(f"The checks could not run: {getattr(error, 'message', error)}", "error")


# ------------------------------------------------------------------------------------------------
# Steps of an existing store
# ------------------------------------------------------------------------------------------------


def store_side_passed(result: Any) -> bool:
    """Step 1 is done when the store's own required checks pass (the warehouse link is the
    provider's part and may come later)."""
    if result is None:
        return False
    return all(c.get("passed") for c in result.checks
               if c.get("required", True) and not c.get("key", "").startswith("warehouse"))


def progress(store: Store) -> dict[int, bool]:
    result = last_checks(db.session, store)
    cls = _connector(store.connector_id)
    setting = getattr(cls, "monitored_status_setting", None)
    held = dict(db.session.execute(
        select(Order.hold_reason, Order.id).where(scope().criteria(Order), Order.store_id == store.id,
                                                  Order.status == OrderStatus.ON_HOLD)).all())
    overview = shipping_overview(store, with_codes=False)
    tracking = details_of(result, "tracking")
    # Until the store answers, its products and shipping methods are unknown, not fine.
    connected = store.has_credentials and store_side_passed(result)
    return {
        1: connected,
        2: store.state is StoreState.ACTIVE and (not setting or bool((store.settings or {}).get(setting))),
        3: connected and not ({HoldReason.NO_SKU, HoldReason.UNKNOWN_SKU} & set(held))
        and all(c.get("passed") for c, _ in details_of(result, "sku")),
        4: connected and not overview["unmapped"] and HoldReason.UNMAPPED_SHIPPING_METHOD not in held,
        5: bool(tracking) and all(c.get("passed") for c, _ in tracking),
        6: db.session.scalar(select(Order.id).where(scope().criteria(Order), Order.store_id == store.id)
                             .limit(1)) is not None,
    }


def order_statuses(store: Store) -> tuple[list[OrderStatusChoice] | None, str | None]:
    """The store's own statuses (None when the connector has no list), and a problem if any."""
    try:
        return store_connector(store).order_statuses(), None
    except NotImplementedError:
        return None, None
    except (ConnectorError, UnknownConnector) as error:
        return None, getattr(error, "message", str(error))


def warehouse_codes(store: Store) -> tuple[list[ShipMethod] | None, str | None]:
    warehouse = store.warehouse
    if warehouse is None:
        return None, "Link the store to a warehouse (step 1) to see its ship codes."
    try:
        cls = get_state().connectors.get(warehouse.connector_id, ConnectorRole.WAREHOUSE)
        if Capability.SHIP_METHODS not in cls.capabilities:
            return None, None
        return warehouse_connector(warehouse, store).ship_methods(), None
    except (ConnectorError, UnknownConnector, NotImplementedError) as error:
        return None, getattr(error, "message", None) or "The warehouse did not list its ship codes."


def shipping_overview(store: Store, with_codes: bool = True) -> dict[str, Any]:
    """The methods the store uses (from its orders and its set-up checks), each with the rule
    that maps it, or flagged unmapped; the rules; the warehouse's codes to choose from."""
    rules = db.session.scalars(scope().select(ShippingRule, ShippingRule.store_id == store.id)
                               .order_by(ShippingRule.is_default.desc(), ShippingRule.store_method)).all()
    used = [m for m in db.session.scalars(
        select(OrderAddress.shipping_method).distinct().join(Order, Order.id == OrderAddress.order_id)
        .where(scope().criteria(Order), Order.store_id == store.id, OrderAddress.role == "shipping",
               OrderAddress.shipping_method != "").order_by(OrderAddress.shipping_method)) if m]
    for _check, details in details_of(last_checks(db.session, store), "shipping"):
        used += details
    by_key = {rule.match_key: rule for rule in rules if not rule.is_default}
    default = next((rule for rule in rules if rule.is_default), None)
    methods, seen = [], set()
    for method in used:
        key = shipping_match_key(method)
        if key in seen:
            continue
        seen.add(key)
        methods.append({"method": method, "rule": by_key.get(key), "default": default})
    for rule in rules:
        if not rule.is_default and rule.match_key not in seen:
            seen.add(rule.match_key)
            methods.append({"method": rule.store_method, "rule": rule, "default": default})
    codes, codes_problem = warehouse_codes(store) if with_codes else (None, None)
    return {"rules": rules, "methods": methods, "default_rule": default, "codes": codes,
            "codes_problem": codes_problem,
            "unmapped": [m["method"] for m in methods if m["rule"] is None and default is None]}


def step_page(store: Store, step: int, form: Form | None = None, status: int = 200,
              edit: int | None = None) -> Any:
    result = last_checks(db.session, store)
    cls = _connector(store.connector_id)
    context: dict[str, Any] = {"store": store, "step": step, "steps": STEPS, "done": progress(store),
                               "checks": result, "cls": cls, "form": form or Form(), "edit": edit,
                               "Channel": Channel}
    if step == 1:
        warehouses, account = _warehouse_fields(form or Form(values={
            "warehouse_id": str(store.warehouse_id or "")}))
        context.update(
            settings=schema_fields(cls.settings_schema if cls else None, "settings"),
            credentials=schema_fields(cls.credentials_schema if cls else None, "credentials", secret=True),
            warehouses=warehouses, account=account, shown=shown,
            install_url=_install_url(cls, store))
        if form is None:
            context["form"] = checks_by_field(result)
    elif step == 2:
        statuses, problem = order_statuses(store)
        setting = getattr(cls, "monitored_status_setting", None)
        context.update(statuses=statuses, statuses_problem=problem, setting=setting,
                       current=(store.settings or {}).get(setting, "") if setting else "")
    elif step == 3:
        from dropstream.catalog.services import store_listings

        context.update(
            sku_checks=details_of(result, "sku"), listings=store_listings(db.session, store),
            held=db.session.scalars(scope().select(Order, Order.store_id == store.id,
                                                   Order.status == OrderStatus.ON_HOLD,
                                                   Order.hold_reason.in_([HoldReason.NO_SKU, HoldReason.UNKNOWN_SKU]))
                                    .order_by(Order.id.desc()).limit(50)).all())
    elif step == 4:
        context.update(shipping_overview(store))
    elif step == 5:
        context.update(tracking=details_of(result, "tracking"), skipped=db.session.scalars(
            scope().select(InventoryItem, InventoryItem.store_id == store.id,
                           InventoryItem.state == ItemState.SKIPPED,
                           InventoryItem.reason == "tracking_off").limit(200)).all())
    else:
        context.update(first_orders(store))
    return render_template("console/wizard.html", **context), status


def checks_by_field(result: Any) -> Form:
    """The last verification's failures, each next to the input it is about (a wrong token under
    the token, a wrong store hash under the hash), in the connector's own words."""
    form = Form()
    for check in result.checks if result is not None else []:
        if not check.get("passed") and check.get("field"):
            words = " ".join(part for part in (check.get("message"), check.get("fix")) if part)
            form.errors.setdefault(check["field"], []).append(words)
    return form


def _install_url(cls: Any, store: Store) -> str | None:
    endpoint = getattr(cls, "install_endpoint", None)
    if not endpoint:
        return None
    try:
        return url_for(endpoint, store_id=store.id)
    except Exception:  # noqa: BLE001 - an endpoint the plugin did not mount: no button
        return None


def first_orders(store: Store) -> dict[str, Any]:
    orders = db.session.scalars(scope().select(Order, Order.store_id == store.id)
                                .order_by(Order.id.desc()).limit(FIRST_ORDERS)).all()
    return {"orders": orders, "orders_channel": store.channel(Channel.ORDERS)}


@bp.get("/stores/<int:store_id>/setup")
def setup(store_id: int) -> Any:
    store = load_store(store_id)
    done = progress(store)
    step = next((number for number, _ in STEPS if not done[number] and number != 5), 6)
    return redirect(url_for("console.setup_step", store_id=store.id, step=step))


@bp.get("/stores/<int:store_id>/setup/<int(min=1, max=6):step>")
def setup_step(store_id: int, step: int) -> Any:
    return step_page(load_store(store_id), step)


@bp.post("/stores/<int:store_id>/setup/1")
def save_credentials(store_id: int) -> Any:
    """Save changed settings, credentials or the warehouse link, then verify with the checks."""
    store = load_store(store_id)
    form = Form.posted()
    try:
        data = _store_payload(form, creating=False, connector_id=store.connector_id)
        if "name" in data and not data["name"]:
            raise ValidationFailed("Name the store.", fields={"name": ["Required."]})
        if data.get("external_id") == (store.external_id or ""):
            # Untouched: credentials naming the store (a corrected store hash) may still set it.
            data.pop("external_id")
        if data.get("credentials") and store.has_credentials:
            data["credentials"] = _kept_credentials(store, data["credentials"])
        if not current_user().role.is_provider:
            data.pop("warehouse_id", None)
        if data.get("settings") is not None and not data["settings"]:
            data.pop("settings")
        services.update_store(db.session, scope(), store, data)
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return step_page(store, 1, form=form.fail(error), status=422)
    _verify(store)
    return redirect(url_for("console.setup_step", store_id=store.id, step=1))


def _kept_credentials(store: Store, typed: dict[str, Any]) -> dict[str, Any]:
    """What was typed over the stored credentials: a secret input left blank keeps its value
    (as its placeholder says), so correcting a token does not mean typing every secret again.
    Only the connector's own credential fields are kept; what it added itself (a webhook
    secret) is its to make again."""
    cls = _connector(store.connector_id)
    own = set(cls.credentials_schema().fields) if cls is not None and cls.credentials_schema else set()
    stored = {key: value for key, value in read_credentials(store).items() if key in own}
    return {**stored, **typed}


@bp.post("/stores/<int:store_id>/setup/2")
def save_status(store_id: int) -> Any:
    """Authorize (the checks) and choose the status whose orders are imported."""
    store = load_store(store_id)
    cls = _connector(store.connector_id)
    setting = getattr(cls, "monitored_status_setting", None)
    form = Form.posted()
    if setting and "status" in form.values:
        status = form.value("status").strip()
        try:
            if not status:
                raise ValidationFailed("Choose the status.", fields={"status": ["Choose one."]})
            statuses, _problem = order_statuses(store)
            if statuses is not None and status not in {s.code for s in statuses}:
                raise ValidationFailed("Choose one of the store's statuses.",
                                       fields={"status": ["Not one of the store's statuses."]})
            services.update_store(db.session, scope(), store, {"settings": {setting: status[:80]}})
            db.session.commit()
        except AppError as error:
            db.session.rollback()
            return step_page(store, 2, form=form.fail(error), status=422)
    _verify(store)
    return redirect(url_for("console.setup_step", store_id=store.id, step=2))


@bp.post("/stores/<int:store_id>/setup/<int(min=3, max=5):step>/check")
def check_again(store_id: int, step: int) -> Any:
    store = load_store(store_id)
    _verify(store)
    return redirect(url_for("console.setup_step", store_id=store.id, step=step))


@bp.get("/stores/<int:store_id>/setup/6/orders")
def first_orders_fragment(store_id: int) -> Any:
    """The first orders alone: step 6 polls it so they appear as they arrive."""
    store = load_store(store_id)
    return render_template("console/_first_orders.html", store=store, **first_orders(store))
