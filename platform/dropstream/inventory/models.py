"""Stock as the warehouse reports it, and the per-store items computed and pushed from it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dropstream.db import MerchantOwned, StrEnum, UTCDateTime, utcnow
from dropstream.extensions import db


class StockLevel(MerchantOwned, db.Model):
    """A merchant's on-hand quantity of one warehouse SKU. Last writer wins by the warehouse's
    own timestamp (``source_updated_at``), never by arrival order."""

    __tablename__ = "stock_levels"
    __table_args__ = (UniqueConstraint("warehouse_id", "merchant_id", "warehouse_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="CASCADE"))
    warehouse_sku: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ItemState(str, enum.Enum):
    PENDING = "pending"
    PUSHED = "pushed"
    SKIPPED = "skipped"
    FAILED = "failed"


class InventoryItem(MerchantOwned, db.Model):
    """One store SKU's available quantity: last computed, last pushed, and the outcome."""

    __tablename__ = "inventory_items"
    __table_args__ = (UniqueConstraint("store_id", "store_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    store_sku: Mapped[str] = mapped_column(String(255))
    available: Mapped[int] = mapped_column(Integer, default=0)
    pushed_quantity: Mapped[int | None] = mapped_column(Integer)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[ItemState] = mapped_column(
        StrEnum(ItemState, 20), default=ItemState.PENDING
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
