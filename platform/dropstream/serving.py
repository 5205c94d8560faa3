"""The HTTP server DropStream runs itself (``dropstream serve`` and the demo): Werkzeug's, each
connection served by a thread kept from earlier connections.

Werkzeug's threaded server starts a thread for every connection and lets it end with it. Stores
open a connection for each webhook they deliver, and an order brings three, so at capacity
starting threads cost about a third of the server's own CPU per request (0.3 of 0.7 ms,
measured with an empty application). Here a pool keeps its threads: a connection finds an idle
one, and a new thread starts only when none is idle.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

_ACCESS_LOG = logging.getLogger("werkzeug")
#: Connections served at once; more wait for a thread (each is one client's open connection).
MAX_CONNECTIONS = 256
#: How long a connection may stay silent, idle between requests or in the middle of one, before
#: its thread is freed for others.
IDLE_SECONDS = 60.0


class _RequestHandler(WSGIRequestHandler):
    timeout = IDLE_SECONDS

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Werkzeug formats each access-log line (the time, the path as an IRI) before the logger
        # decides to drop it, as it does under ``dropstream serve --quiet``.
        # (A logger with no level of its own is set to INFO by Werkzeug on its first line.)
        if _ACCESS_LOG.level == logging.NOTSET or _ACCESS_LOG.isEnabledFor(logging.INFO):
            super().log_request(code, size)


class PooledWSGIServer(BaseWSGIServer):
    """:class:`werkzeug.serving.BaseWSGIServer` serving each connection in a pooled thread.

    The threads are daemons, as Werkzeug's own: a client that keeps its connection open never
    holds up the process's exit. Each new connection is matched, under a lock, with exactly
    one of: an idle thread, a thread started for it, or (all ``max_connections`` busy) the
    first thread to finish its connection.
    """

    multithread = True  # also what makes Werkzeug speak HTTP/1.1 (keep-alive)

    def __init__(self, host: str, port: int, app: Any, *, fd: int | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        # Before Werkzeug's constructor, which closes the server when it cannot bind.
        self._max_threads = max_connections
        self._connections: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._unmatched = 0  # connections waiting for a thread to finish its own
        super().__init__(host, port, app, handler=_RequestHandler, fd=fd)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            start = False
            if self._idle:
                self._idle -= 1
            elif self._threads < self._max_threads:
                self._threads += 1
                start = True
            else:
                self._unmatched += 1
        self._connections.put((request, client_address))
        if start:
            threading.Thread(target=self._work, name=f"dropstream-web-{self._threads}",
                             daemon=True).start()

    def _work(self) -> None:
        while (connection := self._connections.get()) is not None:
            request, client_address = connection
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - as socketserver's threads: logged, serving goes on
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            with self._lock:
                if self._unmatched:
                    self._unmatched -= 1
                else:
                    self._idle += 1

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            threads = self._threads
        for _ in range(threads):  # each thread ends at its next wait for a connection
            self._connections.put(None)


def make_server(host: str, port: int, app: Any, *, fd: int | None = None) -> PooledWSGIServer:
    """DropStream's web server for ``app`` on ``host:port``, or on the inherited socket ``fd``."""
    return PooledWSGIServer(host, port, app, fd=fd)
