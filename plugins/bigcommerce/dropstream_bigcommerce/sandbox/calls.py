"""Every API call the sandbox answered, to prove what a connector did (and did not) do.

An entry holds the method, path, query, status, Unix time, duration, the injected fault kind
and whose credentials were used (``token_store``: the store the token belongs to, None for an
unknown or missing token; ``client_id``: its API account), never a header or a body, so tokens
and secrets never land in it.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def add(self, *, store_hash: str | None, method: str, path: str, query: str, status: int,
            time: float, duration_ms: float, fault: str | None = None,
            token_store: str | None = None, client_id: str | None = None) -> None:
        with self._lock:
            self._entries.append({"store_hash": store_hash, "method": method, "path": path,
                                  "query": query, "status": status, "time": time,
                                  "duration_ms": round(duration_ms, 3), "fault": fault,
                                  "token_store": token_store, "client_id": client_id})

    def entries(self, store_hash: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._entries
                    if store_hash is None or entry["store_hash"] == store_hash]

    def stats(self, store_hash: str, window_ms: int) -> dict[str, Any]:
        """Totals for one store, and the most calls made within any ``window_ms`` span (a
        sliding window: stricter than the API's fixed one)."""
        calls = self.entries(store_hash)
        times = sorted(entry["time"] for entry in calls)
        busiest, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window_ms / 1000:
                start += 1
            busiest = max(busiest, end - start + 1)
        statuses = Counter(entry["status"] for entry in calls)
        # Quota refusals only: an injected 429 fault is counted with the faults.
        refused = sum(1 for entry in calls if entry["status"] == 429 and not entry["fault"])
        return {"calls": len(calls), "responses_429": refused,
                "max_calls_in_sliding_window": busiest,
                "by_status": {str(status): count for status, count in sorted(statuses.items())},
                "faults_injected": sum(1 for entry in calls if entry["fault"])}
