"""What inbound routes remember of their senders: trusted only under the generation it was read
under, and not at all while the generation cannot be read (the routes' own tests cover the
webhooks and pushes end to end)."""

from __future__ import annotations

import logging

import pytest
from redis import Redis

from dropstream.security.senders import Generation, RememberedSenders


def _looking_up(found: list[str]) -> object:
    def look_up() -> str:
        found.append("looked up")
        return "sender"

    return look_up


def test_a_sender_is_looked_up_again_once_any_sender_changed() -> None:
    generation = Generation(None)  # the embedded default's, in this process
    remembered = RememberedSenders[str](generation)
    looks: list[str] = []

    for _ in range(3):
        assert remembered.sender("store", lambda s: True, _looking_up(looks)) == "sender"
    assert len(looks) == 1
    generation.advance()  # a commit changed a store or warehouse row
    assert remembered.sender("store", lambda s: True, _looking_up(looks)) == "sender"
    assert len(looks) == 2


def test_a_delivery_unlike_what_is_remembered_is_checked_against_the_sender_as_it_is_now(
) -> None:
    remembered = RememberedSenders[str](Generation(None))
    looks: list[str] = []
    remembered.sender("store", lambda s: True, _looking_up(looks))

    assert remembered.sender("store", lambda s: False, _looking_up(looks)) == "sender"
    assert len(looks) == 2


def test_while_redis_cannot_be_read_nothing_remembered_is_trusted_and_one_warning_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As the queue's connection is made (the one the generation is read on), to a closed port.
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=5, socket_connect_timeout=5)
    remembered = RememberedSenders[str](Generation(unreachable))
    looks: list[str] = []

    with caplog.at_level(logging.WARNING, logger="dropstream.security.senders"):
        for _ in range(3):
            assert remembered.sender("store", lambda s: True, _looking_up(looks)) == "sender"

    assert len(looks) == 3
    assert len([r for r in caplog.records if "each delivery" in r.getMessage()]) == 1
