"""The queue page tells a provider admin how long finished work stays to be looked up."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import text


def test_the_queue_page_says_how_long_done_work_is_kept(app: Any, admin: Any) -> None:
    app.config["HISTORY_DAYS"] = 14
    page = text(admin.get("/console/queues"))
    assert "done (last 14 days)" in page
    assert "kept 14 days (<code>DROPSTREAM_HISTORY_DAYS</code>), then deleted" in page
