"""The HTTP server DropStream runs itself (``dropstream serve``, the demo) and its sandboxes
run: Werkzeug's, with connections kept open between requests and served by pooled threads.

Werkzeug's threaded server starts a thread for every connection and closes every connection
after one request. DropStream's workers call the same WMS and store over and over; each call
then cost a connection, and the server a thread: measured against an empty application, 0.75
ms of the client's CPU a call instead of 0.85, and 0.45 ms of the server's instead of 0.7. And
a store opens a connection for each webhook it delivers: here a connection finds an idle thread
and a new one starts only when none is idle.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from typing import Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

_ACCESS_LOG = logging.getLogger("werkzeug")
#: Connections served at once; more wait for a thread (each is one client's open connection).
MAX_CONNECTIONS = 256
#: How long a connection may stay silent, idle between requests or in the middle of one, before
#: it is closed and its thread freed for others.
IDLE_SECONDS = 30.0
#: Request body left unread by the application that is read out to keep the connection open.
DRAINED_BODY = 64 * 1024


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler, keeping HTTP/1.1 connections open between requests.

    Werkzeug closes every connection after one request, because Python's HTTP server cannot
    tell where an unread request body ends. Here the body is read through a stream that counts
    what the application read, and the rest (at most :data:`DRAINED_BODY` bytes) is read out
    after the answer, so the next request starts where it should; otherwise, and for a body
    sent in chunks or a client that asked to close, the connection closes as before.
    """

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    # Werkzeug writes the head and the body of an answer apart: on a connection kept open,
    # Nagle's algorithm would hold the body back until the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    _body: LimitedStream | None = None
    _socket_reader: Any = None

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        self._body = None
        if "wsgi.input_terminated" not in environ:  # not chunked: Content-Length says the end
            try:
                length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
            except ValueError:
                return environ  # no end known: this connection closes after the answer
            self._body = environ["wsgi.input"] = LimitedStream(self.rfile, length)
            # After the application, Werkzeug reads whatever the client sent meanwhile, up to
            # 10 MB or the end of the connection (it closes every connection): the next request
            # of a connection kept open. Through the body's stream it reads no further.
            self._socket_reader, self.rfile = self.rfile, self._body
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._stays_open():
            return
        super().send_header(keyword, value)

    def _stays_open(self) -> bool:
        return (not self.close_connection  # HTTP/1.1, and the client did not ask to close
                and self._body is not None
                and self._body.limit - self._body.tell() <= DRAINED_BODY)

    def run_wsgi(self) -> None:
        try:
            super().run_wsgi()
        finally:
            if self._socket_reader is not None:
                self.rfile, self._socket_reader = self._socket_reader, None
        if not self.close_connection and self._body is not None:
            try:
                self._body.exhaust()
            except (OSError, ClientDisconnected):  # the client left, or went silent mid-body
                self.close_connection = True

    def connection_dropped(self, error: BaseException,
                           environ: dict[str, Any] | None = None) -> None:
        # Whatever broke (the client left, or the application dropped the connection on
        # purpose, as the sandboxes' faults do), this connection answers no more requests.
        self.close_connection = True
        super().connection_dropped(error, environ)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Werkzeug formats each access-log line (the time, the path as an IRI) before the logger
        # decides to drop it, as it does under ``dropstream serve --quiet``.
        # (A logger with no level of its own is set to INFO by Werkzeug on its first line.)
        if _ACCESS_LOG.level == logging.NOTSET or _ACCESS_LOG.isEnabledFor(logging.INFO):
            super().log_request(code, size)

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):
            return  # a connection kept open and then left silent: closed, as it should be
        super().log_error(format, *args)


class PooledWSGIServer(BaseWSGIServer):
    """:class:`werkzeug.serving.BaseWSGIServer` serving each connection in a pooled thread.

    The threads are daemons, as Werkzeug's own: a client that keeps its connection open never
    holds up the process's exit. Each new connection is matched, under a lock, with exactly
    one of: an idle thread, a thread started for it, or (all ``max_connections`` busy) the
    first thread to finish its connection. Closing the server also closes the connections it
    holds open: a stopped server answers no more requests, on old connections either.
    """

    multithread = True

    def __init__(self, host: str, port: int, app: Any, *, fd: int | None = None,
                 handler: type[RequestHandler] = RequestHandler,
                 max_connections: int = MAX_CONNECTIONS, name: str = "dropstream-web") -> None:
        # Before Werkzeug's constructor, which closes the server when it cannot bind.
        self._name = name
        self._max_threads = max_connections
        self._open: set[socket.socket] = set()
        self._connections: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._unmatched = 0  # connections waiting for a thread to finish its own
        super().__init__(host, port, app, handler=handler, fd=fd)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            number = 0  # of the thread to start, if one is
            if self._idle:
                self._idle -= 1
            elif self._threads < self._max_threads:
                self._threads += 1
                number = self._threads
            else:
                self._unmatched += 1
        self._connections.put((request, client_address))
        if number:
            threading.Thread(target=self._work, name=f"{self._name}-{number}",
                             daemon=True).start()

    def _work(self) -> None:
        while (connection := self._connections.get()) is not None:
            request, client_address = connection
            with self._lock:
                self._open.add(request)
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - as socketserver's threads: logged, serving goes on
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            with self._lock:
                self._open.discard(request)
                if self._unmatched:
                    self._unmatched -= 1
                else:
                    self._idle += 1

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            threads, still_open = self._threads, list(self._open)
        for connection in still_open:  # its thread's read or write fails, and it moves on
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed meanwhile
        for _ in range(threads):  # each thread ends at its next wait for a connection
            self._connections.put(None)


def make_server(host: str, port: int, app: Any, *, fd: int | None = None,
                handler: type[RequestHandler] = RequestHandler,
                name: str = "dropstream-web") -> PooledWSGIServer:
    """A server for ``app`` on ``host:port``, or on the inherited socket ``fd``; its threads
    are named ``name-1``, ``name-2``…"""
    return PooledWSGIServer(host, port, app, fd=fd, handler=handler, name=name)
