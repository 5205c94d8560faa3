"""A complete tenant for tests: provider, its users, a merchant with its users, a warehouse,
a store on the reference connectors, and an API key per user."""

from __future__ import annotations

from dataclasses import dataclass, field

from dropstream.extensions import db
from dropstream.stores.models import Store, Warehouse
from dropstream.tenants.models import Merchant, Provider, Role, User
from dropstream.tenants.services import issue_api_key
from tests.factories import (
    PASSWORD,
    MerchantFactory,
    ProviderFactory,
    StoreFactory,
    UserFactory,
    WarehouseFactory,
)


@dataclass
class Tenant:
    provider: Provider
    merchant: Merchant
    warehouse: Warehouse
    store: Store
    users: dict[Role, User]
    keys: dict[Role, str] = field(default_factory=dict)
    password: str = PASSWORD

    def headers(self, role: Role = Role.PROVIDER_ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def make_tenant(name: str = "acme", sandbox: str = "default") -> Tenant:
    provider = ProviderFactory(name=f"{name} 3PL", slug=f"{name}-3pl")
    merchant = MerchantFactory(provider_id=provider.id, name=f"{name} goods")
    warehouse = WarehouseFactory(provider_id=provider.id, settings={"sandbox": sandbox})
    store = StoreFactory(provider_id=provider.id, merchant_id=merchant.id, warehouse_id=warehouse.id,
                         settings={"sandbox": sandbox}, external_id=f"{name}-store")
    users = {
        role: UserFactory(provider_id=provider.id, email=f"{role.value}@{name}.test", role=role,
                          merchant_id=None if role.is_provider else merchant.id)
        for role in Role
    }
    tenant = Tenant(provider, merchant, warehouse, store, users)
    for role, user in users.items():
        _key, tenant.keys[role] = issue_api_key(db.session, user, f"{role.value} key")
    db.session.commit()
    return tenant
