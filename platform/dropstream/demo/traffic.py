"""Shoppers for the demo: a thread placing orders in the stores' sandboxes at a steady rate."""

from __future__ import annotations

import logging
import threading

from flask import Flask

from dropstream.demo.catalog import CAP, ENGRAVING, GIFT_BOX, MUG, TEE, UNMAPPED_METHOD
from dropstream.demo_support import DemoContext, DemoProduct
from dropstream.extensions import db
from dropstream.state import get_state
from dropstream.stores.models import Store

log = logging.getLogger(__name__)
EVERYDAY = (TEE, MUG, CAP, GIFT_BOX)


class Shoppers:
    def __init__(self, app: Flask, demo: DemoContext, store_ids: list[int], per_minute: float) -> None:
        self.app = app
        self.demo = demo
        self.store_ids = store_ids
        self.interval = 60.0 / per_minute
        self.placed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dropstream-demo-shoppers", daemon=True)

    def start(self) -> Shoppers:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def basket(self) -> tuple[list[tuple[DemoProduct, int]], str]:
        """Mostly ordinary orders; now and then one that shows a hold."""
        rng = self.demo.rng
        lines = [(product, rng.choice((1, 1, 2))) for product in rng.sample(EVERYDAY, rng.choice((1, 1, 2)))]
        method = rng.choice(("Free Shipping", "Free Shipping", "Express Delivery"))
        roll = rng.random()
        if roll < 0.06:
            lines.append((ENGRAVING, 1))
        elif roll < 0.12:
            method = UNMAPPED_METHOD
        return lines, method

    def place_one(self) -> str | None:
        store_id = self.store_ids[self.placed % len(self.store_ids)]
        lines, method = self.basket()
        with self.app.app_context():
            store = db.session.get(Store, store_id)
            order_id = get_state().plugin_manager.hook.demo_place_order(
                demo=self.demo, store=store, lines=lines, shipping_method=method)
            db.session.remove()
        self.placed += 1
        return order_id

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.place_one()
            except Exception:  # noqa: BLE001 - a failed demo order must not stop the demo
                log.exception("the demo could not place an order")
            self._stop.wait(self.interval)
