"""Outbound requests refuse unsafe targets before any socket is opened, follow no redirects,
and cap what they read."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from dropstream.net.outbound import OutboundPolicy, OutboundSession, ResponseTooLarge, UnsafeURL

HOSTILE = [
    "http://example.com/",                    # plain http
    "https://10.0.0.5/orders",                # private
    "https://192.168.1.1/",
    "https://172.16.0.1/",
    "https://127.0.0.1/",                     # loopback, not allowed here
    "https://[::1]/",
    "https://0.0.0.0/",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://2130706433/",                    # 127.0.0.1 as a decimal
    "https://0x7f000001/",                    # … as hex
    "https://0177.0.0.1/",                    # … as octal
    "https://127.1/",                         # … short form
    "https://[::ffff:127.0.0.1]/",            # IPv4-mapped IPv6
    "https://[::ffff:10.0.0.1]/",
    "https://[fe80::1]/",                     # link-local
    "https://[fc00::1]/",                     # unique local
    "https://100.64.0.1/",                    # carrier-grade NAT
    "https://224.0.0.1/",                     # multicast
    "https://user:pass@example.com/",         # credentials in the URL
    "https://example.com@10.0.0.1/",          # userinfo trick
    "https://example.com:8443/",              # port not allowed
    "ftp://example.com/",
    "file:///etc/passwd",
    "https:///nohost",
]


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    attempts: list[tuple[str, int]] = []

    def refuse(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(address)
        raise AssertionError(f"a socket was opened to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_are_refused_before_connecting(url: str, no_sockets: list) -> None:
    session = OutboundSession(OutboundPolicy(resolver=lambda host, port: ["93.184.216.34"]))
    with pytest.raises(UnsafeURL):
        session.get(url)
    assert no_sockets == []


@pytest.mark.parametrize("answers", [["10.1.2.3"], ["93.184.216.34", "127.0.0.1"], ["::ffff:192.168.0.1"], []])
def test_names_resolving_to_internal_addresses_are_refused(answers: list[str], no_sockets: list) -> None:
    # A stub resolver: the test never asks real DNS and never sends traffic anywhere.
    session = OutboundSession(OutboundPolicy(resolver=lambda host, port: answers))
    with pytest.raises(UnsafeURL):
        session.get("https://wms.example.com/v1/orders")
    assert no_sockets == []


class _Handler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        _Handler.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/internal")
            self.end_headers()
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_allowed_loopback_sandbox_is_reachable_and_redirects_are_not_followed(local_server: str) -> None:
    with OutboundSession(OutboundPolicy(allow_loopback=True)) as session:
        assert session.get(f"{local_server}/ok").json() == {"ok": True}
        response = session.get(f"{local_server}/redirect")
    assert response.status_code == 302
    assert _Handler.hits == ["/ok", "/redirect"]


def test_loopback_is_refused_unless_allowed(local_server: str) -> None:
    with OutboundSession(OutboundPolicy()) as session, pytest.raises(UnsafeURL):
        session.get(f"{local_server}/ok")
    assert _Handler.hits == []


def test_oversized_responses_are_refused(local_server: str) -> None:
    with OutboundSession(OutboundPolicy(allow_loopback=True, max_response_bytes=1000)) as session:
        with pytest.raises(ResponseTooLarge):
            session.get(f"{local_server}/big")
        assert isinstance(ResponseTooLarge("x"), requests.RequestException)
