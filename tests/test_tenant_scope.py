"""The tenant scope: the one path for tenant-scoped reads, and its backstop on every ORM query."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dropstream.errors import NotFound
from dropstream.extensions import db
from dropstream.orders.models import Order, OrderLine
from dropstream.stores.models import Store, Warehouse
from dropstream.tenants.models import Merchant, Role
from dropstream.tenants.scope import TenantScope, TenantViolation, activate, unscoped
from tests.factories import MerchantFactory, OrderFactory, StoreFactory
from tests.tenancy import make_tenant


@pytest.fixture
def two_tenants(app: object):  # type: ignore[no-untyped-def]
    a, b = make_tenant("alpha"), make_tenant("beta")
    for tenant in (a, b):
        OrderFactory(provider_id=tenant.provider.id, merchant_id=tenant.merchant.id, store_id=tenant.store.id)
    db.session.commit()
    return a, b


def test_get_outside_the_scope_is_indistinguishable_from_missing(two_tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = two_tenants
    scope = TenantScope.for_user(a.users[Role.PROVIDER_ADMIN])
    own = scope.get(db.session, Store, a.store.id)
    assert own.id == a.store.id
    for missing in (b.store.id, 999_999, "not-a-number", None):
        with pytest.raises(NotFound) as raised:
            scope.get(db.session, Store, missing)
        assert raised.value.message == "No such Store."


def test_the_backstop_fails_closed_on_queries_written_without_the_scope(two_tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = two_tenants
    merchant_admin = TenantScope.for_user(a.users[Role.MERCHANT_ADMIN])
    own_merchant, foreign_store = a.merchant.id, b.store.id
    # A request starts with an empty session; objects loaded before the scope was active would
    # be served from the identity map by session.get (which is why views use scope.get).
    db.session.expunge_all()
    activate(db.session, merchant_admin)
    try:
        own = db.session.scalars(select(Order).where(Order.merchant_id == own_merchant)).all()
        assert own and {o.merchant_id for o in own} == {own_merchant}
        assert {l.merchant_id for l in own[0].lines} == {own_merchant}  # relationship loads pass
        for careless in (select(Order), select(OrderLine), select(Merchant), select(Warehouse).where(Warehouse.id > 0)):
            if careless.column_descriptions[0]["entity"] is Warehouse:
                continue  # the provider's warehouses are visible to its merchant users
            with pytest.raises(TenantViolation):
                db.session.scalars(careless).all()
            db.session.rollback()
            activate(db.session, merchant_admin)
        with pytest.raises(TenantViolation):
            db.session.get(Store, foreign_store)
        db.session.rollback()
        with unscoped(db.session):  # system work (the relay) sees every tenant
            assert len(db.session.scalars(select(Store)).all()) == 2
    finally:
        activate(db.session, None)


def test_provider_staff_see_every_merchant_of_their_provider_only(two_tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = two_tenants
    sibling = MerchantFactory(provider_id=a.provider.id, name="sibling")
    StoreFactory(provider_id=a.provider.id, merchant_id=sibling.id)
    db.session.commit()
    staff = TenantScope.for_user(a.users[Role.PROVIDER_STAFF])
    merchant_user = TenantScope.for_user(a.users[Role.MERCHANT_VIEWER])
    assert {s.merchant_id for s in db.session.scalars(staff.select(Store))} == {a.merchant.id, sibling.id}
    assert {s.merchant_id for s in db.session.scalars(merchant_user.select(Store))} == {a.merchant.id}
    assert b.merchant.id not in {m.id for m in db.session.scalars(staff.select(Merchant))}


def test_a_scope_refuses_models_that_are_not_tenant_owned(app: object) -> None:
    from dropstream.tenants.models import Provider

    scope = TenantScope(provider_id=1)
    assert scope.select(Provider) is not None
    with pytest.raises(TypeError):
        scope.criteria(int)
