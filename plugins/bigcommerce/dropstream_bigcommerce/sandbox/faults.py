"""Injected faults: what goes wrong between a connector and BigCommerce, on demand.

Request faults (checked before authentication, as a gateway fails before the API does):

=================  ======================================================================
``500`` ``502``    that status, body in the API version's error shape (``retry_after``:
``503`` ``504``    also send ``Retry-After``)
``429``            429 *without* rate-limit headers (the platform under load, not the quota)
``429_reset``      429 *with* the rate-limit headers an exhausted quota sends: none left, the
                   window resets in ``retry_after`` seconds (default 1); not counted as a
                   quota refusal
``401``            401 as if the token had been revoked
``reset``          the connection is dropped without a response; the request is not applied
``reset_after``    the request is applied, then the connection is dropped without a response
``slow``           the answer starts after ``delay`` seconds (default: the sandbox's
                   ``slow_seconds``, 11 s, past a 10 s read timeout); then it is applied
``truncated``      the request is applied and answered with the first half of its body
``html``           200 with an HTML maintenance page; the request is not applied
=================  ======================================================================

Webhook faults: ``drop_webhooks`` (deliveries silently never sent) and ``webhooks_fail``
(attempts fail as if the receiver were down, so the retry schedule runs). For them
``path_contains`` matches the hook's scope or destination.

A fault matches by ``store_hash`` (``None``: any, the token endpoint included),
``path_contains`` and ``method``; it fires ``count`` times (``None``: until cleared or
``duration`` seconds have passed), each time with ``probability`` (seeded) if given.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from .errors import SandboxError

REQUEST_KINDS = frozenset({"500", "502", "503", "504", "429", "429_reset", "401", "reset",
                           "reset_after", "slow", "truncated", "html"})
WEBHOOK_KINDS = frozenset({"drop_webhooks", "webhooks_fail"})
KINDS = REQUEST_KINDS | WEBHOOK_KINDS


@dataclass
class Fault:
    id: int
    kind: str
    store_hash: str | None
    count: int | None
    path_contains: str | None
    method: str | None
    probability: float | None
    until: float | None
    delay: float | None
    retry_after: int | None
    fired: int = 0

    def matches(self, store_hash: str | None, text: str, method: str | None) -> bool:
        return ((self.store_hash is None or self.store_hash == store_hash)
                and (self.path_contains is None or self.path_contains in text)
                and (self.method is None or method is None or self.method == method))


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, kind: str, *, store_hash: str | None = None, count: int | None = 1,
            path_contains: str | None = None, method: str | None = None,
            probability: float | None = None, duration: float | None = None,
            delay: float | None = None, retry_after: int | None = None) -> int:
        if kind not in KINDS:
            raise SandboxError(f"kind must be one of {', '.join(sorted(KINDS))}, not {kind!r}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise SandboxError(f"count must be a whole number of at least 1, or None for no limit; "
                               f"not {count!r}")
        if probability is not None and not (isinstance(probability, (int, float))
                                            and 0 < probability <= 1):
            raise SandboxError(f"probability must be above 0 and at most 1, not {probability!r}")
        if duration is not None and not (isinstance(duration, (int, float)) and duration > 0):
            raise SandboxError(f"duration must be a number of seconds above 0, not {duration!r}")
        if count is None and probability is None and duration is None:
            raise SandboxError("count=None needs a probability or a duration; otherwise every "
                               "matching call would fail until clear_faults()")
        if delay is not None and not (isinstance(delay, (int, float)) and delay >= 0):
            raise SandboxError(f"delay must be a number of seconds of 0 or more, not {delay!r}")
        if retry_after is not None and (isinstance(retry_after, bool)
                                        or not isinstance(retry_after, int) or retry_after < 0):
            raise SandboxError(f"retry_after must be whole seconds of 0 or more, not {retry_after!r}")
        for name, value in (("store_hash", store_hash), ("path_contains", path_contains),
                            ("method", method)):
            if value is not None and not isinstance(value, str):
                raise SandboxError(f"{name} must be a string or None, not {value!r}")
        with self._lock:
            fault = Fault(next(self._ids), kind, store_hash, count, path_contains,
                          method.upper() if method else None, probability,
                          time.monotonic() + duration if duration else None, delay, retry_after)
            self._faults.append(fault)
            return fault.id

    def take(self, kinds: frozenset[str], store_hash: str | None, text: str,
             method: str | None = None) -> Fault | None:
        """The first live fault of ``kinds`` matching this call, consumed once; or None."""
        with self._lock:
            now = time.monotonic()
            self._faults = [f for f in self._faults
                            if (f.count is None or f.count > 0) and (f.until is None or f.until > now)]
            for fault in self._faults:
                if fault.kind not in kinds or not fault.matches(store_hash, text, method):
                    continue
                if fault.probability is not None and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._faults if fault.count is None or fault.count > 0]
