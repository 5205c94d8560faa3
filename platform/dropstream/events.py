"""Lifecycle notifications to plugins, delivered after the transaction that caused them commits.

Services call :func:`announce` inside their transaction; the hooks run once it has committed (a
rolled-back change announces nothing). A failing observer is logged and never breaks the
pipeline.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from dropstream.state import get_state

log = logging.getLogger(__name__)
_SESSION_KEY = "dropstream.announcements"


def announce(session: Session, hook: str, **kwargs: Any) -> None:
    session.info.setdefault(_SESSION_KEY, []).append((hook, kwargs))


def deliver_committed(session: Session) -> None:
    announcements = session.info.pop(_SESSION_KEY, None)
    if not announcements:
        return
    hooks = get_state().plugin_manager.hook
    for name, kwargs in announcements:
        try:
            getattr(hooks, name)(**kwargs)
        except Exception:
            log.exception("plugin hook %s failed; the pipeline goes on", name)


def uncommitted_mark(session: Session) -> int:
    """How many announcements the session's transaction holds so far."""
    return len(session.info.get(_SESSION_KEY, ()))


def forget_uncommitted(session: Session, since: int = 0) -> None:
    """Drop the announcements made since ``since`` (all by default): their change was rolled
    back."""
    del session.info.get(_SESSION_KEY, [])[since:]
