"""The webhook storm, small: every order arrives exactly once however its webhooks come —
duplicated 1–9 times, shuffled, updates before the create, again after it shipped.
(``python chaos/webhook_storm.py`` is the full-size run.)"""

from __future__ import annotations

from chaos.harness import FaultRun, Options
from chaos.webhook_storm import storm


def test_duplicated_shuffled_and_late_webhooks_lose_and_duplicate_nothing(
        app_config: dict[str, object], fresh_database_url: str) -> None:
    options = Options(merchants=2, seed=5, sweep=False, flush_redis=True)
    with FaultRun(options, fresh_database_url, app_config) as run:
        figures, failures, report = storm(run, 12, seed=5, senders=4, late=0.1, timeout=60)

    assert report.ok, report.summary()
    assert failures == []
    assert figures["wms_orders"] == 12 and figures["inbox_rows"] == figures["distinct_events"]
    assert figures["deliveries"] > figures["events"] > 0
    assert max(figures["copies_per_event"]) > 1 and figures["late_redeliveries"] >= 3
