"""The long-running processes' garbage collector: start-up frozen, the work's garbage still
collected."""

from __future__ import annotations

import gc
import weakref

from dropstream.heap import freeze_startup_objects


class _Node:
    other: _Node


def test_start_up_is_frozen_and_cycles_made_afterwards_are_still_collected() -> None:
    thresholds = gc.get_threshold()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000  # modules, the app, the mappers

        first, second = _Node(), _Node()
        first.other, second.other = second, first  # a cycle: only the collector frees it
        gone = weakref.ref(first)
        del first, second
        gc.collect()

        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
