"""Generated BigCommerce orders (Hypothesis): odd text, quantities, prices, addresses and
missing fields, read by the connector's order parsing and imported and mapped by the core
exactly as a webhook's re-read does (``refresh_order``).

Properties, for every generated order:

- nothing raises: the job that reads an order never crashes;
- an order at the monitored status is never dropped: it ends queued, held, skipped or in error,
  and a held, failed or skipped order shows a code and a field path;
- a queued order is one the warehouse protocol accepts (DropStream caught everything a
  warehouse would refuse, but a quantity above that warehouse's own maximum);
- reading the same order again changes nothing; an order held for its shipping method is
  released by adding the rule.

The examples are fixed (``derandomize``) and bounded (200) so the suite stays fast; set
``DROPSTREAM_HYPOTHESIS_PROFILE=long`` for 5,000 random ones.
"""

# Fixtures are imported by name (pytest finds them in the module), then used as arguments.
# ruff: noqa: F401, F811

from __future__ import annotations

import copy
import itertools
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.conftest import _schema, app_config, database_url, running_app
from tests.factories import (
    MerchantFactory,
    ProviderFactory,
    ShippingRuleFactory,
    StoreFactory,
    WarehouseFactory,
)

from dropstream.catalog.models import ShippingRule
from dropstream.extensions import db
from dropstream.hookspecs import hookimpl
from dropstream.orders.forwarding import _consignments, _warehouse_order
from dropstream.orders.holds import evaluate
from dropstream.orders.importing import refresh_order
from dropstream.orders.models import Order
from dropstream.orders.statuses import HoldReason, OrderStatus
from dropstream.stores.credentials import write_credentials
from dropstream.orders.sync import sync_orders
from dropstream.stores.models import Channel, Store
from dropstream.testing import plugin as reference_plugin
from dropstream_bigcommerce.connector import BigCommerceConnector
from dropstream_bigcommerce.mapping import MappingError, integer, rfc2822
from dropstream_wms_generic import protocol

settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None,
                          database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("DROPSTREAM_HYPOTHESIS_PROFILE", "ci")

#: A field path first, then the words: ``lines[2].sku: …``, ``shipping_addresses[0].city: …``.
FIELD_PATH = re.compile(r"^[a-z_]+(\[\d+\])?(\.[a-z_0-9]+)*(\[\d+\])?(\.[a-z_0-9]+)*: \S")
SKIP_CODES = {"digital_only", "gift_certificate_only", "nothing_to_ship", "no_lines"}
KNOWN_SKUS = ("TEE", "MUG", "CAP")
METHOD = "Free Shipping"


# ------------------------------------------------------------------------------------------------
# A BigCommerce store that serves generated payloads (no HTTP: the parsing is what is tested)
# ------------------------------------------------------------------------------------------------

PAYLOADS: dict[str, dict[str, Any]] = {}
#: The order ids the sweep's ``GET /v2/orders`` lists.
PAGE: list[str] = []


class PayloadClient:
    """Answers the calls the connector makes to read one order (or a sweep's page of them,
    :data:`PAGE`), from :data:`PAYLOADS`."""

    store_hash = "generated"

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        if path == "/v2/orders":
            first = (params or {}).get("page", 1) == 1
            return [copy.deepcopy(PAYLOADS[i]["order"]) for i in PAGE] if first else None
        return copy.deepcopy(PAYLOADS[path.rsplit("/", 1)[-1]]["order"])

    def v2_pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[list[Any]]:
        _, _, order_id, what = path.strip("/").split("/")
        items = copy.deepcopy(PAYLOADS[order_id][what])
        for start in range(0, len(items), 250):
            yield items[start:start + 250]


class GeneratedStore(BigCommerceConnector):
    id = "bigcommerce-generated"
    name = "BigCommerce (generated orders)"

    @contextmanager
    def client(self) -> Iterator[Any]:  # type: ignore[override]
        yield PayloadClient()


class GeneratedPlugin:
    @hookimpl
    def register_connectors(self) -> list[type]:
        return [GeneratedStore]


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Any]:
    with running_app(app_config, plugins=[("reference", reference_plugin), ("generated", GeneratedPlugin())]) as app:
        yield app


