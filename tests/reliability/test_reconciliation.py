"""Reconciliation, small: a fifth of the webhooks never come and the receiver is down until
BigCommerce gives up and deactivates the hooks — the polling sweep still brings every order in
(each ships once) and switches the hooks back on. (``python chaos/reconciliation.py`` is the
full-size run.)"""

from __future__ import annotations

from chaos.harness import FaultRun, Options
from chaos.reconciliation import reconciliation


def test_the_sweep_imports_every_order_and_re_enables_deactivated_hooks(
        app_config: dict[str, object], fresh_database_url: str) -> None:
    # BigCommerce's ~48 h of retries scaled to ~3.5 s, inside a 5 s outage.
    options = Options(merchants=2, seed=3, orders_every=2, webhook_retry_scale=0.00002,
                      flush_redis=True)
    with FaultRun(options, fresh_database_url, app_config) as run:
        figures, failures, report = reconciliation(run, 24, outage_seconds=5, timeout=60,
                                                   hurry=True)

    assert report.ok, report.summary()
    assert failures == [], figures
    assert figures["dropped"] > 0 and figures["failed_or_cancelled"] > 0
    assert figures["hooks_seen_deactivated"] > 0
    assert figures["hooks_active_at_end"] == figures["hooks"]
    assert figures["orders_only_the_sweep_found"] > 0
