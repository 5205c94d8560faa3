"""A tiny local webhook receiver: records every POST the sandbox delivers.

For tests and benchmarks that need to see deliveries without running DropStream::

    with WebhookReceiver() as receiver:
        ...  # create a hook with destination receiver.url
        assert receiver.wait_for(1)
        receiver.received[0]["json"]["scope"]

``status`` is what it answers (``503``: a receiver that is down but reachable).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any, Self

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from .server import QuietRequestHandler


class WebhookReceiver:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        with self._cond:
            self.received.append({"path": request.full_path.rstrip("?"), "method": request.method,
                                  "headers": dict(request.headers), "body": body,
                                  "json": parsed, "time": time.time(), "answered": self.status})
            self._cond.notify_all()
            status = self.status
        return Response(status=status)(environ, start_response)

    def start(self, host: str = "127.0.0.1") -> str:
        self._server = make_server(host, 0, self, threaded=True,
                                   request_handler=QuietRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        self.url = f"http://{host}:{self._server.port}/webhooks"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            assert self._thread is not None
            self._thread.join()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` deliveries arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
