"""An alert groups repeated occurrences of one problem (``group_key``) for one merchant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropstream.db import MerchantOwned, UTCDateTime, utcnow
from dropstream.extensions import db


class Alert(MerchantOwned, db.Model):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("merchant_id", "group_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16), default="error")
    message: Mapped[str] = mapped_column(Text)
    #: e.g. ``store:3:hold:unknown_sku``; one open alert per key, re-opened on recurrence.
    group_key: Mapped[str] = mapped_column(String(200))
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def warehouse_id(self) -> int | None:
        """The warehouse the alert is about (``warehouse:<id>:…`` keys), for a link to it."""
        kind, _, rest = self.group_key.partition(":")
        number = rest.partition(":")[0]
        return int(number) if kind == "warehouse" and number.isdigit() else None
