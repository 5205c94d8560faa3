"""Faults the sandbox injects on request, to prove the connector survives a real WMS's bad days.

Kinds (each for the next ``times`` requests, of one operation or of any):

* ``error``: answer ``status`` (default 503) with an error document, and ``Retry-After`` if given;
* ``slow``: wait ``seconds`` before answering (past the client's timeout, it is a timeout);
* ``drop``: close the connection without answering, before doing anything;
* ``lose_reply``: do the work (store the order…), then close the connection without answering
  — the ambiguous outcome a client cannot tell from ``drop``;
* ``garbage``: answer 200 with a body that breaks the protocol;
* ``truncated``: do the work, then answer with only the first half of the body.

With a ``probability``, a fault fires on each matching request with that chance (from a seeded
generator, so a run repeats) until it has fired ``times`` times: a fault *rate* rather than the
next requests.

An *outage* answers 503 to every protocol request until it ends.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("error", "slow", "drop", "lose_reply", "garbage", "truncated")
#: The protocol's operations, as faults name them.
OPERATIONS = (
    "create_order",
    "create_orders",
    "find_orders",
    "cancel_order",
    "list_shipments",
    "stock",
    "stock_changes",
    "ship_methods",
)


@dataclass
class Fault:
    kind: str
    operation: str | None = None
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    #: The error document's message (``error``); a WMS may echo what it was sent.
    message: str = "Injected fault."
    #: The chance it fires on a matching request (None: always, the next one).
    probability: float | None = None
    #: Firings left.
    remaining: int = 1


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)
    outage_until: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    #: Faults fired so far, by kind (outage refusals as ``outage``).
    fired: dict[str, int] = field(default_factory=dict)

    def inject(
        self,
        kind: str,
        *,
        times: int = 1,
        on: str | None = None,
        status: int = 503,
        retry_after: float | None = None,
        seconds: float = 0.0,
        message: str = "Injected fault.",
        probability: float | None = None,
    ) -> None:
        """:raises ValueError: an unknown kind or operation (the message lists the known ones)."""
        if int(times) < 1:
            raise ValueError("times must be at least 1")
        if probability is not None and not 0 < float(probability) <= 1:
            raise ValueError("probability must be above 0 and at most 1")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
        if on is not None and on not in OPERATIONS:
            raise ValueError(f"unknown operation {on!r}; use one of {', '.join(OPERATIONS)}")
        if not 100 <= int(status) <= 599:
            raise ValueError("status must be an HTTP status code")
        with self.lock:
            self.pending.append(
                Fault(kind, on, int(status), retry_after, float(seconds), str(message),
                      None if probability is None else float(probability), int(times))
            )

    def outage(self, seconds: float) -> None:
        """Refuse every protocol request with 503 for ``seconds`` from now (0 ends it)."""
        self.outage_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def clear(self) -> None:
        with self.lock:
            self.pending.clear()
        self.outage_until = 0.0

    def take(self, operation: str) -> Fault | None:
        """The fault for this request, if any (an outage first)."""
        if self.outage_until and time.monotonic() < self.outage_until:
            with self.lock:
                self.fired["outage"] = self.fired.get("outage", 0) + 1
            return Fault(
                "error", operation, 503, retry_after=max(1.0, self.outage_until - time.monotonic())
            )
        with self.lock:
            for fault in self.pending:
                if fault.operation not in (None, operation):
                    continue
                if fault.probability is not None and self.rng.random() >= fault.probability:
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.pending.remove(fault)
                self.fired[fault.kind] = self.fired.get(fault.kind, 0) + 1
                return fault
        return None

    def describe(self) -> dict[str, Any]:
        remaining = max(0.0, self.outage_until - time.monotonic()) if self.outage_until else 0.0
        return {
            "pending": [vars(f) for f in self.pending],
            "outage_seconds_left": round(remaining, 3),
            "fired": dict(self.fired),
        }
