"""A warehouse shipment, recorded once (unique per warehouse shipment id) and posted once."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dropstream.db import JSONType, MerchantOwned, StrEnum, Timestamped, UTCDateTime
from dropstream.extensions import db


class ShipmentState(str, enum.Enum):
    PENDING = "pending"          # recorded, waiting to be posted to the store
    POSTED = "posted"            # the store has it
    FAILED = "failed"            # the store refused it; the message says why
    UNMATCHED = "unmatched"      # no known order/lines for it; raised as an alert


class Shipment(MerchantOwned, Timestamped, db.Model):
    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("warehouse_id", "warehouse_shipment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="CASCADE"))
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("order_addresses.id", ondelete="SET NULL"))
    warehouse_shipment_id: Mapped[str] = mapped_column(String(120))
    order_reference: Mapped[str] = mapped_column(String(120))
    carrier: Mapped[str] = mapped_column(String(120), default="")
    service: Mapped[str] = mapped_column(String(120), default="")
    tracking_number: Mapped[str] = mapped_column(String(120), default="")
    tracking_url: Mapped[str] = mapped_column(String(500), default="")
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: ``[{"line_reference": "12", "sku": "ABC", "quantity": 2}, …]`` as the warehouse reported.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    state: Mapped[ShipmentState] = mapped_column(
        StrEnum(ShipmentState, 20), default=ShipmentState.PENDING
    )
    store_shipment_id: Mapped[str | None] = mapped_column(String(120))
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)

    order = relationship("Order")
    #: The consignment it ships, read through only: ``address_id`` is what is written.
    address = relationship("OrderAddress", viewonly=True)
