"""DropStream's own HTTP server: connections kept open between requests (an unread body read
out first), served at once by threads kept between them, a connection over the limit served
when a thread frees, a silent one cut off, all of them closed with the server."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask, request

from dropstream import serving
from dropstream.serving import PooledWSGIServer

RELEASE = threading.Event()


def _app() -> Flask:
    app = Flask(__name__)

    @app.get("/now")
    def now() -> str:
        return threading.current_thread().name

    @app.post("/echo")
    def echo() -> bytes:
        return request.get_data()

    @app.post("/ignore")
    def ignore() -> str:
        return "not read"

    @app.get("/held")
    def held() -> str:
        RELEASE.wait(10)
        return "released"

    return app


@contextmanager
def running(max_connections: int = serving.MAX_CONNECTIONS) -> Iterator[PooledWSGIServer]:
    RELEASE.clear()
    server = PooledWSGIServer("127.0.0.1", 0, _app(), max_connections=max_connections,
                              name="serving-test")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        RELEASE.set()
        server.shutdown()
        server.server_close()


def get(server: PooledWSGIServer, path: str, timeout: float = 5) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def serving_threads() -> set[str]:
    return {thread.name for thread in threading.enumerate()
            if thread.name.startswith("serving-test-")}


def test_requests_one_after_another_are_answered_on_one_connection() -> None:
    with running() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        answers, sockets_used = [], set()
        for path, body in [("/echo", b"first"), ("/ignore", b"x" * 5000), ("/echo", b"third"),
                           ("/ignore", b""), ("/echo", b"fifth")]:
            connection.request("POST", path, body=body)
            response = connection.getresponse()
            answers.append((response.status, response.read(), response.getheader("Connection")))
            sockets_used.add(connection.sock.getsockname() if connection.sock else None)
        connection.close()

    # A body the application did not read was read out: the next request was found intact.
    assert answers == [(200, b"first", None), (200, b"not read", None), (200, b"third", None),
                       (200, b"not read", None), (200, b"fifth", None)]
    assert len(sockets_used) == 1 and None not in sockets_used  # never closed, never reopened


def test_a_large_unread_body_or_a_client_asking_closes_the_connection() -> None:
    with running() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("POST", "/ignore", body=b"x" * (serving.DRAINED_BODY + 1))
        too_large = connection.getresponse()
        too_large.read()
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("POST", "/echo", body=b"bye", headers={"Connection": "close"})
        asked = connection.getresponse()
        asked.read()
        connection.close()

    assert too_large.status == 200 and too_large.getheader("Connection") == "close"
    assert asked.status == 200 and asked.getheader("Connection") == "close"


def test_closing_the_server_closes_the_connections_it_holds_open() -> None:
    with running() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("POST", "/echo", body=b"before")
        assert connection.getresponse().read() == b"before"
        server.shutdown()
        server.server_close()
        time.sleep(0.1)

        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            connection.request("POST", "/echo", body=b"after")
            connection.getresponse().read()
        connection.close()


def test_connections_one_after_another_are_served_by_threads_kept_between_them() -> None:
    names = set()
    with running() as server:
        for _ in range(20):
            names.add(get(server, "/now"))
            time.sleep(0.05)  # time for the thread to finish with the closed connection

    # Each thread started is named by its number: one, or a few if a connection came before
    # the last one's thread was back (a thread each would have made twenty).
    assert 1 <= len(names) <= 3


def test_a_connection_is_served_while_others_are_busy() -> None:
    with running() as server:
        busy = [threading.Thread(target=get, args=(server, "/held")) for _ in range(3)]
        for thread in busy:
            thread.start()
        time.sleep(0.3)  # the three are being served, each holding its thread

        started = time.monotonic()
        answered = get(server, "/now")

        assert time.monotonic() - started < 2
        assert answered.startswith("serving-test-")
        RELEASE.set()
        for thread in busy:
            thread.join(5)


def test_over_the_limit_a_connection_waits_for_a_thread_and_is_then_served() -> None:
    with running(max_connections=2) as server:
        answers: list[str] = []
        busy = [threading.Thread(target=lambda: answers.append(get(server, "/held")))
                for _ in range(2)]
        for thread in busy:
            thread.start()
        time.sleep(0.3)
        waiting = threading.Thread(target=lambda: answers.append(get(server, "/now")))
        waiting.start()
        time.sleep(0.5)

        assert answers == []  # both threads are held: the third connection waits, unanswered
        RELEASE.set()
        waiting.join(5)
        for thread in busy:
            thread.join(5)

        assert answers.count("released") == 2 and len(answers) == 3
        # Every connection was matched with one thread: two at once are served at once again.
        RELEASE.clear()
        again = [threading.Thread(target=lambda: answers.append(get(server, "/held")))
                 for _ in range(2)]
        for thread in again:
            thread.start()
        time.sleep(0.3)
        RELEASE.set()
        for thread in again:
            thread.join(5)
        assert answers.count("released") == 4
        assert len(serving_threads()) <= 2


def test_a_silent_connection_is_cut_off_and_its_thread_serves_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving.RequestHandler, "timeout", 0.5)
    with running(max_connections=1) as server:
        silent = socket.create_connection(("127.0.0.1", server.port))
        silent.sendall(b"GET /now HTTP/1.1\r\n")  # and nothing more
        time.sleep(0.2)

        started = time.monotonic()
        answered = get(server, "/now", timeout=5)

        assert answered.startswith("serving-test-")
        assert 0.2 < time.monotonic() - started < 3  # once the silent one was cut off
        silent.settimeout(5)
        while silent.recv(1024):  # whatever the server said, it then closed the connection
            pass
        silent.close()


def test_closing_the_server_ends_its_idle_threads() -> None:
    with running() as server:
        for _ in range(3):
            get(server, "/now")
        assert serving_threads()

    deadline = time.monotonic() + 5
    while serving_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not serving_threads()


def test_each_request_is_logged_unless_the_access_log_is_quieted(
        caplog: pytest.LogCaptureFixture) -> None:
    with running() as server:
        caplog.set_level(logging.INFO, logger="werkzeug")
        get(server, "/now?first")
        caplog.set_level(logging.WARNING, logger="werkzeug")  # as `dropstream serve --quiet`
        get(server, "/now?second")
        time.sleep(0.2)  # the line is written after the answer is sent

    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("GET /now?first" in line and " 200 " in line for line in lines)
    assert not any("second" in line for line in lines)


def test_a_connection_the_application_drops_is_closed_at_once() -> None:
    flask_app = _app()

    def dropping(environ: dict, start_response: Any) -> Any:  # as the sandboxes' faults do
        if environ["PATH_INFO"] == "/drop":
            raise ConnectionAbortedError("dropped on purpose")
        return flask_app(environ, start_response)

    server = PooledWSGIServer("127.0.0.1", 0, dropping, name="serving-test")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/echo", body=b"kept")
        assert connection.getresponse().read() == b"kept"
        started = time.monotonic()
        connection.request("POST", "/drop", body=b"lost")
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            connection.getresponse()

        assert time.monotonic() - started < 2  # closed, not left open for the client's timeout
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_client_leaving_in_the_middle_of_an_unread_body_is_no_error(
        capfd: pytest.CaptureFixture[str]) -> None:
    with running() as server:
        leaving = socket.create_connection(("127.0.0.1", server.port))
        leaving.sendall(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                        + b"x" * 10)
        leaving.settimeout(5)
        assert leaving.recv(1024).startswith(b"HTTP/1.1 200")
        leaving.close()  # 990 bytes of its body never sent
        time.sleep(0.3)

        assert get(server, "/now").startswith("serving-test-")  # and the server goes on

    assert "Traceback" not in capfd.readouterr().err
