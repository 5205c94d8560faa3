"""What inbound deliveries are checked against, remembered per process for a few seconds.

A store's webhooks and a warehouse's pushes arrive several a second when business is brisk, and
each must be checked against its sender's secrets: looking the sender's row up and decrypting
its credentials for every delivery cost more than handling many a delivery. A connector's route
keeps what it checks a sender against (ids, settings the route reads, the secrets) here, for
:data:`SENDER_TTL` seconds, and looks the sender up again whenever a delivery does not match
what is remembered, before refusing it: new credentials work at once.

What the few seconds allow is the route's to say (each route's docstring does): a sender just
disconnected, or whose secret was just replaced, is still accepted for that long, so a route
may only remember what is harmless to act on a few seconds late.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

from flask import Flask

#: Seconds a process remembers what a sender's deliveries are checked against.
SENDER_TTL = 5.0
#: Most senders one route remembers at once; past it, the oldest are forgotten first.
MAX_SENDERS = 10_000

Sender = TypeVar("Sender")


class RememberedSenders(Generic[Sender]):
    """Key (a store hash, a warehouse id) → what its deliveries are checked against."""

    def __init__(self) -> None:
        self._by_key: dict[object, tuple[float, Sender]] = {}
        self._lock = threading.Lock()

    def get(self, key: object) -> Sender | None:
        """What is remembered of ``key``, if it is not older than :data:`SENDER_TTL`."""
        found = self._by_key.get(key)
        return found[1] if found is not None and found[0] > time.monotonic() else None

    def put(self, key: object, sender: Sender | None) -> None:
        """Remember ``sender`` for ``key`` (None: forget ``key``)."""
        with self._lock:
            self._by_key.pop(key, None)
            if sender is not None:
                while len(self._by_key) >= MAX_SENDERS:
                    del self._by_key[next(iter(self._by_key))]
                self._by_key[key] = (time.monotonic() + SENDER_TTL, sender)


def remembered_senders(app: Flask, route: str) -> RememberedSenders:  # type: ignore[type-arg]
    """The senders ``route`` (a connector's inbound route) remembers in this app."""
    key = f"dropstream.senders.{route}"
    senders = app.extensions.get(key)
    if senders is None:
        senders = app.extensions.setdefault(key, RememberedSenders())
    return senders
