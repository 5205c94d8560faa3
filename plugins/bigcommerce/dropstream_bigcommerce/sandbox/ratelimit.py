"""The per-store request quota (docs: api-rate-limits.mdx, bigcommerce.md §5.1).

Each store has fixed, back-to-back windows (30 s) and a quota by plan (150 standard/plus, 450 pro, none for
"unlimited") shared by every client of the store. Every answer carries the four
``X-Rate-Limit-*`` headers; past the quota the answer is 429 with ``X-Retry-After`` (seconds)
until the window ends. Header names go out in lower case, as BigCommerce may send them, so a
client that reads them case-sensitively fails here first. The unlimited plan sends none.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .state import Store


@dataclass
class Window:
    start: float
    used: int = 0
    attempts: int = 0


class RateLimiter:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._windows: dict[str, Window] = {}
        #: store hash → the most requests (allowed or refused) seen in one window.
        self.max_attempts: dict[str, int] = {}

    def consume(self, store: Store, now: float) -> tuple[bool, dict[str, str]]:
        """Count one request of ``store``: (allowed?, headers to send)."""
        if not self.enabled or store.quota is None:
            return True, {}
        length = store.window_ms / 1000
        with self._lock:
            window = self._windows.get(store.hash)
            if window is None:
                window = self._windows[store.hash] = Window(start=now)
            elif now >= window.start + length:
                # Windows follow each other back to back from the store's first request (the
                # quota "refreshes every 30 s"), so a client can predict every later reset
                # from one X-Rate-Limit-Time-Reset-Ms, idle gaps included.
                elapsed = (now - window.start) // length * length
                window = self._windows[store.hash] = Window(start=window.start + elapsed)
            window.attempts += 1
            self.max_attempts[store.hash] = max(self.max_attempts.get(store.hash, 0),
                                                window.attempts)
            reset_ms = max(0, math.ceil((window.start + length - now) * 1000))
            allowed = window.used < store.quota
            if allowed:
                window.used += 1
            headers = {
                "x-rate-limit-time-window-ms": str(store.window_ms),
                "x-rate-limit-time-reset-ms": str(reset_ms),
                "x-rate-limit-requests-quota": str(store.quota),
                "x-rate-limit-requests-left": str(store.quota - window.used),
            }
        if not allowed:
            headers["x-retry-after"] = str(max(1, math.ceil(reset_ms / 1000)))
        return allowed, headers

    def forget(self, store_hash: str) -> None:
        """Start a fresh window (after the store's quota or window changed)."""
        with self._lock:
            self._windows.pop(store_hash, None)
