"""Outbound HTTP to addresses a tenant configured (a WMS URL) or a connector's API.

A tenant-supplied URL must never reach this machine's or the provider network's internals (SSRF).
:class:`OutboundSession` is a ``requests.Session`` that enforces an :class:`OutboundPolicy`:

* ``https`` only — plain ``http`` only to an explicitly allowed loopback sandbox;
* no user-info in URLs, only allowed ports (443 unless the policy says otherwise);
* the host is an IP address (in any spelling a resolver accepts) or a valid host name (IDNA 2008:
  no percent-encoding, spaces, backslashes or look-alike characters);
* the host is resolved *once*, every address is checked (private, loopback, link-local, multicast,
  reserved, site-local and other non-global addresses are refused, and so is an IPv6 address that
  leads to such an IPv4 address: IPv4-mapped, 6to4, NAT64, Teredo), and the connection is made
  to the checked address itself, so a DNS answer cannot change between check and connect;
* redirects are never followed, every request has connect and read timeouts, and a response
  larger than ``max_response_bytes`` is refused;
* cookies are never kept: sessions are shared between tenants (:func:`shared_session`), and
  the APIs DropStream calls authenticate every request by its own headers.

A refusal raises :class:`UnsafeURL` *before* any socket is opened, with a message that says why.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import idna
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

Resolver = Callable[[str, int], list[str]]
#: NAT64's well-known prefix: the last 32 bits are the IPv4 address the gateway connects to.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """The URL or the address it resolves to is not allowed by the outbound policy."""


class ResponseTooLarge(requests.RequestException):
    """The remote sent more than the policy's ``max_response_bytes``."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class OutboundPolicy:
    #: Allow plain http and any port to 127.0.0.0/8 and ::1 (the sandboxes of the demo and tests).
    allow_loopback: bool = False
    allowed_ports: frozenset[int] = frozenset({443})
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_response_bytes: int = 10 * 1024 * 1024
    resolver: Resolver = field(default=system_resolver, compare=False)

    def check_url(self, url: str) -> None:
        """Refuse ``url`` unless its scheme, user-info, host and port are acceptable (without
        resolving the host; addresses are checked at connect time)."""
        # urlsplit silently drops tabs and newlines that the HTTP client then sees: refuse them
        # (and every other control character or space) so both read the same URL.
        if any(ord(character) <= 0x20 or ord(character) == 0x7F for character in url):
            raise UnsafeURL("the URL contains spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise UnsafeURL(f"malformed URL: {error}") from None
        if parts.scheme not in ("https", "http"):
            raise UnsafeURL(f"scheme {parts.scheme or '(none)'!r} is not allowed: use https")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise UnsafeURL("credentials in the URL are not allowed; configure them as credentials")
        host = parts.hostname
        if not host:
            raise UnsafeURL("the URL has no host")
        literal = _ip_literal(host)
        if literal is None:
            # "127.0.0.1." is still an address once the resolver drops the root's dot.
            literal = _ip_literal(_host_name(host).rstrip("."))
        loopback_literal = literal is not None and literal.is_loopback
        if literal is not None:
            self.check_address(str(literal))
        if parts.scheme == "http" and not (self.allow_loopback and (loopback_literal or host == "localhost")):
            raise UnsafeURL("plain http is not allowed: use https")
        effective_port = port if port is not None else (443 if parts.scheme == "https" else 80)
        loopback_target = self.allow_loopback and (loopback_literal or host == "localhost")
        if effective_port not in self.allowed_ports and not loopback_target:
            raise UnsafeURL(f"port {effective_port} is not allowed (allowed: {sorted(self.allowed_ports)})")

    def check_address(self, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        for candidate in (ip, *_embedded_ipv4(ip)):
            if candidate.is_loopback and self.allow_loopback:
                continue
            if not candidate.is_global or candidate.is_multicast or _obsolete(candidate):
                raise UnsafeURL(f"address {address} is not a public address")


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (IPv4-mapped, 6to4, NAT64, Teredo's client)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in found if address is not None]


def _obsolete(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """IPv6 space Python still counts as global but no public host lives in: site-local
    (fec0::/10) and the reserved ::/8 (IPv4-compatible ``::127.0.0.1``, local-use NAT64) — NAT64's
    well-known prefix aside, whose IPv4 address is checked instead."""
    return isinstance(ip, ipaddress.IPv6Address) and (
        ip.is_site_local or (ip.is_reserved and ip not in NAT64))


def _host_name(host: str) -> str:
    """``host`` as the ASCII name DNS would be asked for, or :class:`UnsafeURL` when it is not a
    host name at all (percent-encoding, spaces, backslashes, underscores, characters that only
    look like letters or digits)."""
    try:
        return idna.encode(host.lower(), uts46=False, std3_rules=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise UnsafeURL(f"{host!r} is not a valid host name") from None


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP written in any form browsers and resolvers accept (``2130706433``, ``0x7f.1``,
    ``0177.0.0.1``), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        # inet_aton accepts the legacy forms (decimal, octal, hex, short dotted) exactly as the
        # C resolver would, so it catches every spelling of a private address.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _guarded_connection(base: type, policy: OutboundPolicy) -> type:
    class GuardedConnection(base):  # type: ignore[misc, valid-type]
        def _new_conn(self) -> socket.socket:
            addresses = policy.resolver(self._dns_host, self.port)
            if not addresses:
                raise UnsafeURL(f"{self._dns_host} does not resolve")
            for address in addresses:  # every answer must be acceptable, not just the first
                policy.check_address(address)
            sock = socket.create_connection((addresses[0], self.port), timeout=self.timeout)
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            return sock

    return GuardedConnection


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_pool = type("GuardedHTTPPool", (HTTPConnectionPool,),
                         {"ConnectionCls": _guarded_connection(HTTPConnection, self._policy)})
        https_pool = type("GuardedHTTPSPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": _guarded_connection(HTTPSConnection, self._policy)})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


class OutboundSession(requests.Session):
    """A ``requests.Session`` that enforces an :class:`OutboundPolicy` on every request."""

    def __init__(self, policy: OutboundPolicy | None = None) -> None:
        super().__init__()
        self.policy = policy or OutboundPolicy()
        self.trust_env = False  # no proxies or .netrc from the environment
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # none accepted
        adapter = _GuardedAdapter(self.policy)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.policy.check_url(url)
        kwargs["allow_redirects"] = False
        kwargs.setdefault("timeout", (self.policy.connect_timeout, self.policy.read_timeout))
        kwargs["stream"] = True
        response = super().request(method, url, **kwargs)
        try:
            declared = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            declared = 0
        if declared > self.policy.max_response_bytes:
            response.close()
            raise ResponseTooLarge(f"response of {declared} bytes exceeds the {self.policy.max_response_bytes}-byte limit")
        body = bytearray()
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > self.policy.max_response_bytes:
                response.close()
                raise ResponseTooLarge(f"response exceeds the {self.policy.max_response_bytes}-byte limit")
        response._content = bytes(body)
        response.close()
        return response


#: Sessions a thread keeps, by policy, before it starts afresh (policies are few: one per app
#: configuration, and a test's own).
MAX_SHARED_SESSIONS = 16
_shared = threading.local()


def shared_session(policy: OutboundPolicy) -> OutboundSession:
    """This thread's session for ``policy``, kept between calls so its connections stay open:
    a connection per call costs a TCP (and, over https, a TLS) handshake and a DNS lookup each
    time, for DropStream and for the remote. Callers pass their credentials per request and
    never close it. One per thread, as ``requests`` sessions are not made for sharing
    between threads; a connection is still opened only to an address the policy accepted."""
    sessions: dict[tuple[OutboundPolicy, Resolver], OutboundSession] = \
        _shared.__dict__.setdefault("sessions", {})
    key = (policy, policy.resolver)  # the resolver is not part of a policy's equality
    session = sessions.get(key)
    if session is None:
        if len(sessions) >= MAX_SHARED_SESSIONS:
            for old in sessions.values():
                old.close()
            sessions.clear()
        session = sessions[key] = OutboundSession(policy)
    return session


def app_policy(app: Any = None, **overrides: Any) -> OutboundPolicy:
    """The policy for the current app: loopback sandboxes only where the app allows them."""
    from flask import current_app

    config = (app or current_app).config
    return OutboundPolicy(allow_loopback=bool(config.get("ALLOW_LOOPBACK")), **overrides)
