"""Orders as imported from a store, their lines, addresses, warehouse lines and timeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dropstream.connectors.types import LineKind
from dropstream.db import JSONType, MerchantOwned, StrEnum, Timestamped, UTCDateTime, utcnow
from dropstream.extensions import db
from dropstream.orders.statuses import HoldReason, OrderStatus


class Order(MerchantOwned, Timestamped, db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_orders_provider_status", "provider_id", "status"),
        Index("ix_orders_merchant_status", "merchant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(100))
    number: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[OrderStatus] = mapped_column(StrEnum(OrderStatus, 32))
    hold_reason: Mapped[HoldReason | None] = mapped_column(StrEnum(HoldReason, 40))
    #: What is wrong and how to fix it, naming the field (``lines[2].sku``).
    hold_detail: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    store_status_code: Mapped[str] = mapped_column(String(40), default="")
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    store_updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    customer_email: Mapped[str] = mapped_column(String(320), default="")
    currency: Mapped[str] = mapped_column(String(8), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    #: Transient forward failures so far (reset on success or Reprocess).
    forward_attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    #: The store's copy as last read, kept for whoever investigates the order. Nothing in the
    #: flows reads it, so loading an order leaves it out (JSON to fetch and decode on each of
    #: the several loads on an order's way through the loop); reading it loads it then.
    source_payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, deferred=True)

    addresses: Mapped[list[OrderAddress]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderAddress.id"
    )
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )
    warehouse_lines: Mapped[list[WarehouseLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="WarehouseLine.id"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderEvent.id"
    )

    @property
    def billing_address(self) -> OrderAddress | None:
        return next((a for a in self.addresses if a.role == "billing"), None)

    @property
    def shipping_addresses(self) -> list[OrderAddress]:
        return [a for a in self.addresses if a.role == "shipping"]


class OrderAddress(MerchantOwned, db.Model):
    """A billing or shipping address. A shipping address is also a *consignment*: the lines
    going there, the shipping method chosen for it, and the warehouse order made for it."""

    __tablename__ = "order_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # "billing" | "shipping"
    external_id: Mapped[str] = mapped_column(String(100), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    company: Mapped[str] = mapped_column(String(255), default="")
    street1: Mapped[str] = mapped_column(String(255), default="")
    street2: Mapped[str] = mapped_column(String(255), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    state: Mapped[str] = mapped_column(String(120), default="")
    postal_code: Mapped[str] = mapped_column(String(40), default="")
    country_code: Mapped[str] = mapped_column(String(2), default="")
    phone: Mapped[str] = mapped_column(String(60), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    shipping_method: Mapped[str] = mapped_column(String(255), default="")
    ship_code: Mapped[str | None] = mapped_column(String(120))
    #: DropStream's stable reference for the warehouse order of this consignment.
    warehouse_ref: Mapped[str | None] = mapped_column(String(120), unique=True)
    warehouse_order_id: Mapped[str | None] = mapped_column(String(120))
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    order: Mapped[Order] = relationship(back_populates="addresses")


class OrderLine(MerchantOwned, db.Model):
    """A line as the store sent it."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("order_addresses.id", ondelete="SET NULL"))
    external_id: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str | None] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_shipped: Mapped[int] = mapped_column(Integer, default=0)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal("0"))
    kind: Mapped[LineKind] = mapped_column(StrEnum(LineKind, 20))
    options: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    parent_external_id: Mapped[str | None] = mapped_column(String(100))

    order: Mapped[Order] = relationship(back_populates="lines")
    address: Mapped[OrderAddress | None] = relationship()

    @property
    def ships(self) -> bool:
        """Physical and not a store-side bundle parent (its components ship instead)."""
        return self.kind.ships


class WarehouseLine(MerchantOwned, db.Model):
    """A line as sent to the warehouse: a store line mapped through listings (a bundle line
    becomes one warehouse line per component)."""

    __tablename__ = "warehouse_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    address_id: Mapped[int] = mapped_column(ForeignKey("order_addresses.id", ondelete="CASCADE"))
    warehouse_sku: Mapped[str] = mapped_column(String(255), index=True)
    #: Units of this component per unit of the store line (1 unless a bundle).
    per_unit: Mapped[int] = mapped_column(Integer, default=1)
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_shipped: Mapped[int] = mapped_column(Integer, default=0)

    order: Mapped[Order] = relationship(back_populates="warehouse_lines")
    order_line: Mapped[OrderLine] = relationship()
    address: Mapped[OrderAddress] = relationship()

    @property
    def reference(self) -> str:
        return str(self.id)


class OrderEvent(MerchantOwned, db.Model):
    """One step on an order's timeline: what happened, and the remote system's words if any."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    order: Mapped[Order] = relationship(back_populates="events")
