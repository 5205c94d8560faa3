"""SKU → how BigCommerce wants its stock written: the catalog index behind ``push_inventory``.

BigCommerce identifies an inventory item by its tracking mode: a product tracked by variant by
``variant_id`` (or SKU), a product tracked by product by ``product_id``; a product with tracking
off cannot take stock at all. That needs the catalog, which is too big to read on every push.

The index is a **cache with a time limit**, not a table: it is a copy of data BigCommerce owns,
re-readable at any time, so it belongs in Redis (shared by every worker) or in this process,
never in PostgreSQL with the orders. It is kept fresh without re-reading the catalog: it is
trusted for :data:`LOOK_EVERY`; after that a push first asks only for the products modified
since the last look (``date_modified:min``); the whole catalog is read again only when the index
is missing or older than :data:`FULL_EVERY` (which also drops deleted products). So a product
added, or its tracking switched on, is seen within :data:`LOOK_EVERY`. An entry BigCommerce
refuses on a push is dropped at once (a tracking mode changed, a product deleted).

(Looking before every push would not be cheaper: a stock write modifies the product, so each
look would re-read every product pushed since the last one.)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis.exceptions import RedisError

from dropstream.connectors.base import TransientError

log = logging.getLogger(__name__)
#: The whole catalog is read again this often (deleted products leave the index then).
FULL_EVERY = timedelta(hours=24)
#: The index is trusted this long after a look; then products modified since are read.
LOOK_EVERY = timedelta(minutes=15)
#: Products modified this long before the last look are read again (clock skew, slow commits).
OVERLAP = timedelta(minutes=5)
KEY = "dropstream:bigcommerce:catalog:{store_hash}"
META = "dropstream:bigcommerce:catalog-meta:{store_hash}"
TRACKING = ("none", "product", "variant")


@dataclass(frozen=True)
class Item:
    """Where a SKU's stock goes: ``tracking`` is none/product/variant."""

    product_id: int
    variant_id: int | None
    tracking: str

    def identity(self) -> dict[str, int]:
        if self.tracking == "variant" and self.variant_id is not None:
            return {"variant_id": self.variant_id}
        return {"product_id": self.product_id}


@dataclass(frozen=True)
class Meta:
    full_at: float  # epoch seconds of the last full read
    seen_at: float  # epoch seconds of the last incremental look


class CatalogStore(Protocol):
    def meta(self, store_hash: str) -> Meta | None: ...
    def get(self, store_hash: str, skus: Iterable[str]) -> dict[str, Item]: ...
    def replace(self, store_hash: str, items: dict[str, Item], meta: Meta) -> None: ...
    def update(self, store_hash: str, items: dict[str, Item], meta: Meta) -> None: ...
    def forget(self, store_hash: str, skus: Iterable[str]) -> None: ...


def items_of_product(product: dict[str, Any]) -> dict[str, Item]:
    """Every SKU of a v3 product (read with ``include=variants``) and where its stock goes."""
    tracking = product.get("inventory_tracking")
    product_id = product.get("id")
    if tracking not in TRACKING or not isinstance(product_id, int):
        return {}
    found: dict[str, Item] = {}
    for variant in product.get("variants") or []:
        sku = (variant.get("sku") or "").strip() if isinstance(variant, dict) else ""
        if sku and isinstance(variant.get("id"), int):
            found[sku] = Item(product_id, variant["id"], tracking)
    sku = (product.get("sku") or "").strip()
    if sku and sku not in found:
        found[sku] = Item(product_id, product.get("base_variant_id"), tracking)
    return found


def _encode(item: Item) -> str:
    return json.dumps([item.product_id, item.variant_id, item.tracking])


def _decode(raw: Any) -> Item | None:
    try:
        product_id, variant_id, tracking = json.loads(raw)
        return Item(int(product_id), variant_id, str(tracking))
    except (ValueError, TypeError):
        return None


class LocalCatalogStore:
    def __init__(self) -> None:
        self._items: dict[str, dict[str, Item]] = {}
        self._meta: dict[str, Meta] = {}
        self._lock = threading.Lock()

    def meta(self, store_hash: str) -> Meta | None:
        return self._meta.get(store_hash)

    def get(self, store_hash: str, skus: Iterable[str]) -> dict[str, Item]:
        known = self._items.get(store_hash, {})
        return {sku: known[sku] for sku in skus if sku in known}

    def replace(self, store_hash: str, items: dict[str, Item], meta: Meta) -> None:
        with self._lock:
            self._items[store_hash] = dict(items)
            self._meta[store_hash] = meta

    def update(self, store_hash: str, items: dict[str, Item], meta: Meta) -> None:
        with self._lock:
            self._items.setdefault(store_hash, {}).update(items)
            self._meta[store_hash] = meta

    def forget(self, store_hash: str, skus: Iterable[str]) -> None:
        with self._lock:
            for sku in skus:
                self._items.get(store_hash, {}).pop(sku, None)


