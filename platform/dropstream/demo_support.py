"""What plugins contribute to ``dropstream demo``, as plain types.

The core's demo orchestrates without importing any plugin: it asks, through the ``demo_*`` hooks,
for each plugin's sandbox to be started, for a warehouse and stores connected to those sandboxes,
and for orders to be placed in them. The catalogue below is the core's: it decides which
products exist (one without a SKU, one with inventory tracking off, a bundle) and which
shipping methods customers choose, so every connector's demo shows the same holds and flows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DemoProduct:
    #: ``None``: a product without a SKU (its orders are held with ``no_sku``).
    sku: str | None
    name: str
    price: str = "10.00"
    #: False: inventory tracking off in the store (pushed stock is skipped and reported).
    tracked: bool = True
    #: The warehouse's SKU when it differs (the demo seeds a listing for it).
    warehouse_sku: str | None = None
    #: ``{warehouse_sku: units}`` when this store product is a bundle of warehouse items.
    components: dict[str, int] = field(default_factory=dict)
    #: Units on hand at the warehouse (per warehouse SKU; bundles have none of their own).
    stock: int = 100


@dataclass(frozen=True)
class DemoCatalog:
    products: tuple[DemoProduct, ...]
    #: Shipping methods shoppers pick, with the warehouse code each maps to; ``None``: no rule
    #: (deliberately unmapped, so a hold shows until someone adds one).
    shipping_methods: dict[str, str | None]

    def warehouse_stock(self) -> dict[str, int]:
        stock: dict[str, int] = {}
        for product in self.products:
            if product.components:
                for sku in product.components:
                    stock.setdefault(sku, product.stock)
            elif product.sku:
                stock[product.warehouse_sku or product.sku] = product.stock
        return stock


@dataclass
class DemoService:
    name: str
    url: str
    stop: Callable[[], None]


@dataclass
class DemoContext:
    """Shared by the demo and the plugins' demo hooks for one run."""

    app: Any
    public_base_url: str
    rng: random.Random
    services: dict[str, DemoService] = field(default_factory=dict)

    def add_service(self, name: str, url: str, stop: Callable[[], None]) -> None:
        self.services[name] = DemoService(name, url, stop)
