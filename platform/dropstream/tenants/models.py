"""Tenancy: Provider (a 3PL) → Merchant → (stores, orders, …); users and their API keys."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dropstream.db import ProviderOwned, StrEnum, Timestamped, UTCDateTime
from dropstream.extensions import db


class Role(str, enum.Enum):
    PROVIDER_ADMIN = "provider_admin"
    PROVIDER_STAFF = "provider_staff"
    MERCHANT_ADMIN = "merchant_admin"
    MERCHANT_VIEWER = "merchant_viewer"

    @property
    def is_provider(self) -> bool:
        return self in (Role.PROVIDER_ADMIN, Role.PROVIDER_STAFF)

    @property
    def can_write(self) -> bool:
        return self is not Role.MERCHANT_VIEWER


class Provider(Timestamped, db.Model):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)


class Merchant(ProviderOwned, Timestamped, db.Model):
    __tablename__ = "merchants"
    # A merchant is tenant-scoped by provider; for a merchant user its own row is the whole scope.
    __tenant_level__ = "merchant_root"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))


class User(ProviderOwned, Timestamped, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(StrEnum(Role, 32))
    # Set for merchant roles only: the one merchant this user may see.
    merchant_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    merchant: Mapped[Merchant | None] = relationship()


class ApiKey(ProviderOwned, Timestamped, db.Model):
    """A bearer key acting as its user. Only a hash and a public prefix are stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
