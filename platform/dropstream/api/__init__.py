"""REST API v1 (flask-smorest): resources, authentication and the error envelope."""

from __future__ import annotations

from flask import Flask


def init_api(app: Flask) -> None:
    """Mount the API on ``app``. (Filled in by the API module.)"""
