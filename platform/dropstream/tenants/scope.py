"""The one tenant-scoped path for every query that serves a request or a job.

A :class:`TenantScope` says whose data may be read: a provider's (its staff see every merchant of
that provider) or one merchant's. Code that serves a request or a job loads rows only through
``scope.select(Model)`` / ``scope.get(Model, id)``; an object outside the scope is indistinguishable
from a missing one (404).

Activating a scope on the session (:func:`activate`) installs a backstop that *fails closed*:
every tenant-owned row the session loads is checked against the scope, and a row of another
tenant raises :class:`TenantViolation` instead of being returned — so a query written by hand,
without the scope, cannot leak across tenants; it breaks loudly. (An earlier version rewrote
every SELECT with ``with_loader_criteria``; that defeated SQLAlchemy's statement cache and cost
an order of magnitude in throughput.) PostgreSQL row-level security is the last line behind both.

``session.get`` can return an object this session loaded earlier without a query, so
tenant-scoped code always uses ``scope.get``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, event, select
from sqlalchemy.orm import Session, object_session
from sqlalchemy.sql.elements import ColumnElement

from dropstream.db import MerchantOwned, ProviderOwned
from dropstream.errors import NotFound
from dropstream.tenants.models import Merchant, Provider, Role

Model = TypeVar("Model")
SESSION_KEY = "dropstream.tenant_scope"
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class TenantScope:
    provider_id: int
    merchant_id: int | None = None
    role: Role | None = None
    actor: str = "system"

    @classmethod
    def for_user(cls, user: Any) -> TenantScope:
        merchant_id = None if user.role.is_provider else user.merchant_id
        if not user.role.is_provider and merchant_id is None:
            raise ValueError(f"merchant user {user.id} has no merchant")
        return cls(user.provider_id, merchant_id, user.role, f"user:{user.id}")

    @classmethod
    def for_merchant(cls, provider_id: int, merchant_id: int, actor: str = "job") -> TenantScope:
        return cls(provider_id, merchant_id, None, actor)

    @property
    def is_provider_wide(self) -> bool:
        return self.merchant_id is None

    def criteria(self, model: type) -> ColumnElement[bool]:
        """The WHERE clause limiting ``model`` to this scope."""
        if model is Provider:
            return Provider.id == self.provider_id
        if model is Merchant:
            clause = Merchant.provider_id == self.provider_id
            if self.merchant_id is not None:
                clause = clause & (Merchant.id == self.merchant_id)
            return clause
        if issubclass(model, MerchantOwned):
            clause = model.provider_id == self.provider_id
            if self.merchant_id is not None:
                clause = clause & (model.merchant_id == self.merchant_id)
            return clause
        if issubclass(model, ProviderOwned):
            return model.provider_id == self.provider_id
        raise TypeError(f"{model.__name__} is not tenant-owned; it cannot be read through a scope")

    def select(self, model: type[Model], *where: Any) -> Select[tuple[Model]]:
        return select(model).where(self.criteria(model), *where)

    def get(self, session: Session, model: type[Model], object_id: Any) -> Model:
        """Load one row by primary key, or raise :class:`NotFound` if it is missing *or foreign*."""
        try:
            object_id = int(object_id)
        except (TypeError, ValueError):
            raise NotFound(model.__name__) from None
        if not 0 < object_id <= MAX_ID:  # beyond PostgreSQL's integer: no such row, not a 500
            raise NotFound(model.__name__)
        row = session.scalars(self.select(model, model.id == object_id)).first()  # type: ignore[attr-defined]
        if row is None:
            raise NotFound(model.__name__)
        return row

    def owns(self, row: Any) -> bool:
        """Whether ``row`` (a tenant-owned instance) lies inside this scope."""
        if isinstance(row, Provider):
            return row.id == self.provider_id
        if row.provider_id != self.provider_id:
            return False
        if self.merchant_id is None:
            return True
        if isinstance(row, Merchant):
            return row.id == self.merchant_id
        if isinstance(row, MerchantOwned):
            return row.merchant_id == self.merchant_id
        return True  # provider-level rows (warehouses, users) are visible to the provider's users


def activate(session: Session, scope: TenantScope | None) -> None:
    """Bind ``scope`` to ``session`` (None removes it): for the load backstop, and for
    PostgreSQL row-level security from the next statement on, in the current transaction too
    (:func:`dropstream.tenants.rls.install`)."""
    if scope is None:
        session.info.pop(SESSION_KEY, None)
    else:
        session.info[SESSION_KEY] = scope


def current(session: Session) -> TenantScope | None:
    return session.info.get(SESSION_KEY)


@contextmanager
def unscoped(session: Session) -> Iterator[None]:
    """Run system work that must see every tenant (the outbox relay, API-key lookup)."""
    previous = current(session)
    activate(session, None)
    try:
        yield
    finally:
        activate(session, previous)


class TenantViolation(RuntimeError):
    """A row of another tenant was loaded while a scope was active: a query missed the scope."""


def _check_loaded(target: Any, context: Any) -> None:
    session = object_session(target)
    scope = session.info.get(SESSION_KEY) if session is not None else None
    if scope is None or not isinstance(target, (ProviderOwned, Provider)):
        return
    if not scope.owns(target):
        raise TenantViolation(
            f"{type(target).__name__} {getattr(target, 'id', '?')} is outside the active tenant "
            f"scope ({scope.actor}); load tenant rows through TenantScope.select/get"
        )


def install_backstop(model_base: Any) -> None:
    """Check every loaded instance of ``model_base``'s subclasses; idempotent."""
    for name in ("load", "refresh"):
        if not event.contains(model_base, name, _check_loaded):
            event.listen(model_base, name, _check_loaded if name == "load" else _check_refreshed, propagate=True)


def _check_refreshed(target: Any, context: Any, attrs: Any) -> None:
    _check_loaded(target, context)


__all__ = ["TenantScope", "TenantViolation", "activate", "current", "unscoped", "install_backstop"]
