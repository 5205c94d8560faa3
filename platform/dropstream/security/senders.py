"""What inbound deliveries are checked against, remembered per process.

A store's webhooks and a warehouse's pushes arrive several a second when business is brisk, and
each must be checked against its sender's secrets: looking the sender's row up and decrypting
its credentials for every delivery cost more than handling many a delivery. A connector's route
keeps what it checks a sender against (ids, the settings the route reads, the secrets) here.

What is remembered is forgotten, in every process at once, as soon as a transaction that
changed a row holding credentials (a store, a warehouse: its credentials, settings or state, or
the row deleted) commits: each delivery first reads a generation number that such a commit
increments (in Redis with ``REDIS_URL``, else in this process, the only one), one round trip
instead of a transaction and a decryption. Revoked credentials therefore stop working when the
change commits, as they would without this memory. Entries also expire after a few seconds
(:data:`SENDER_TTL`), and a delivery that does not match what is remembered is checked against
the database before it is refused. When the generation cannot be read (Redis down), nothing
remembered is trusted: every delivery is checked against the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flask import Flask
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: Seconds a process trusts what it remembers of a sender, changed or not. The generation says
#: when a sender changed; this bounds what it cannot say: a change committed while Redis was
#: down (its generation could not be advanced), and any change made other than by the ORM.
SENDER_TTL = 5.0
#: Most senders one route remembers at once; past it, the oldest are forgotten first.
MAX_SENDERS = 10_000
#: The Redis key of the generation (shared by every process of one deployment).
GENERATION_KEY = "dropstream:senders:generation"
#: At most one warning this often (s) while the generation cannot be read.
WARN_EVERY = 60.0
#: session.info key: the transaction changed a row holding credentials.
_CHANGED = "dropstream.senders_changed"

Sender = TypeVar("Sender")


class Generation:
    """The number every process compares what it remembers against."""

    def __init__(self, redis: Any | None) -> None:
        self._redis = redis
        self._local = 0
        self._warned_at = float("-inf")

    def current(self) -> int | None:
        """The generation now; None when it cannot be read."""
        if self._redis is None:
            return self._local
        try:
            return int(self._redis.get(GENERATION_KEY) or 0)
        except Exception as error:  # noqa: BLE001 - Redis down: trust nothing remembered
            if time.monotonic() - self._warned_at >= WARN_EVERY:  # not once per delivery
                self._warned_at = time.monotonic()
                log.warning("cannot read whether inbound senders changed (%s): each delivery "
                            "is checked against the database meanwhile", type(error).__name__)
            return None

    def advance(self) -> None:
        if self._redis is None:
            self._local += 1
            return
        try:
            self._redis.incr(GENERATION_KEY)
        except Exception:  # noqa: BLE001
            # Nothing remembered is trusted while Redis is down (``current``). A change it could
            # not count here, like a Redis that lost the key (it reads 0 again), is trusted for
            # SENDER_TTL at most.
            log.exception("could not tell the other processes that a sender changed")


class RememberedSenders(Generic[Sender]):
    """One route's senders: key (a store hash, a warehouse id) → what its deliveries are
    checked against, with the generation it was read under."""

    def __init__(self, generation: Generation) -> None:
        self._generation = generation
        self._by_key: dict[object, tuple[int, float, Sender]] = {}
        self._lock = threading.Lock()

    def sender(self, key: object, matches: Callable[[Sender], bool],
               look_up: Callable[[], Sender | None]) -> Sender | None:
        """What ``key``'s delivery is checked against: as remembered, if that is current and
        ``matches`` the delivery; else as ``look_up`` reads it now (None: no such sender),
        remembered for the next delivery."""
        generation = self._generation.current()  # read before the look-up, never after
        found = self._by_key.get(key)
        if (found is not None and generation is not None and found[0] == generation
                and found[1] > time.monotonic() and matches(found[2])):
            return found[2]
        sender = look_up()
        with self._lock:
            self._by_key.pop(key, None)
            if sender is not None and generation is not None:
                while len(self._by_key) >= MAX_SENDERS:
                    del self._by_key[next(iter(self._by_key))]
                self._by_key[key] = (generation, time.monotonic() + SENDER_TTL, sender)
        return sender


def remembered_senders(app: Flask, route: str) -> RememberedSenders[Any]:
    """The senders ``route`` (a connector's inbound route) remembers in this app."""
    key = f"dropstream.senders.{route}"
    senders = app.extensions.get(key)
    if senders is None:
        senders = app.extensions.setdefault(key, RememberedSenders(_generation(app)))
    return senders


def note_change(session: Session) -> None:
    """The session's transaction changed a row holding credentials: when it commits, every
    process forgets what it remembers (:func:`forget_committed`)."""
    session.info[_CHANGED] = True


def forget_committed(session: Session) -> None:
    """After the outermost commit: advance the generation if the transaction changed a row
    holding credentials."""
    if session.info.pop(_CHANGED, False):
        from flask import current_app

        _generation(current_app._get_current_object()).advance()  # type: ignore[attr-defined]


def forget_rolled_back(session: Session) -> None:
    session.info.pop(_CHANGED, None)


def _generation(app: Flask) -> Generation:
    generation = app.extensions.get("dropstream.senders.generation")
    if generation is None:
        from dropstream.state import get_state

        redis = getattr(get_state(app).queue, "connection", None)
        generation = app.extensions.setdefault("dropstream.senders.generation", Generation(redis))
    return generation
