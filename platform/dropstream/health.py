"""``/healthz``: is the database reachable, is the queue reachable."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dropstream.extensions import db
from dropstream.state import get_state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    try:
        db.session.execute(text("SELECT 1"))
        database = True
    except SQLAlchemyError:
        db.session.rollback()
        database = False
    queue = get_state().queue
    queue_ok = queue.reachable()
    body = {
        "status": "ok" if database and queue_ok else "unavailable",
        "database": "ok" if database else "unreachable",
        "queue": {"backend": queue.name, "status": "ok" if queue_ok else "unreachable"},
    }
    return jsonify(body), 200 if database and queue_ok else 503
