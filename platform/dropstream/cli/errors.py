"""Turning service errors into command-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from dropstream.errors import AppError
from dropstream.extensions import db


@contextmanager
def service_errors() -> Iterator[None]:
    """Roll back and report an :class:`~dropstream.errors.AppError` as ``Error: <message>``
    (exit status 1): its message already says what is wrong and how to fix it."""
    try:
        yield
    except AppError as error:
        db.session.rollback()
        details = "; ".join(f"{field}: {', '.join(messages)}"
                            for field, messages in error.fields.items())
        message = f"{error.message} ({details})" if details else error.message
        raise click.ClickException(message) from None
