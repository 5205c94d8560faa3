"""Warehouse and store connections, and each store's channels (orders, shipments, inventory)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dropstream.db import JSONType, MerchantOwned, ProviderOwned, StrEnum, Timestamped, UTCDateTime
from dropstream.extensions import db


class HasCredentials:
    """A row holding an encrypted credentials blob; see :mod:`dropstream.security.secrets`."""

    credentials_ciphertext: Mapped[str | None] = mapped_column(Text)

    def secret_context(self) -> str:
        owner = getattr(self, "merchant_id", None) or getattr(self, "provider_id")
        return f"{type(self).__tablename__}:{getattr(self, 'provider_id')}:{owner}:{self.id}"  # type: ignore[attr-defined]

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_ciphertext)


class Warehouse(HasCredentials, ProviderOwned, Timestamped, db.Model):
    """A provider's connection to its WMS, shared by the stores linked to it."""

    __tablename__ = "warehouses"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    connector_id: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Why the WMS refused DropStream's credentials. While it is set no call is made with them
    #: (see ``stores.connections``): entering credentials again clears it.
    last_error: Mapped[str | None] = mapped_column(Text)

    @property
    def credentials_refused(self) -> bool:
        return self.last_error is not None


class StoreState(str, enum.Enum):
    SETTING_UP = "setting_up"
    ACTIVE = "active"
    PAUSED = "paused"
    DISCONNECTED = "disconnected"


#: A store in these states is worked for; a paused or disconnected store's work waits until
#: it is resumed (neither dispatched nor run).
WORKING_STATES = (StoreState.ACTIVE, StoreState.SETTING_UP)


class Channel(str, enum.Enum):
    ORDERS = "orders"
    SHIPMENTS = "shipments"
    INVENTORY = "inventory"


#: Default run interval per channel, in seconds (webhooks make orders faster than this).
DEFAULT_INTERVALS = {Channel.ORDERS: 300, Channel.SHIPMENTS: 300, Channel.INVENTORY: 3600}


class Store(HasCredentials, MerchantOwned, Timestamped, db.Model):
    __tablename__ = "stores"
    __table_args__ = (UniqueConstraint("connector_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    connector_id: Mapped[str] = mapped_column(String(64))
    #: The store's identity at its platform (BigCommerce: the store hash); unique per connector.
    external_id: Mapped[str | None] = mapped_column(String(200))
    warehouse_id: Mapped[int | None] = mapped_column(
        ForeignKey("warehouses.id", ondelete="SET NULL"), index=True
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: The store's account at its warehouse (validated by the warehouse's ``account_schema``).
    warehouse_account: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[StoreState] = mapped_column(
        StrEnum(StoreState, 20), default=StoreState.SETTING_UP
    )
    state_reason: Mapped[str | None] = mapped_column(Text)
    #: Units held back from every pushed quantity (oversell guard).
    safety_buffer: Mapped[int] = mapped_column(Integer, default=0)

    warehouse: Mapped[Warehouse | None] = relationship()
    channels: Mapped[list[StoreChannel]] = relationship(
        back_populates="store", cascade="all, delete-orphan", order_by="StoreChannel.channel"
    )

    def channel(self, channel: Channel) -> StoreChannel | None:
        return next((c for c in self.channels if c.channel is channel), None)


class StoreChannel(MerchantOwned, db.Model):
    """One flow of a store (orders in, shipments back, inventory back) with its switch,
    schedule and cursor. The cursor only moves after the work it covers is committed."""

    __tablename__ = "store_channels"
    __table_args__ = (UniqueConstraint("store_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, 20))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    cursor: Mapped[str | None] = mapped_column(Text)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Inventory: the last full reconciliation (a full sync also runs when this is old).
    last_full_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Consecutive failed runs; the next run is pushed back exponentially.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    #: Progress of the current (or last) run, for the console's progress bar. A backfill or a
    #: full sync spans several runs (each continues the last); ``progress_finished_at`` is set
    #: when no backlog remains. ``progress_total`` is None when the size is not known upfront.
    progress_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)

    store: Mapped[Store] = relationship(back_populates="channels")
