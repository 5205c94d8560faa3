"""The console's own tables: invitations, alert-digest preferences, and recorded set-up checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dropstream.db import JSONType, MerchantOwned, ProviderOwned, StrEnum, UTCDateTime, utcnow
from dropstream.extensions import db
from dropstream.tenants.models import Role


class Invitation(ProviderOwned, db.Model):
    """An e-mailed link that lets its holder create their user, once, before it expires.

    Only a SHA-256 hash of the link's token is stored (like API keys): the link itself exists
    only in the e-mail (or on the inviting admin's screen when no mail server is configured).
    """

    __tablename__ = "console_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(StrEnum(Role, 32))
    #: Set for merchant roles: the merchant the new user will belong to.
    merchant_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertDigestPreference(ProviderOwned, db.Model):
    """A user who asked for e-mailed alert digests (one row per user)."""

    __tablename__ = "console_alert_digests"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    #: Copied from the user so the digest job finds a merchant's subscribers without a join.
    merchant_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("merchants.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SetupResult(MerchantOwned, db.Model):
    """The last set-up checks run for a store (from the console), so the dashboard can show
    webhooks and permissions without calling the store on every page view."""

    __tablename__ = "console_setup_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), unique=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``[{"key", "title", "passed", "message", "fix", "details", "required"}, …]``
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
