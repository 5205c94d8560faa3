"""The context a log line or metric belongs to: which tenant, which job, which request.

Kept in context variables, so a worker thread, an RQ job and a web request each carry their own;
the job runner and the API set them, and every log record picks them up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("dropstream_log_context", default={})


def current() -> dict[str, Any]:
    return _CONTEXT.get()


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Add ``values`` (``provider_id``, ``merchant_id``, ``job_id``, ``request_id`` …) to every
    log record made inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def start(**values: Any) -> None:
    """Begin a fresh context (a web request): nothing from an earlier request on this thread."""
    _CONTEXT.set({k: v for k, v in values.items() if v is not None})


def add(**values: Any) -> None:
    """Add to the context begun by :func:`start` (e.g. the tenant, once authenticated)."""
    _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in values.items() if v is not None}})
