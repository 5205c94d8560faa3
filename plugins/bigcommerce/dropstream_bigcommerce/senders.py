"""What a webhook delivery is checked against, remembered per process for a few seconds (see
:mod:`dropstream_bigcommerce.webhooks` for why, and what the few seconds allow)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Seconds a process remembers what a store's deliveries are checked against.
SENDER_TTL = 5.0
#: Most stores remembered at once; past it, the oldest are forgotten first.
MAX_SENDERS = 10_000


@dataclass(frozen=True)
class Sender:
    """What a delivery is checked against and recorded for: the store's ids, its monitored
    status and its secrets (never shown in a repr)."""

    id: int
    merchant_id: int
    provider_id: int
    monitored_status_id: Any
    webhook_secret: str = field(repr=False)
    #: The client secret that signs Standard Webhooks deliveries, if DropStream has it.
    signing_secret: str | None = field(repr=False)
    until: float = field(repr=False)


class Senders:
    """Per process: store hash → :class:`Sender`, each for :data:`SENDER_TTL` seconds."""

    def __init__(self) -> None:
        self._by_hash: dict[str, Sender] = {}
        self._lock = threading.Lock()

    def get(self, store_hash: str) -> Sender | None:
        sender = self._by_hash.get(store_hash)
        return sender if sender is not None and sender.until > time.monotonic() else None

    def put(self, store_hash: str, sender: Sender | None) -> None:
        with self._lock:
            self._by_hash.pop(store_hash, None)
            if sender is not None:
                while len(self._by_hash) >= MAX_SENDERS:
                    del self._by_hash[next(iter(self._by_hash))]
                self._by_hash[store_hash] = sender
