"""Column types and mixins shared by every domain's models."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON, DateTime, Enum, ForeignKey, Insert, Integer, TypeDecorator, inspect, text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column
from sqlalchemy.orm.interfaces import ORMOption

#: JSON everywhere, JSONB on PostgreSQL (indexable, and it refuses NUL bytes, which we strip first).
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def load(session: Session, model: type[Any], ident: Any, options: tuple[ORMOption, ...]) -> Any:
    """``session.get(model, ident, options=options)``, the options applied also to a row the
    session holds expired (a commit earlier in the job expired it): ``get`` alone refreshes
    such a row with a bare SELECT of its own columns, and what the options would have loaded
    with it then costs a statement each. A row held and not expired is used as it is."""
    held = session.identity_map.get(session.identity_key(model, ident))
    return session.get(model, ident, options=options,
                       populate_existing=held is not None and inspect(held).expired)


def insert_unless_conflict(session: Session, model: type, index: tuple[str, ...],
                           index_where: str | None = None) -> Insert:
    """``INSERT … ON CONFLICT (index) DO NOTHING RETURNING id`` into ``model``, for the session's
    database; execute it with the row's values as parameters (the id is None on a conflict).

    Built once per statement and database: the hot paths (every webhook, every piece of work)
    would otherwise pay for building the statement and its cache key on each call, which cost
    more CPU than running it. ``index_where`` names a partial index by its literal predicate.
    """
    return _insert_unless_conflict(session.get_bind().dialect.name, model, index, index_where)


@cache
def _insert_unless_conflict(dialect: str, model: type, index: tuple[str, ...], index_where: str | None) -> Insert:
    # On the table, not the mapped class: an ORM insert takes its bulk path, several times the
    # CPU of this one row.
    table = model.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    where = text(index_where) if index_where else None
    return insert(table).on_conflict_do_nothing(
        index_elements=[table.c[column] for column in index], index_where=where
    ).returning(table.c.id)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ProviderOwned:
    """A row that belongs to one fulfillment provider (and is visible to all its staff)."""

    __tenant_level__ = "provider"

    @declared_attr
    def provider_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(Integer, ForeignKey("providers.id", ondelete="CASCADE"), index=True)


class MerchantOwned(ProviderOwned):
    """A row that belongs to one merchant of one provider.

    Both ids are stored: the provider id lets a provider-wide query (and PostgreSQL row-level
    security) filter without a join; the merchant id is what a merchant user is limited to.
    """

    __tenant_level__ = "merchant"

    @declared_attr
    def merchant_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(Integer, ForeignKey("merchants.id", ondelete="CASCADE"), index=True)


def StrEnum(enum_class: type, length: int = 32) -> Enum:  # noqa: N802 - reads as a column type
    """An enum column storing the members' *values* (``"pending"``), as VARCHAR on every backend,
    so raw SQL, partial-index predicates and row-level-security policies read naturally."""
    return Enum(enum_class, native_enum=False, length=length, validate_strings=True,
                values_callable=lambda members: [member.value for member in members])
