"""factory-boy factories bound to the app's scoped session (rows are flushed, not committed;
tests commit when the code under test needs committed data)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory

from dropstream.catalog.models import Listing, ListingComponent, ShippingRule, shipping_match_key
from dropstream.connectors.types import LineKind
from dropstream.extensions import db
from dropstream.orders.models import Order, OrderAddress, OrderLine
from dropstream.orders.statuses import OrderStatus
from dropstream.stores.models import DEFAULT_INTERVALS, Channel, Store, StoreChannel, StoreState, Warehouse
from dropstream.tenants.models import Merchant, Provider, Role, User

PASSWORD = "correct horse battery staple"


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class ProviderFactory(Base):
    class Meta:
        model = Provider

    name = factory.Sequence(lambda n: f"Provider {n}")
    slug = factory.Sequence(lambda n: f"provider-{n}")


class MerchantFactory(Base):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")


class UserFactory(Base):
    class Meta:
        model = User
        exclude = ("password",)

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    name = factory.Sequence(lambda n: f"User {n}")
    role = Role.PROVIDER_ADMIN
    password = PASSWORD
    password_hash = factory.LazyAttribute(lambda o: _hash(o.password))
    is_active = True


def _hash(password: str) -> str:
    from werkzeug.security import generate_password_hash

    # A cheap method: tests hash many passwords; production uses the default (scrypt).
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


class WarehouseFactory(Base):
    class Meta:
        model = Warehouse

    name = factory.Sequence(lambda n: f"Warehouse {n}")
    connector_id = "reference-wms"
    settings = factory.LazyFunction(lambda: {"sandbox": "default"})


class StoreFactory(Base):
    class Meta:
        model = Store

    name = factory.Sequence(lambda n: f"Store {n}")
    connector_id = "reference-store"
    external_id = factory.Sequence(lambda n: f"store-{n}")
    settings = factory.LazyFunction(lambda: {"sandbox": "default"})
    state = StoreState.ACTIVE

    @factory.post_generation
    def with_channels(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]  # noqa: N805
        if extracted is False:
            return
        for channel in Channel:
            obj.channels.append(StoreChannel(
                provider_id=obj.provider_id, merchant_id=obj.merchant_id, channel=channel,
                interval_seconds=DEFAULT_INTERVALS[channel],
            ))
        db.session.flush()


class ListingFactory(Base):
    class Meta:
        model = Listing

    store_sku = factory.Sequence(lambda n: f"STORE-SKU-{n}")
    warehouse_sku = factory.Sequence(lambda n: f"WH-SKU-{n}")


class ListingComponentFactory(Base):
    class Meta:
        model = ListingComponent

    warehouse_sku = factory.Sequence(lambda n: f"COMP-{n}")
    quantity = 1


class ShippingRuleFactory(Base):
    class Meta:
        model = ShippingRule

    store_method = factory.Sequence(lambda n: f"Method {n}")
    match_key = factory.LazyAttribute(lambda o: shipping_match_key(o.store_method))
    warehouse_code = factory.Sequence(lambda n: f"CODE{n}")
    is_default = False


class OrderFactory(Base):
    """An order row as the importer would leave it (for API tests that need data, not flow)."""

    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: str(1000 + n))
    number = factory.LazyAttribute(lambda o: o.external_id)
    status = OrderStatus.QUEUED
    placed_at = factory.LazyFunction(lambda: datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    store_updated_at = factory.LazyFunction(lambda: datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    customer_email = "customer@example.test"

    @factory.post_generation
    def with_line(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]  # noqa: N805
        if extracted is False:
            return
        address = OrderAddress(provider_id=obj.provider_id, merchant_id=obj.merchant_id,
                               role="shipping", external_id="1", name="Ada Lovelace",
                               street1="1 Main St", city="Springfield", postal_code="12345",
                               country_code="US", shipping_method="Ground")
        obj.addresses.append(address)
        db.session.flush()
        obj.lines.append(OrderLine(provider_id=obj.provider_id, merchant_id=obj.merchant_id,
                                   address_id=address.id, external_id="1", sku="SKU-1",
                                   name="Widget", quantity=1, unit_price=Decimal("9.99"),
                                   kind=LineKind.PHYSICAL))
        db.session.flush()
