"""Which function runs each kind of outbox work, and what happens when it fails.

A static table of import paths (resolved lazily, so the jobs package never imports a domain at
import time): no global registry filled by import order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class JobSpec:
    """``run(item)`` does the work; ``on_retry(item, error, next_attempt)`` records a transient
    failure on the subject; ``on_give_up(item, error)`` makes the final failure visible there.
    ``one_at_a_time``: two items of this kind for the same subject never run at once; the
    later one waits until the other has ended (see ``runner``). ``waits_out_outages``: work
    that needs the warehouse is not given up while the warehouse cannot be reached at all (an
    outage outlasts ``max_attempts`` in about ten minutes); it waits, for up to a day, and goes
    as soon as the warehouse answers another item again. ``works_through_backlogs``: a job of
    this kind that waited in a backlog goes on, in the same worker, with more of its kind
    waiting for the same store, each run as an item of its own (see ``runner``), instead of
    leaving each to a queue job: for work whose queue job costs about as much as the work."""

    run: str
    on_retry: str | None = None
    on_give_up: str | None = None
    max_attempts: int = 8
    one_at_a_time: bool = False
    waits_out_outages: bool = False
    works_through_backlogs: bool = False


JOBS: dict[str, JobSpec] = {
    "order.refresh": JobSpec("dropstream.orders.importing:refresh_order_job"),
    "order.forward": JobSpec("dropstream.orders.forwarding:forward_order_job",
                             on_retry="dropstream.orders.forwarding:forward_retrying",
                             on_give_up="dropstream.orders.forwarding:forward_gave_up",
                             # An order held and released while its forward waits for the
                             # warehouse gets a second forward; run at once, both would look
                             # the reference up before either created it, and a warehouse that
                             # does not refuse a repeated reference would get the order twice.
                             one_at_a_time=True, waits_out_outages=True,
                             works_through_backlogs=True),
    "order.mark_sent": JobSpec("dropstream.orders.forwarding:mark_sent_job",
                               on_give_up="dropstream.orders.forwarding:mark_sent_gave_up",
                               works_through_backlogs=True),
    "order.cancel": JobSpec("dropstream.orders.cancellation:cancel_at_warehouse_job",
                            waits_out_outages=True),
    "store.rescan_holds": JobSpec("dropstream.orders.holds:rescan_holds_job"),
    "channel.run": JobSpec("dropstream.stores.channels:run_channel_job",
                           on_retry="dropstream.stores.channels:channel_failed",
                           on_give_up="dropstream.stores.channels:channel_gave_up", max_attempts=5,
                           # Two runs of one channel would read the same cursor and write the
                           # same rows (double work, and deadlocks on PostgreSQL).
                           one_at_a_time=True),
    "alerts.digest": JobSpec("dropstream.console.digest:send_digest_job", max_attempts=5),
    "shipment.post": JobSpec("dropstream.fulfillment.services:post_shipment_job",
                             on_retry="dropstream.fulfillment.services:post_shipment_retrying",
                             on_give_up="dropstream.fulfillment.services:post_shipment_gave_up",
                             works_through_backlogs=True),
}


def resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)
