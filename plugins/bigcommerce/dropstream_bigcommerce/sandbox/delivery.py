"""Webhook deliveries: really POSTed, from background threads, with BigCommerce's retries.

Each event goes to every active hook of the store whose scope matches (``store/order/*``
matches ``store/order/created``). The body is the thin payload of bigcommerce.md §4.3:
``{scope, store_id, data, hash, created_at, producer}``, ``hash`` being the SHA-1 of the
JSON-encoded ``data`` (so the same event delivered twice has the same hash). Each POST carries
the hook's own ``headers`` and Standard Webhooks headers (``webhook-id``, stable across retries;
``webhook-timestamp``; ``webhook-signature`` = ``v1,`` + base64 HMAC-SHA256 of
``{id}.{timestamp}.{body}`` keyed with the client secret).

Anything but a 2xx within the timeout is a failure; failures are retried after 60, 180, 300,
600, 900, 1800, 3600, 7200, 21600, 50400 and 86400 s, each multiplied by ``retry_scale``. When
the last retry fails, the hook is deactivated (``is_active`` false). Not modelled: the
per-domain success-ratio blocklist and the up-to-a-minute delay before a new hook fires.

Each attempt is kept (``webhook_deliveries``): its time, how long the receiver took to answer
(``seconds``), the receiver's status (None when no answer came), why it failed, and the start of the receiver's answer (``answer``), so a check
can tell what the receiver said it did with each delivery it acknowledged.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .faults import Faults
from .outbound import exchange
from .state import SandboxState, Store

RETRY_SCHEDULE = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)


@dataclass
class Delivery:
    id: int
    store_hash: str
    hook_id: int
    scope: str
    destination: str
    headers: dict[str, str]
    payload: dict[str, Any]
    message_id: str
    secret: str = field(repr=False)
    #: Deliver even when the hook is gone (``store/app/uninstalled`` outlives its hooks).
    force: bool = False
    state: str = "pending"  # pending | delivered | failed | dropped | cancelled
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "store_hash": self.store_hash, "hook_id": self.hook_id,
                "scope": self.scope, "destination": self.destination, "payload": self.payload,
                "message_id": self.message_id, "state": self.state,
                "attempts": [dict(attempt) for attempt in self.attempts]}


def scope_matches(hook_scope: str, scope: str) -> bool:
    if hook_scope.endswith("/*"):
        return scope.startswith(hook_scope[:-1])
    return hook_scope == scope


def signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Dispatcher:
    def __init__(self, state: SandboxState, faults: Faults, *, retry_scale: float = 0.01,
                 timeout: float = 5.0, workers: int = 4) -> None:
        self._state = state
        self._faults = faults
        self.retry_scale = retry_scale
        self.timeout = timeout
        self._workers = workers
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._deliveries: list[Delivery] = []
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        for number in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"bc-sandbox-webhooks-{number}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(self.timeout + 1)
        self._threads.clear()

    def emit(self, store: Store, scope: str, data: dict[str, Any], *,
             client_id: str | None = None, force: bool = False) -> None:
        """Queue ``scope`` for every matching active hook of ``store`` (of ``client_id`` only,
        if given). Called with the state lock held."""
        created_at = int(time.time())
        payload = {"scope": scope, "store_id": str(store.store_id), "data": data,
                   "hash": hashlib.sha1(json.dumps(data, separators=(",", ":")).encode()).hexdigest(),
                   "created_at": created_at, "producer": f"stores/{store.hash}"}
        for hook in list(store.hooks.values()):
            if not hook.is_active or not scope_matches(hook.scope, scope):
                continue
            if client_id is not None and hook.client_id != client_id:
                continue
            delivery = Delivery(
                id=next(self._ids), store_hash=store.hash, hook_id=hook.id, scope=scope,
                destination=hook.destination, headers=dict(hook.headers or {}), payload=payload,
                message_id=f"msg_{uuid.uuid4().hex}", secret=self._secret(store, hook.client_id),
                force=force)
            with self._cond:
                self._deliveries.append(delivery)
                if self._faults.take(frozenset({"drop_webhooks"}), store.hash,
                                     f"{hook.destination} {scope}"):
                    delivery.state = "dropped"
                    continue
                self._push(delivery, time.monotonic())

    def deliveries(self, store_hash: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [d.public() for d in self._deliveries
                    if store_hash is None or d.store_hash == store_hash]

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or in flight (retries included); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _secret(self, store: Store, client_id: str) -> str:
        account = store.accounts.get(client_id)
        if account is not None:
            return account.client_secret
        app = self._state.apps.get(client_id)
        return app.client_secret if app else ""

    def _push(self, delivery: Delivery, due: float) -> None:
        heapq.heappush(self._queue, (due, next(self._order), delivery))
        self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._attempt(delivery)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _hook_live(self, delivery: Delivery) -> bool:
        with self._state.lock:
            store = self._state.stores.get(delivery.store_hash)
            hook = store.hooks.get(delivery.hook_id) if store else None
            return hook is not None and hook.is_active

    def _attempt(self, delivery: Delivery) -> None:
        if not delivery.force and not self._hook_live(delivery):
            with self._cond:
                delivery.state = "cancelled"
            return
        started = time.time()
        status: int | None = None
        error: str | None = None
        answer = ""
        if self._faults.take(frozenset({"webhooks_fail"}), delivery.store_hash,
                             f"{delivery.destination} {delivery.scope}"):
            error = "receiver treated as down (injected webhooks_fail)"
        else:
            status, error, answer = self._post(delivery)
        with self._cond:
            delivery.attempts.append({"time": started, "status": status, "error": error,
                                      "answer": answer, "seconds": time.time() - started})
            if status is not None and 200 <= status < 300:
                delivery.state = "delivered"
                return
            retries_done = len(delivery.attempts) - 1
            if retries_done < len(RETRY_SCHEDULE):
                delay = RETRY_SCHEDULE[retries_done] * self.retry_scale
                self._push(delivery, time.monotonic() + delay)
                return
            delivery.state = "failed"
        with self._state.lock:
            store = self._state.stores.get(delivery.store_hash)
            hook = store.hooks.get(delivery.hook_id) if store else None
            if hook is not None and hook.is_active:
                hook.is_active = False
                hook.updated_at = int(time.time())

    def _post(self, delivery: Delivery) -> tuple[int | None, str | None, str]:
        body = json.dumps(delivery.payload).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "BigCommerce-Sandbox-Webhooks/1.0", **delivery.headers,
                   "webhook-id": delivery.message_id, "webhook-timestamp": timestamp,
                   "webhook-signature": signature(delivery.secret, delivery.message_id,
                                                  timestamp, body)}
        return exchange("POST", delivery.destination, body=body, headers=headers,
                        timeout=self.timeout)
