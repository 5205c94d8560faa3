"""Scratch databases for tests and benchmarks: a new PostgreSQL database next to the one a URL
names (never that one: callers drop and create tables), or a SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def scratch_database(base_url: str | None, folder: Path, prefix: str = "dropstream_scratch") -> Iterator[str]:
    """Yield the URL of an empty database; drop it afterwards. ``base_url`` None: SQLite in
    ``folder``."""
    if not base_url:
        yield f"sqlite:///{Path(folder) / f'{prefix}.db'}"
        return
    url = make_url(base_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
