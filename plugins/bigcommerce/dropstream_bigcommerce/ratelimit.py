"""Keeping every store under its BigCommerce API quota, across all worker processes.

BigCommerce gives each store a quota per 30-second window, shared by every app on the store,
and reports what is left on each response (``X-Rate-Limit-Requests-Left``,
``X-Rate-Limit-Time-Reset-Ms``). The limiter remembers the last report per store hash and
*reserves* a request before it is sent: while requests are left it counts one down, and when
none are left it says how long to wait for the window to reset. The state lives in Redis when
DropStream runs with Redis (all workers share it), else in this process.

While the window is unknown (no answer yet, or the known one has reset) nothing says how much of
it is left, and every worker that waited for the reset asks at that same moment: were they all
let through, more calls than ``RESERVE`` in flight could take the window past its quota. So
exactly one call, the *probe*, goes; every other reservation waits a moment (``PROBE_POLL``) and
asks again, until the probe's answer says where the new window stands and reservations count
down from it. A probe that comes back without word of the quota (a failure, or an error without
the headers) frees its claim at once; one whose answer never comes (a worker killed mid-call)
holds it for ``PROBE_TIMEOUT`` only. A store whose API answers carry no quota headers at all (a
plan without a quota) is recorded as such for ``UNMETERED_SECONDS``, so that its calls do not
go one at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: Requests kept back from the quota for other apps on the store and for requests in flight.
RESERVE = 2
KEY = "dropstream:bigcommerce:quota:{store_hash}"
#: Reset times closer than this (seconds) belong to the same quota window, when the response did
#: not say how long a window is (it does: half a window then, since a new window moves the reset
#: time by a whole one while a slow answer moves it only by its delay).
SAME_WINDOW = 1.0
#: How long one probe's claim on an unknown window holds the other calls back (s), at most.
PROBE_TIMEOUT = 3.0
#: How often a call held back by a probe asks again (s).
PROBE_POLL = 0.05
#: How long an answer without quota headers marks its store as having no quota (s), and how
#: many requests are "left" meanwhile (a number no window uses up).
UNMETERED_SECONDS = 30.0
UNMETERED_LEFT = 1_000_000_000


class Limiter(Protocol):
    def acquire(self, store_hash: str) -> float:
        """Reserve one request; return 0, or the seconds to wait before sending it."""

    def observe(
        self, store_hash: str, left: int, reset_seconds: float, window: float | None
    ) -> None:
        """Record what a response said about the store's quota (``window``: its length, s)."""

    def pause(self, store_hash: str, seconds: float) -> None:
        """Send nothing to the store for ``seconds`` (a 429 without quota headers: the platform
        is under load), leaving what is known of its quota window as it is."""

    def release(self, store_hash: str) -> None:
        """A call came back without word of the quota (it failed, or its answer had no quota
        headers): if it was the store's probe, let another call probe."""

    def unmetered(self, store_hash: str) -> None:
        """An API answer came without quota headers: unless a window is known, the store has no
        quota (its plan has none): let its calls go for ``UNMETERED_SECONDS``."""


def read_headers(headers: Mapping[str, str]) -> tuple[int, float, float | None] | None:
    """``(requests left, seconds to reset, window seconds)`` from a response's headers, or None."""
    try:
        left = int(headers["X-Rate-Limit-Requests-Left"])
        reset = max(0.0, int(headers["X-Rate-Limit-Time-Reset-Ms"]) / 1000)
    except (KeyError, ValueError):
        return None
    try:
        window: float | None = int(headers["X-Rate-Limit-Time-Window-Ms"]) / 1000
    except (KeyError, ValueError):
        window = None
    return left, reset, window


def same_window_tolerance(window: float | None) -> float:
    return window / 2 if window else SAME_WINDOW


class LocalLimiter:
    """The state in this process (the embedded default: every worker is a thread here)."""

    def __init__(self, clock: Any = time.monotonic, probe_timeout: float = PROBE_TIMEOUT) -> None:
        self._state: dict[str, list[float]] = {}  # hash -> [left, reset_at]
        self._paused: dict[str, float] = {}  # hash -> paused until
        self._probes: dict[str, float] = {}  # hash -> a probe's claim holds until
        self._lock = threading.Lock()
        self._clock = clock
        self._probe_timeout = probe_timeout

    def acquire(self, store_hash: str) -> float:
        with self._lock:
            state = self._state.get(store_hash)
            now = self._clock()
            paused_until = self._paused.get(store_hash, 0.0)
            if now < paused_until:
                return paused_until - now
            if state is None or now >= state[1]:
                # Unknown, or a new window: one probe goes, and its answer says where we stand.
                claimed_until = self._probes.get(store_hash, 0.0)
                if now < claimed_until:
                    return min(PROBE_POLL, claimed_until - now)
                self._probes[store_hash] = now + self._probe_timeout
                return 0.0
            if state[0] > RESERVE:
                state[0] -= 1
                return 0.0
            return state[1] - now

    def observe(
        self, store_hash: str, left: int, reset_seconds: float, window: float | None
    ) -> None:
        with self._lock:
            reset_at = self._clock() + reset_seconds
            state = self._state.get(store_hash)
            if state is not None and reset_at <= state[1] + same_window_tolerance(window):
                # Same window: answers arrive out of order, and requests reserved since this
                # one left are not counted in its header, so never raise what is left.
                self._state[store_hash] = [min(float(left), state[0]), max(reset_at, state[1])]
                return
            # A new window (the probe's answer, or that of a call sent at its start): its
            # count starts here, and the probe is over.
            self._state[store_hash] = [float(left), reset_at]
            self._probes.pop(store_hash, None)

    def pause(self, store_hash: str, seconds: float) -> None:
        with self._lock:
            until = self._clock() + seconds
            self._paused[store_hash] = max(until, self._paused.get(store_hash, 0.0))

    def release(self, store_hash: str) -> None:
        with self._lock:
            self._probes.pop(store_hash, None)

    def unmetered(self, store_hash: str) -> None:
        with self._lock:
            now = self._clock()
            state = self._state.get(store_hash)
            if state is not None and now < state[1]:
                return  # a window is known: one answer without headers does not lift its quota
            self._state[store_hash] = [float(UNMETERED_LEFT), now + UNMETERED_SECONDS]
            self._probes.pop(store_hash, None)


