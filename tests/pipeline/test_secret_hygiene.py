"""Credentials never leak: not into job arguments, timelines, errors or logs — even when a remote
system echoes them back."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem
from dropstream.orders.models import OrderEvent
from dropstream.state import get_state
from dropstream.testing.jobs import make_due, run_until_idle
from tests.pipeline.conftest import Loop

CANARY = "canary-wms-token-5f1d2a9c"


def test_an_echoed_credential_is_redacted_everywhere(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    from dropstream.stores.credentials import write_credentials

    loop.wms.token = CANARY
    write_credentials(loop.tenant.warehouse, {"token": CANARY})
    db.session.commit()
    loop.wms.faults.fail("leaky", times=1, on="forward_order")
    caplog.set_level(logging.DEBUG)
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    run_until_idle()

    events = db.session.scalars(select(OrderEvent)).all()
    retry = [e for e in events if e.kind == "retrying"][0]
    assert "[redacted]" in retry.message
    stored_text = " ".join(
        [e.message + str(e.detail) for e in events]
        + [str(o.last_error) + str(o.payload) for o in db.session.scalars(select(OutboxItem))]
    )
    assert CANARY not in stored_text
    assert CANARY not in caplog.text
    make_due()
    run_until_idle()
    assert len(loop.wms.orders) == 1


def test_jobs_carry_only_an_outbox_id(loop: Loop) -> None:
    queue = get_state().queue
    loop.shop.create_order([{"sku": "A", "quantity": 1}])
    from dropstream.jobs.scheduler import tick

    tick()
    if hasattr(queue, "drain"):
        ids = queue.drain()
        assert ids and all(isinstance(i, int) for i in ids)
        return
    from rq.job import Job

    jobs = [Job.fetch(job_id, connection=queue.connection)
            for name in ("webhooks", "default", "bulk") for job_id in queue.queue(name).job_ids]
    assert jobs and all(job.args == (int(job.id.split("-")[1]),) and not job.kwargs for job in jobs)
    dump = b" ".join(queue.connection.dump(key) or b"" for key in queue.connection.keys("*"))
    assert b"store-token" not in dump and b"wms-token" not in dump
