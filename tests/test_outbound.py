"""Outbound requests refuse unsafe targets before any socket is opened, follow no redirects,
and cap what they read.

Names are answered by :func:`stub_resolver`, never by real DNS, and ``no_sockets`` fails the test
if a connection is even attempted: no traffic ever goes to a private address.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import requests

from dropstream.net.outbound import (
    OutboundPolicy,
    OutboundSession,
    ResponseTooLarge,
    UnsafeURL,
    shared_session,
)

PUBLIC = "93.184.216.34"
#: What DNS would answer for the names below (a stub: nothing is ever asked of real DNS).
STUB_DNS = {
    "internal.example.com": ["10.0.0.5"],
    "metadata.google.internal": ["169.254.169.254"],
    "loopback.example.com": ["127.0.0.1"],
    "v6-loopback.example.com": ["::1"],
    "localhost": ["127.0.0.1", "::1"],
    "nat64.example.com": ["64:ff9b::a9fe:a9fe"],         # NAT64 of the metadata address
    "mapped.example.com": ["::ffff:192.168.0.1"],
    "sixtofour.example.com": ["2002:c0a8:1::1"],          # 6to4 of 192.168.0.1
    "ula.example.com": ["fd12:3456::1"],
    "cgnat.example.com": ["100.64.1.1"],
    "rebinding.example.com": [PUBLIC, "127.0.0.1"],      # a public answer, then a private one
    "nxdomain.example.com": [],
}


def stub_resolver(host: str, port: int) -> list[str]:
    """Answer as the C resolver would: numbers in any spelling are themselves, a name is looked
    up case-insensitively without its root dot, and an unknown name is public."""
    name = host.rstrip(".").lower()
    try:
        return [str(ipaddress.ip_address(name.strip("[]")))]
    except ValueError:
        pass
    try:
        return [socket.inet_ntoa(socket.inet_aton(name))]
    except OSError:
        return STUB_DNS.get(name, [PUBLIC])


HOSTILE = [
    "http://example.com/",                    # plain http
    "ftp://example.com/",
    "file:///etc/passwd",
    "https:///nohost",
    "https://10.0.0.5/orders",                # private
    "https://192.168.1.1/",
    "https://172.16.0.1/",
    "https://127.0.0.1/",                     # loopback, not allowed here
    "https://[::1]/",
    "https://0.0.0.0/",
    "https://[::]/",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://[fd00:ec2::254]/",               # … its IPv6 address
    "https://2130706433/",                    # 127.0.0.1 as a decimal
    "https://0x7f000001/",                    # … as hex
    "https://0177.0.0.1/",                    # … as octal
    "https://127.1/",                         # … short form
    "https://0x7f.1/",                        # … hex and short
    "https://127.000.000.001/",               # … zero-padded
    "https://127.0.0.1./",                    # … with the root's dot
    "HTTPS://10.0.0.5/",                      # upper-case scheme
    "https://[::ffff:127.0.0.1]/",            # IPv4-mapped IPv6
    "https://[::ffff:10.0.0.1]/",
    "https://[0:0:0:0:0:ffff:a9fe:a9fe]/",
    "https://[::127.0.0.1]/",                 # IPv4-compatible IPv6 (deprecated)
    "https://[64:ff9b::7f00:1]/",             # NAT64 of loopback
    "https://[64:ff9b::a9fe:a9fe]/",          # NAT64 of the metadata address
    "https://[64:ff9b:1::a00:1]/",            # local-use NAT64
    "https://[2002:7f00:1::1]/",              # 6to4 of loopback
    "https://[2002:a9fe:a9fe::1]/",           # 6to4 of the metadata address
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "https://[fe80::1]/",                     # link-local
    "https://[fe80::1%25eth0]/",              # … with a zone
    "https://[fc00::1]/",                     # unique local
    "https://[fec0::1]/",                     # site-local (deprecated)
    "https://100.64.0.1/",                    # carrier-grade NAT
    "https://198.18.0.1/",                    # benchmarking
    "https://224.0.0.1/",                     # multicast
    "https://255.255.255.255/",               # broadcast
    "https://user:pass@example.com/",         # credentials in the URL
    "https://example.com@10.0.0.1/",          # userinfo trick
    "https://example.com:443@127.0.0.1/",
    "https://example.com\\@127.0.0.1/",       # backslash before the userinfo
    "https:\\\\127.0.0.1\\",                  # backslashes for slashes
    "https://127.0.0.1\\.example.com/",       # backslash inside the host
    "https://%31%32%37.0.0.1/",               # percent-encoded host
    "https://example.com%40127.0.0.1/",       # percent-encoded @
    "https://127.0.0.1%0d%0aHost:%20x/",      # percent-encoded CRLF
    "https://127.0.0.1 /",                    # whitespace
    "https://exa mple.com/",
    "https://example.com/\r\nHost: 10.0.0.1",  # a raw CRLF (urlsplit would drop it)
    "https://ex\tample.com/",                 # a raw tab (likewise)
    "https://１２７.０.０.１/",                  # full-width digits (IDNA maps them to 127.0.0.1)
    "https://①②⑦.0.0.1/",                    # circled digits
    "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",                    # circled letters (… to localhost)
    "https://example.com:8443/",              # port not allowed
    "https://example.com:80/",
    "https://example.com:0/",
    "https://internal.example.com/",          # names resolving to internal addresses
    "https://INTERNAL.EXAMPLE.COM./",         # … upper case, root dot
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://loopback.example.com/",
    "https://v6-loopback.example.com/",
    "https://localhost/",
    "https://LocalHost./",
    "https://nat64.example.com/",
    "https://mapped.example.com/",
    "https://sixtofour.example.com/",
    "https://ula.example.com/",
    "https://cgnat.example.com/",
    "https://rebinding.example.com/",         # every answer is checked, not just the first
    "https://nxdomain.example.com/",
]


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    attempts: list[tuple[str, int]] = []

    def refuse(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(address)
        raise AssertionError(f"a socket was opened to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_there_are_at_least_forty_hostile_urls() -> None:
    assert len(set(HOSTILE)) == len(HOSTILE) >= 40


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_are_refused_before_connecting(url: str, no_sockets: list) -> None:
    with OutboundSession(OutboundPolicy(resolver=stub_resolver)) as session, pytest.raises(UnsafeURL):
        session.get(url)
    assert no_sockets == []


@pytest.mark.parametrize("url", ["https://wms.example.com/v1/orders", "https://[2606:4700::1]/",
                                 "https://[64:ff9b::5db8:d822]/", "https://bücher.example/",
                                 "https://WMS.Example.COM./v1"])
def test_public_addresses_pass_the_checks(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard against the list above is not a guard against everything: these reach the
    connection, to the address checked (where a socket stub stops them)."""
    attempts: list[tuple[str, int]] = []

    def unreachable(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(address)
        raise ConnectionRefusedError("the test opens no socket")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with OutboundSession(OutboundPolicy(resolver=stub_resolver)) as session, \
            pytest.raises(requests.ConnectionError):
        session.get(url)
    assert len(attempts) == 1 and attempts[0][1] == 443
    assert ipaddress.ip_address(attempts[0][0]).is_global


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded loopback HTTP server on a free port, for the ``with`` block; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Handler(_Quiet):
    hits: ClassVar[list[str]] = []
    #: Where ``/redirect?to=N`` sends the client.
    targets: ClassVar[list[str]] = []

    def do_GET(self) -> None:  # noqa: N802
        _Handler.hits.append(self.path)
        if self.path.startswith("/redirect"):
            index = int(self.path.partition("to=")[2] or 0)
            self.send_response(302)
            self.send_header("Location", _Handler.targets[index] if _Handler.targets else
                             "http://127.0.0.1:1/internal")
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


@pytest.fixture
def local_server() -> Iterator[str]:
    _Handler.hits = []
    with _serving(_Handler) as url:
        yield url


def test_an_allowed_loopback_sandbox_is_reachable_and_redirects_are_not_followed(local_server: str) -> None:
    with OutboundSession(OutboundPolicy(allow_loopback=True)) as session:
        assert session.get(f"{local_server}/ok").json() == {"ok": True}
        response = session.get(f"{local_server}/redirect")
    assert response.status_code == 302
    assert _Handler.hits == ["/ok", "/redirect"]


@pytest.fixture
def internal_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback server standing in for an internal service: it must never be reached."""
    hits: list[str] = []

    class Internal(_Quiet):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

    with _serving(Internal) as url:
        yield url, hits


REDIRECT_TARGETS = ["http://10.0.0.5/orders", "https://169.254.169.254/latest/meta-data/",
                    "https://[64:ff9b::a9fe:a9fe]/", "https://internal.example.com/", "{internal}/admin"]


def test_redirects_to_internal_addresses_are_never_followed(
        local_server: str, internal_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    internal, internal_hits = internal_server
    _Handler.targets = [target.format(internal=internal) for target in REDIRECT_TARGETS]
    connected: list[tuple[str, int]] = []
    real_connect = socket.create_connection

    def record(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        connected.append(address)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", record)
    # Loopback is allowed for the sandbox that answers with the redirects, so the only thing
    # between the client and the internal server is that redirects are not followed.
    with OutboundSession(OutboundPolicy(allow_loopback=True, resolver=stub_resolver)) as session:
        for index, target in enumerate(_Handler.targets):
            response = session.get(f"{local_server}/redirect?to={index}")
            assert response.status_code == 302 and response.headers["Location"] == target
            assert not response.history
    sandbox_port = int(local_server.rsplit(":", 1)[1])
    assert set(connected) == {("127.0.0.1", sandbox_port)}
    assert internal_hits == []
    _Handler.targets = []


def test_loopback_is_refused_unless_allowed(local_server: str) -> None:
    with OutboundSession(OutboundPolicy()) as session, pytest.raises(UnsafeURL):
        session.get(f"{local_server}/ok")
    assert _Handler.hits == []


def test_oversized_responses_are_refused(local_server: str) -> None:
    with OutboundSession(OutboundPolicy(allow_loopback=True, max_response_bytes=1000)) as session:
        with pytest.raises(ResponseTooLarge):
            session.get(f"{local_server}/big")
        assert isinstance(ResponseTooLarge("x"), requests.RequestException)


@pytest.fixture
def keep_alive_server() -> Iterator[tuple[str, list[tuple[int, str | None]]]]:
    """An HTTP/1.1 server recording, per request, the client's port (one per connection) and
    the Cookie header it got; ``/set-cookie`` answers with a cookie."""
    seen: list[tuple[int, str | None]] = []

    class KeepAlive(_Quiet):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            seen.append((self.client_address[1], self.headers.get("Cookie")))
            self.send_response(200)
            if self.path == "/set-cookie":
                self.send_header("Set-Cookie", "session=of-another-store; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    with _serving(KeepAlive) as url:
        yield url, seen


def test_a_thread_keeps_one_session_per_policy_its_connection_open_and_no_cookies(
        keep_alive_server: tuple[str, list[tuple[int, str | None]]]) -> None:
    url, seen = keep_alive_server
    session = shared_session(OutboundPolicy(allow_loopback=True))
    session.get(f"{url}/set-cookie")  # as if one store's API answer set a cookie
    assert shared_session(OutboundPolicy(allow_loopback=True)) is session, "same policy, same session"
    session.get(f"{url}/orders")  # the next call, for any store

    (first_port, _), (second_port, cookie) = seen
    assert second_port == first_port, "the second call reused the first call's connection"
    assert cookie is None, "a cookie one answer set is never sent with a later request"
    assert shared_session(OutboundPolicy(allow_loopback=True, read_timeout=5)) is not session

    elsewhere: list[OutboundSession] = []
    thread = threading.Thread(target=lambda: elsewhere.append(
        shared_session(OutboundPolicy(allow_loopback=True))))
    thread.start()
    thread.join()
    assert elsewhere[0] is not session, "each thread has its own"