# Redis's clock in ms, read inside the script (one round trip per call, not two; Redis 5 and
# later replicate a script's effects, so a script may read the time before it writes).
_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS[1] the store's key, KEYS[2] its pause key, KEYS[3] its probe's claim; ARGV: reserve,
# probe timeout (ms), probe poll (ms). Returns ms to wait (0: go ahead). An unknown or new window
# lets the one call that claims the probe go; the others poll until the claim ends (at least
# 1 ms: 0 would send them).
_ACQUIRE = _NOW_MS + """
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return paused end
local left = tonumber(redis.call('HGET', KEYS[1], 'left'))
local reset_at = tonumber(redis.call('HGET', KEYS[1], 'reset_at'))
if left == nil or reset_at == nil or now >= reset_at then
  if redis.call('SET', KEYS[3], 1, 'PX', ARGV[2], 'NX') then return 0 end
  return math.max(1, math.min(tonumber(ARGV[3]), redis.call('PTTL', KEYS[3])))
end
if left > tonumber(ARGV[1]) then
  redis.call('HINCRBY', KEYS[1], 'left', -1)
  return 0
end
return reset_at - now
"""


# KEYS[1] the store's key, KEYS[2] its probe's claim; ARGV: left, reset (ms), same-window
# tolerance (ms). An answer from a new window ends the probe (see LocalLimiter.observe).
_OBSERVE = _NOW_MS + """
local reset_at = now + tonumber(ARGV[2])
local left = tonumber(ARGV[1])
local known_reset = tonumber(redis.call('HGET', KEYS[1], 'reset_at'))
local known_left = tonumber(redis.call('HGET', KEYS[1], 'left'))
if known_reset ~= nil and known_left ~= nil and reset_at <= known_reset + tonumber(ARGV[3]) then
  left = math.min(left, known_left)
  reset_at = math.max(reset_at, known_reset)
else
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], 'left', left, 'reset_at', reset_at)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 60000)
return left
"""


# KEYS[1] the store's key, KEYS[2] its probe's claim; ARGV: left, how long (ms). Nothing while a
# window is known (see LocalLimiter.unmetered).
_UNMETERED = _NOW_MS + """
local reset_at = tonumber(redis.call('HGET', KEYS[1], 'reset_at'))
if reset_at ~= nil and now < reset_at then return 0 end
redis.call('HSET', KEYS[1], 'left', ARGV[1], 'reset_at', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 60000)
redis.call('DEL', KEYS[2])
return 1
"""


class RedisLimiter:
    """The state in Redis, shared by every worker process on every machine.

    Times are Redis's own clock (``TIME``), so workers with skewed clocks agree on when a
    window resets.
    """

    def __init__(self, connection: Any, probe_timeout: float = PROBE_TIMEOUT) -> None:
        self._redis = connection
        self._acquire = connection.register_script(_ACQUIRE)
        self._observe = connection.register_script(_OBSERVE)
        self._unmetered = connection.register_script(_UNMETERED)
        self._probe_ms = max(1, int(probe_timeout * 1000))

    def acquire(self, store_hash: str) -> float:
        try:
            key = KEY.format(store_hash=store_hash)
            wait_ms = self._acquire(
                keys=[key, f"{key}:pause", f"{key}:probe"],
                args=[RESERVE, self._probe_ms, int(PROBE_POLL * 1000)],
            )
        except RedisError as error:
            # Losing Redis costs time, never work: go ahead; a 429 still makes the client wait.
            log.warning(
                "quota state unavailable (%s); calling BigCommerce unthrottled",
                type(error).__name__,
            )
            return 0.0
        return int(wait_ms) / 1000

    def observe(
        self, store_hash: str, left: int, reset_seconds: float, window: float | None
    ) -> None:
        key = KEY.format(store_hash=store_hash)
        try:
            self._observe(
                keys=[key, f"{key}:probe"],
                args=[
                    left,
                    int(reset_seconds * 1000),
                    int(same_window_tolerance(window) * 1000),
                ],
            )
        except RedisError:
            pass  # see acquire

    def pause(self, store_hash: str, seconds: float) -> None:
        key = f"{KEY.format(store_hash=store_hash)}:pause"
        try:
            self._redis.set(key, 1, px=max(1, int(seconds * 1000)))
        except RedisError:
            pass  # see acquire

    def release(self, store_hash: str) -> None:
        try:
            self._redis.delete(f"{KEY.format(store_hash=store_hash)}:probe")
        except RedisError:
            pass  # see acquire (the claim expires by itself)

    def unmetered(self, store_hash: str) -> None:
        key = KEY.format(store_hash=store_hash)
        try:
            self._unmetered(
                keys=[key, f"{key}:probe"],
                args=[UNMETERED_LEFT, int(UNMETERED_SECONDS * 1000)],
            )
        except RedisError:
            pass  # see acquire
