"""Listings (store SKU → warehouse SKU or a bundle of components) and shipping rules."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dropstream.db import MerchantOwned, Timestamped
from dropstream.extensions import db


class Listing(MerchantOwned, Timestamped, db.Model):
    """How a store SKU is known at the warehouse.

    Either ``warehouse_sku`` (a different SKU for the same item) or ``components`` (a bundle:
    one store unit ships as the listed quantities of each component). A store SKU with no
    listing passes through unchanged.
    """

    __tablename__ = "listings"
    __table_args__ = (UniqueConstraint("store_id", "store_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    store_sku: Mapped[str] = mapped_column(String(255))
    warehouse_sku: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")

    components: Mapped[list[ListingComponent]] = relationship(
        back_populates="listing", cascade="all, delete-orphan", order_by="ListingComponent.id"
    )

    @property
    def is_bundle(self) -> bool:
        return bool(self.components)

    def expand(self) -> list[tuple[str, int]]:
        """``[(warehouse_sku, units per store unit), …]``."""
        return ships_as(self.store_sku, self.warehouse_sku,
                        [(c.warehouse_sku, c.quantity) for c in self.components])


def ships_as(store_sku: str, warehouse_sku: str | None,
             components: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """What one store unit of a listing ships as, ``[(warehouse_sku, units), …]``: a bundle's
    components, else its warehouse SKU (the store SKU when it names none), one for one."""
    return components or [(warehouse_sku or store_sku, 1)]


class ListingComponent(MerchantOwned, db.Model):
    __tablename__ = "listing_components"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"), index=True)
    warehouse_sku: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)

    listing: Mapped[Listing] = relationship(back_populates="components")


def shipping_match_key(method: str) -> str:
    """Shipping methods match exactly, ignoring case and surrounding/double spaces."""
    return " ".join(method.split()).casefold()


class ShippingRule(MerchantOwned, Timestamped, db.Model):
    """A store shipping method → a warehouse ship code. The store's default rule (at most one)
    has ``is_default`` set and an empty method: it applies when no other rule matches."""

    __tablename__ = "shipping_rules"
    __table_args__ = (UniqueConstraint("store_id", "match_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    store_method: Mapped[str] = mapped_column(String(255))
    match_key: Mapped[str] = mapped_column(String(255))
    warehouse_code: Mapped[str] = mapped_column(String(120))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