@pytest.fixture
def store(app: Any) -> Store:
    provider = ProviderFactory()
    merchant = MerchantFactory(provider_id=provider.id)
    warehouse = WarehouseFactory(provider_id=provider.id)
    store = StoreFactory(provider_id=provider.id, merchant_id=merchant.id,
                         warehouse_id=warehouse.id, connector_id=GeneratedStore.id,
                         external_id="generated", settings={})
    write_credentials(store, {"store_hash": "generated", "access_token": "token"})
    ShippingRuleFactory(provider_id=provider.id, merchant_id=merchant.id, store_id=store.id,
                        store_method=METHOD, match_key=METHOD.lower(), warehouse_code="GRND")
    db.session.commit()
    return store


# ------------------------------------------------------------------------------------------------
# Strategies: BigCommerce orders as the API returns them, and worse
# ------------------------------------------------------------------------------------------------

#: Any text but lone surrogates (JSON from BigCommerce is UTF-8): control characters, NUL,
#: emoji, right-to-left text. Odd, but an order carrying it must still go through.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
WORDS = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Z")), min_size=1, max_size=30)
NASTY = st.sampled_from([
    "", " ", "\x00", "\t\n\r", "\u202e\u200b\ufeff", "${jndi:x}", "%s%n", "null", "1e309",
    "NaN", "y" * 256, "z" * 2000, "ß" * 130,
])
NOT_TEXT = st.one_of(st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
#: What a field may hold instead when it is broken.
BROKEN_TEXT = st.one_of(NASTY, NOT_TEXT, st.text(min_size=256, max_size=400))
DATE = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)).map(rfc2822)
BROKEN_DATE = st.one_of(st.datetimes(timezones=st.just(UTC)).map(lambda m: m.isoformat()),
                        st.datetimes().map(lambda m: m.isoformat()), TEXT, NOT_TEXT)


def record(good: dict[str, st.SearchStrategy[Any]],
           broken: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object whose fields are mostly good: about one in ten has a field or two broken
    (a value of the wrong kind or size), about one in twenty a field or two missing."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        bad = draw(st.one_of(*[st.just(frozenset())] * 9, st.frozensets(
            st.sampled_from(sorted(broken)), min_size=1, max_size=2)))
        gone = draw(st.one_of(*[st.just(frozenset())] * 19, st.frozensets(
            st.sampled_from(sorted(good)), min_size=1, max_size=2)))
        return {name: draw(broken[name] if name in bad else strategy)
                for name, strategy in good.items() if name not in gone}

    return build()