class RedisCatalogStore:
    """One Redis hash per store (SKU → entry) and a small meta key; both expire after
    :data:`FULL_EVERY` so an abandoned store's index goes away by itself."""

    def __init__(self, connection: Any) -> None:
        self._redis = connection

    def meta(self, store_hash: str) -> Meta | None:
        raw = self._redis.get(META.format(store_hash=store_hash))
        try:
            full_at, seen_at = json.loads(raw) if raw else (None, None)
            return Meta(float(full_at), float(seen_at)) if full_at is not None else None
        except (ValueError, TypeError):
            return None

    def get(self, store_hash: str, skus: Iterable[str]) -> dict[str, Item]:
        skus = list(skus)
        if not skus:
            return {}
        values = self._redis.hmget(KEY.format(store_hash=store_hash), skus)
        found = {}
        for sku, raw in zip(skus, values, strict=True):
            item = _decode(raw) if raw is not None else None
            if item is not None:
                found[sku] = item
        return found

    def _write(self, store_hash: str, items: dict[str, Item], meta: Meta, replace: bool) -> None:
        key, meta_key = KEY.format(store_hash=store_hash), META.format(store_hash=store_hash)
        ttl = int(FULL_EVERY.total_seconds()) + 3600
        pipe = self._redis.pipeline()  # MULTI/EXEC: readers never see half an index
        if replace:
            pipe.delete(key)
        encoded = {sku: _encode(item) for sku, item in items.items()}
        for start in range(0, len(encoded), 1000):
            chunk = dict(list(encoded.items())[start : start + 1000])
            pipe.hset(key, mapping=chunk)
        pipe.expire(key, ttl)
        pipe.set(meta_key, json.dumps([meta.full_at, meta.seen_at]), ex=ttl)
        pipe.execute()

    def replace(self, store_hash: str, items: dict[str, Item], meta: Meta) -> None:
        self._write(store_hash, items, meta, replace=True)

    def update(self, store_hash: str, items: dict[str, Item], meta: Meta) -> None:
        self._write(store_hash, items, meta, replace=False)

    def forget(self, store_hash: str, skus: Iterable[str]) -> None:
        skus = list(skus)
        if skus:
            self._redis.hdel(KEY.format(store_hash=store_hash), *skus)


class CatalogIndex:
    """The index of one store, refreshed through ``client`` before it answers."""

    def __init__(self, store: CatalogStore, client: Any, clock: Any = time.time) -> None:
        self._store = store
        self._client = client
        self._hash = client.store_hash
        self._clock = clock

    def lookup(self, skus: Iterable[str]) -> dict[str, Item]:
        try:
            self.refresh()
            return self._store.get(self._hash, skus)
        except RedisError as error:
            # Never guess: without the index every SKU would look unknown. Try again later.
            raise TransientError(
                f"The catalog index is unavailable ({type(error).__name__}); "
                "stock is pushed when it is back.",
                retry_after=30,
            ) from None

    def forget(self, skus: Iterable[str]) -> None:
        try:
            self._store.forget(self._hash, skus)
        except RedisError:
            log.warning(
                "BigCommerce store %s: could not drop refused SKUs from the index", self._hash
            )

    def refresh(self) -> None:
        now = self._clock()
        meta = self._store.meta(self._hash)
        if meta is None or now - meta.full_at > FULL_EVERY.total_seconds():
            items = self._read({})
            self._store.replace(self._hash, items, Meta(now, now))
            log.info(
                "BigCommerce store %s: catalog index rebuilt (%d SKUs)", self._hash, len(items)
            )
            return
        if now - meta.seen_at < LOOK_EVERY.total_seconds():
            return
        since = datetime.fromtimestamp(meta.seen_at, UTC) - OVERLAP
        changed = self._read({"date_modified:min": since.strftime("%Y-%m-%dT%H:%M:%SZ")})
        self._store.update(self._hash, changed, Meta(meta.full_at, now))

    def _read(self, params: dict[str, Any]) -> dict[str, Item]:
        items: dict[str, Item] = {}
        query = {
            **params,
            "include": "variants",
            "include_fields": "id,sku,inventory_tracking,base_variant_id",
        }
        for page in self._client.v3_pages("/v3/catalog/products", query):
            for product in page:
                if isinstance(product, dict):
                    items.update(items_of_product(product))
        return items
