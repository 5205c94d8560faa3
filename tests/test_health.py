"""``/healthz`` tells whether the database and the queue can be reached."""

from __future__ import annotations


def test_healthz_reports_database_and_queue(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok" and body["queue"]["status"] == "ok"
    assert body["queue"]["backend"] in ("rq", "in-process")


def test_healthz_says_503_when_the_queue_is_unreachable(app_config) -> None:  # type: ignore[no-untyped-def]
    from dropstream.app import create_app

    # Nothing listens on port 1: the queue is down, the database is fine.
    from dropstream.extensions import db

    app = create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"}, env={}, load_entry_points=False)
    response = app.test_client().get("/healthz")
    with app.app_context():
        db.engine.dispose()
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "ok",
                                   "queue": {"backend": "rq", "status": "unreachable"}}


def test_the_api_docs_page_works_without_internet_access(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "cdn." not in html and "/assets/swagger-ui/swagger-ui-bundle.js" in html
    with client.get("/assets/swagger-ui/swagger-ui-bundle.js") as script:
        assert script.status_code == 200 and len(script.get_data()) > 100_000
    assert client.get("/assets/swagger-ui/../../../etc/passwd").status_code == 404