def address_record(address_id: Any, methods: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    good = {"id": st.just(address_id), "first_name": WORDS, "last_name": TEXT, "company": TEXT,
            "street_1": WORDS, "street_2": TEXT, "city": WORDS, "state": TEXT, "zip": TEXT,
            "country": TEXT, "country_iso2": st.sampled_from(["US", "GB", "DE", "us", "fr"]),
            "phone": TEXT, "email": TEXT, "shipping_method": methods}
    broken = {**{name: BROKEN_TEXT for name in good if name != "id"},
              "first_name": st.one_of(BROKEN_TEXT, st.just(" ")), "street_1": st.just(""),
              "country_iso2": st.one_of(st.sampled_from(["", "USA", "X1", "ÜS", "u"]), NOT_TEXT),
              "shipping_method": st.one_of(TEXT, NOT_TEXT)}
    return record(good, broken)


def product_record(line_id: int, address_ids: list[int], parents: list[int]
                   ) -> st.SearchStrategy[dict[str, Any]]:
    good = {
        "id": st.just(line_id),
        "type": st.sampled_from(["physical"] * 6 + ["digital", "giftcertificate"]),
        "sku": st.one_of(st.sampled_from(KNOWN_SKUS), WORDS),
        "name": TEXT, "quantity": st.integers(1, 5),
        "price_ex_tax": st.decimals(0, 1000, places=4).map(str),
        "order_address_id": st.sampled_from(address_ids or [0]),
        "product_options": st.one_of(st.none(), st.lists(st.fixed_dictionaries(
            {"display_name": TEXT, "display_value": TEXT}), max_size=2)),
        "parent_order_product_id": st.just(0), "is_bundled_product": st.just(False),
    }
    broken = {
        "type": st.one_of(st.sampled_from(["", "subscription", "PHYSICAL"]), NOT_TEXT),
        "sku": st.one_of(st.sampled_from(["", " ", "CAP\x00", "tee"]), BROKEN_TEXT),
        "name": BROKEN_TEXT,
        "quantity": st.one_of(st.integers(-3, 0), st.integers(10**6, 2**40), st.floats(),
                              st.sampled_from(["3", " 2 ", "x", "", "٣", "²"]), NOT_TEXT),
        "price_ex_tax": st.one_of(st.sampled_from(["1e20", "NaN", "Infinity", "12,50", "-5"]),
                                  st.floats(), NOT_TEXT),
        "order_address_id": st.one_of(st.integers(), BROKEN_TEXT),
        "product_options": st.one_of(TEXT, NOT_TEXT, st.lists(NOT_TEXT, max_size=2)),
        "parent_order_product_id": st.one_of(st.sampled_from(parents or [1]), BROKEN_TEXT),
        "is_bundled_product": NOT_TEXT,
    }
    return record(good, broken)


@st.composite
def bigcommerce_order(draw: st.DrawFn) -> dict[str, Any]:
    """``{"order", "products", "shipping_addresses"}``: the order as ``GET /v2/orders/{id}``
    returns it (consignments embedded, or links), and its separately read lists."""
    address_ids = list(range(4001, 4001 + draw(st.sampled_from([1] * 6 + [2, 2, 3, 0]))))
    methods = st.one_of(*[st.just(METHOD)] * 4, st.just("  free SHIPPING "), WORDS)
    addresses = [draw(address_record(a, methods)) for a in address_ids]
    line_ids = list(range(3001, 3001 + draw(st.sampled_from([1, 1, 2, 2, 3, 4, 5, 6, 0]))))
    products = [draw(product_record(line_id, address_ids, line_ids[:n]))
                for n, line_id in enumerate(line_ids)]
    order = draw(record(
        {"status_id": st.sampled_from([11] * 6 + [5, 7]), "date_created": DATE,
         "date_modified": DATE, "customer_message": TEXT, "currency_code": st.just("USD"),
         "billing_address": address_record(0, methods), "is_deleted": st.just(False)},
        {"status_id": st.one_of(st.sampled_from(["11", 0, 12]), NOT_TEXT),
         "date_created": BROKEN_DATE, "date_modified": BROKEN_DATE,
         "customer_message": BROKEN_TEXT, "currency_code": BROKEN_TEXT,
         "billing_address": NOT_TEXT, "is_deleted": st.just(True)}))
    order["id"] = next(ORDER_IDS)  # a new order each time (re-reads are tested explicitly)
    units = [p.get("quantity") for p in products if p.get("is_bundled_product") is not True]
    counted = sum(units) if all(type(u) is int for u in units) else None
    order["items_total"] = draw(st.one_of(*[st.just(counted)] * 4, st.integers(0, 20)))
    if draw(st.booleans()):  # embedded consignments, as DropStream asks for them
        def goes_to(item: dict[str, Any], kind: str) -> bool:
            return item.get("type") == kind
        shipping = [{**a, "line_items": [p for p in products
                                         if p.get("order_address_id") == a.get("id")
                                         and not goes_to(p, "digital")
                                         and not goes_to(p, "giftcertificate")]}
                    for a in addresses]
        placed = {id(p) for group in shipping for p in group["line_items"]}
        rest = [p for p in products if id(p) not in placed]
        order["consignments"] = {
            "pickups": [], "shipping": shipping,
            "downloads": [{"recipient_email": "a@b.test",
                           "line_items": [p for p in rest if not goes_to(p, "giftcertificate")]}],
            "email": {"gift_certificates": [{"recipient_email": "a@b.test", "line_items": [
                p for p in rest if goes_to(p, "giftcertificate")]}]},
        }
    else:
        order["consignments"] = {"url": "https://api.example.test/x", "resource": "/x"}
    return {"order": order, "products": products, "shipping_addresses": addresses}


ORDER_IDS = itertools.count(10_000)


# ------------------------------------------------------------------------------------------------


@settings(settings.get_profile(PROFILE),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(generated=bigcommerce_order())
def test_generated_orders_never_crash_the_reader_and_always_end_visible(
    app: Any, store: Store, generated: dict[str, Any]
) -> None:
    external_id = str(generated["order"]["id"])
    PAYLOADS[external_id] = generated
    store = db.session.get(Store, store.id)
    refresh_order(db.session, store, external_id)
    db.session.commit()

    order = _order(store, external_id)
    event(f"{order.status.value} "  # seen with --hypothesis-show-statistics
          f"{(order.hold_reason and order.hold_reason.value) or order.error_code or ''}"
          if order else "absent")
    if order is None:
        assert not _may_be_monitored(generated["order"]), "an order was dropped"
        return
    assert order.status in (OrderStatus.QUEUED, OrderStatus.ON_HOLD, OrderStatus.ERROR,
                            OrderStatus.SKIPPED), order.status
    _assert_visible(order)
    if order.status is OrderStatus.QUEUED:
        _assert_the_warehouse_takes_it(order, store)

    seen = (order.status, order.hold_detail, order.error_message, len(order.events))
    refresh_order(db.session, store, external_id)  # the same order read again
    db.session.commit()
    order = _order(store, external_id)
    assert (order.status, order.hold_detail, order.error_message, len(order.events)) == seen

    if order.hold_reason is HoldReason.UNMAPPED_SHIPPING_METHOD:
        with db.session.begin_nested() as savepoint:
            db.session.add(ShippingRule(
                provider_id=store.provider_id, merchant_id=store.merchant_id, store_id=store.id,
                store_method="", match_key="", warehouse_code="GRND", is_default=True))
            evaluate(db.session, order, store, automatic=True)
            assert order.hold_reason is not HoldReason.UNMAPPED_SHIPPING_METHOD
            savepoint.rollback()
        db.session.rollback()


@settings(settings.get_profile(PROFILE),
          max_examples=settings.get_profile(PROFILE).max_examples // 4,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(page=st.lists(bigcommerce_order(), min_size=1, max_size=3))
def test_generated_orders_on_a_sweep_page_never_stop_the_sweep(
    app: Any, store: Store, page: list[dict[str, Any]]
) -> None:
    PAGE[:] = [str(generated["order"]["id"]) for generated in page]
    PAYLOADS.update(zip(PAGE, page, strict=True))
    store = db.session.get(Store, store.id)
    channel = store.channel(Channel.ORDERS)
    channel.cursor = json.dumps({"since": "2000-01-01T00:00:00+00:00", "page": 1})
    db.session.commit()

    sync_orders(db.session, store, channel)  # the sweep's job: must not raise
    db.session.commit()

    for external_id, generated in zip(PAGE, page, strict=True):
        order = _order(store, external_id)
        if order is None:
            assert not _may_be_monitored(generated["order"]), "the sweep dropped an order"
            continue
        assert order.status in (OrderStatus.QUEUED, OrderStatus.ON_HOLD, OrderStatus.ERROR,
                                OrderStatus.SKIPPED), order.status
        _assert_visible(order)
    assert channel.cursor and json.loads(channel.cursor)["since"]


def _may_be_monitored(order: dict[str, Any]) -> bool:
    """Whether the order may be at the monitored status (an archived one is gone)."""
    if order.get("is_deleted") is True:
        return False
    try:
        return integer(order.get("status_id"), "status_id") == 11
    except MappingError:
        return True  # cannot be told: it must be kept, visible


def _order(store: Store, external_id: str) -> Order | None:
    db.session.expire_all()
    return db.session.scalar(select(Order).where(Order.store_id == store.id,
                                                 Order.external_id == external_id))


def _assert_visible(order: Order) -> None:
    if order.status is OrderStatus.ON_HOLD:
        assert order.hold_reason is not None and FIELD_PATH.match(order.hold_detail or ""), \
            (order.hold_reason, order.hold_detail)
    elif order.status is OrderStatus.ERROR:
        assert order.error_code and FIELD_PATH.match(order.error_message or ""), \
            (order.error_code, order.error_message)
    elif order.status is OrderStatus.SKIPPED:
        [skipped] = [e for e in order.events if e.kind == "skipped"]
        assert skipped.detail.get("code") in SKIP_CODES and skipped.detail.get("field") == "lines"


def _assert_the_warehouse_takes_it(order: Order, store: Store) -> None:
    consignments = _consignments(order)
    assert consignments, "a queued order has something to send"
    for address, lines in consignments:
        document = protocol.order_document(
            _warehouse_order(order, address, lines, store), "ACCOUNT")
        try:
            protocol.validate("order", document)
        except protocol.ProtocolError as error:
            # Only the warehouse's own ceiling per line is the warehouse's to judge.
            assert re.fullmatch(r"lines\[\d+\]\.quantity", error.field) and \
                "maximum" in error.reason, (error.field, error.reason)
