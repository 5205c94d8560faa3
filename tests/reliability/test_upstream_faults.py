"""Upstream faults, small: 30% of store and warehouse calls fail in every way the sandboxes
know, an order is deleted in the store, a store's token is revoked (paused, flagged, not
hammered, then reconnected) and the WMS is down for a few seconds — and every order still
arrives once, ships and is posted once. (``python chaos/upstream_faults.py`` is the full-size
run: ten minutes of faults and a five-minute outage.)"""

from __future__ import annotations

from chaos.harness import FaultRun, Options
from chaos.upstream_faults import upstream_faults


def test_every_order_arrives_once_through_store_and_warehouse_faults(
        app_config: dict[str, object], fresh_database_url: str) -> None:
    options = Options(merchants=2, seed=11, orders_every=2, flush_redis=True)
    with FaultRun(options, fresh_database_url, app_config) as run:
        figures, failures, report = upstream_faults(
            run, 16, seed=11, fault_seconds=6, outage_seconds=4, revoked_seconds=1, deleted=1,
            max_calls_after_revocation=5, timeout=60, hurry=True, every_kind_first=True)

    assert report.ok, report.summary()
    assert failures == [], figures
    assert figures["deleted_orders"] == 1 and figures["orders"] >= 16
    # How many faults fire depends on how many calls fall in the fault window (fewer as
    # DropStream gets faster); every kind is met once first, and chance adds more.
    assert figures["faults_injected"] >= 5 and figures["warehouse_faults"].get("outage", 0) > 0, figures
    assert set(figures["warehouse_faults"]) == {"error", "slow", "drop", "lose_reply", "garbage",
                                                "truncated", "outage"}, figures["warehouse_faults"]
    assert 0 <= figures["revoked_store_paused_after_seconds"] < 10
    # Paused by a refused call, not before one: the first refused call came first.
    assert 0 <= figures["paused_after_first_refused_call_seconds"] \
        <= figures["revoked_store_paused_after_seconds"]
    assert figures["most_attempts_per_operation"] <= 8
