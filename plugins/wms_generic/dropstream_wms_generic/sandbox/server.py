"""Running the sandbox: a threaded werkzeug server on a free loopback port, a picker that ships
due orders, a pusher that delivers signed events to DropStream, and the admin operations."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import asdict, fields
from typing import Any, Self

import requests
from werkzeug.serving import BaseWSGIServer

from dropstream.serving import RequestHandler, make_server
from dropstream_wms_generic import protocol, signing
from dropstream_wms_generic.sandbox.app import SandboxApp
from dropstream_wms_generic.sandbox.faults import Faults
from dropstream_wms_generic.sandbox.state import PushTarget, SandboxError, Settings, WmsState

log = logging.getLogger(__name__)
PUSH_TIMEOUT = (3.0, 10.0)
MAX_PUSH_ATTEMPTS = 20


class _QuietHandler(RequestHandler):
    """No access log on stderr (tests and the demo have their own output)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug("wms sandbox %s: " + message, type, *args)


class WmsSandbox:
    """The reference WMS. ``with WmsSandbox(ship_delay=5) as wms:`` serves it at ``wms.url``.

    :param host: loopback address to listen on.
    :param port: 0 for a free port.
    :param auto: run the picker and pusher in the background every ``tick`` seconds; False
        leaves them to :meth:`advance` and :meth:`deliver_pushes` (deterministic tests).
    :param settings: initial :class:`~dropstream_wms_generic.sandbox.state.Settings` fields
        (``dedupe``, ``ship_delay``, ``partial_ratio``, ``strict_skus``, ``auto_ship``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auto: bool = True,
        tick: float = 0.5,
        seed: int = 7,
        **settings: Any,
    ) -> None:
        self.host, self.port = host, port
        self.auto, self.tick = auto, tick
        self.state = WmsState(seed=seed)
        self.faults = Faults(rng=random.Random(seed))
        self.configure(**settings)
        self.app = SandboxApp(self)
        self._server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._push_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The protocol's base URL (a connector's ``settings.base_url``)."""
        if self._server is None:
            raise RuntimeError("start the sandbox first")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> Self:
        self._server = make_server(self.host, self.port, self.app, handler=_QuietHandler,
                                   name="wms-sandbox-http")
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="wms-sandbox-http",
                daemon=True,
            )
        ]
        if self.auto:
            self._threads.append(
                threading.Thread(
                    target=self._run_background, name="wms-sandbox-picker", daemon=True
                )
            )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_background(self) -> None:
        while not self._stopping.wait(self.tick):
            try:
                self.advance()
                self.deliver_pushes()
            except Exception:  # a bad round must not stop the picker
                log.exception("wms sandbox background round failed")

    # -- admin: accounts, stock, orders ----------------------------------------------------------

    def add_account(self, code: str, name: str = "") -> dict[str, Any]:
        """Add a customer account (a merchant at this WMS)."""
        account = self.state.add_account(code, name)
        return {"code": account["code"], "name": account["name"]}

    def set_stock(self, account: str, levels: dict[str, int]) -> dict[str, int]:
        """Set on-hand units per SKU of ``account`` (creating the account if needed)."""
        if not isinstance(levels, dict) or not all(isinstance(q, int) for q in levels.values()):
            raise ValueError("levels must map SKUs to whole numbers")
        self.state.set_stock(account, levels)
        return self.stock(account)

    def stock(self, account: str) -> dict[str, int]:
        with self.state.lock:
            return {sku: level[0] for sku, level in self.state.account(account)["stock"].items()}

    def ship(
        self, reference: str, account: str | None = None, lines: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Ship an order now: all that is left, or ``{line_reference: units}`` (a partial)."""
        return dict(self.state.ship(reference, account, lines))

    def advance(self) -> list[dict[str, Any]]:
        """Ship every parcel that is due (what the picker does every tick)."""
        return self.state.advance()

    def orders(
        self, reference: str | None = None, account: str | None = None
    ) -> list[dict[str, Any]]:
        with self.state.lock:
            return [
                {
                    "id": o["id"],
                    "reference": o["reference"],
                    "account": o["account"],
                    "status": o["status"],
                    "ship_method": o["ship_method"],
                    "created_at": protocol.format_time(o["created_at"]),
                    "lines": [dict(line) for line in o["lines"]],
                }
                for o in self.state.orders
                if reference in (None, o["reference"]) and account in (None, o["account"])
            ]

    def shipments(
        self, reference: str | None = None, account: str | None = None
    ) -> list[dict[str, Any]]:
        with self.state.lock:
            return [
                dict(s)
                for s in self.state.shipments
                if reference in (None, s["reference"]) and account in (None, s["account"])
            ]

    def set_ship_methods(self, items: list[dict[str, str]]) -> list[dict[str, str]]:
        """Replace the ship-method catalogue (``[{"code", "name", "carrier"}]``)."""
        if not all(isinstance(i, dict) and i.get("code") for i in items):
            raise ValueError("each ship method needs a code")
        with self.state.lock:
            self.state.ship_methods = [
                {
                    "code": i["code"],
                    "name": i.get("name", i["code"]),
                    "carrier": i.get("carrier", "UPS"),
                }
                for i in items
            ]
            return list(self.state.ship_methods)

    # -- admin: behaviour --------------------------------------------------------------------------

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change behaviour: ``dedupe``, ``ship_delay``, ``partial_ratio``, ``strict_skus``,
        ``auto_ship``."""
        known = {f.name: f.type for f in fields(Settings)}
        for name, value in settings.items():
            if name not in known:
                raise ValueError(f"unknown setting {name!r}; use one of {', '.join(known)}")
            current = getattr(self.state.settings, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise TypeError(f"{name} must be true or false")
            elif not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of at least 0")
            setattr(self.state.settings, name, value)
        return asdict(self.state.settings)

    def set_credentials(self, **credentials: str) -> dict[str, str]:
        """Change what the WMS accepts (``token``, ``username``, ``password``, ``api_key``,
        ``api_key_header``); returns the field names set, never their values."""
        allowed = {"token", "username", "password", "api_key", "api_key_header"}
        unknown = set(credentials) - allowed
        if unknown:
            raise ValueError(f"unknown credential fields {sorted(unknown)}")
        self.state.credentials.update({k: str(v) for k, v in credentials.items()})
        return {name: "set" for name, value in self.state.credentials.items() if value}

    def inject(
        self,
        kind: str,
        times: int = 1,
        on: str | None = None,
        status: int = 503,
        retry_after: float | None = None,
        seconds: float = 0.0,
        message: str = "Injected fault.",
        probability: float | None = None,
    ) -> dict[str, Any]:
        """Fail the next ``times`` requests (of operation ``on``, or any) — or, with a
        ``probability``, that share of them until ``times`` have failed; see ``faults``."""
        self.faults.inject(
            kind,
            times=times,
            on=on,
            status=status,
            retry_after=retry_after,
            seconds=seconds,
            message=message,
            probability=probability,
        )
        return self.faults.describe()

    def outage(self, seconds: float) -> dict[str, Any]:
        """Answer 503 to every protocol request for ``seconds`` (0 ends an outage)."""
        self.faults.outage(float(seconds))
        return self.faults.describe()

    def clear_faults(self) -> dict[str, Any]:
        self.faults.clear()
        return self.faults.describe()

    def requests(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Protocol requests received, oldest first (``operation``: only those)."""
        return [dict(r) for r in list(self.app.log) if operation in (None, r["operation"])]

    def snapshot(self) -> dict[str, Any]:
        """Everything a run's checker compares, read-only: each account's stock, every order
        (with its lines and status), every shipment, and the protocol request log."""
        with self.state.lock:
            accounts = {
                code: {"stock": {sku: level[0] for sku, level in a["stock"].items()}}
                for code, a in self.state.accounts.items()
            }
        return {
            "accounts": accounts,
            "orders": self.orders(),
            "shipments": self.shipments(),
            "requests": self.requests(),
        }

    def summary(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "url": self.url if self._server else None,
                "accounts": {
                    code: {"name": a["name"], "skus": len(a["stock"])}
                    for code, a in self.state.accounts.items()
                },
                "orders": len(self.state.orders),
                "shipments": len(self.state.shipments),
                "settings": asdict(self.state.settings),
                "faults": self.faults.describe(),
                "push": self.state.push.url if self.state.push else None,
                "pending_pushes": len(self.state.outbox),
            }

    # -- pushes ------------------------------------------------------------------------------------

    def configure_push(self, url: str | None, key: str = "", secret: str = "") -> dict[str, Any]:
        """Push shipments and stock to ``url`` (DropStream's inbound address of one warehouse,
        ``…/connectors/wms_generic/warehouses/<id>``), signed with ``key`` and ``secret``;
        ``url`` None stops pushing."""
        with self.state.lock:
            if url is None:
                self.state.push = None
            elif not (key and secret):
                raise ValueError("pushing needs the warehouse's inbound key and signing secret")
            else:
                self.state.push = PushTarget(url.rstrip("/"), key, secret)
            return {"push": url}

    def push_stock_snapshot(self, account: str) -> dict[str, Any]:
        """Queue a push of ``account``'s whole stock (in events of at most 1,000 SKUs)."""
        self.state.queue_full_stock_push(account)
        return {"pending": len(self.state.outbox)}

    def deliver_pushes(self) -> dict[str, int]:
        """Send every waiting event that is due. A 2xx, or 409 ``duplicate_event``, delivers it;
        400, 413 and 422 (the event itself is refused) drop it; anything else (401 while a
        warehouse is being set up, 5xx, no connection) keeps it for a later round, backing off."""
        counts = {"delivered": 0, "refused": 0, "retrying": 0}
        with self._push_lock:
            with self.state.lock:
                moment = time.monotonic()
                target = self.state.push
                waiting = [e for e in self.state.outbox if e.get("next_at", 0.0) <= moment]
            if target is None or not waiting:
                return counts
            with requests.Session() as session:
                for event in waiting:
                    outcome = self._deliver(session, target, event)
                    counts[outcome] += 1
                    if outcome != "retrying" or event["attempts"] >= MAX_PUSH_ATTEMPTS:
                        with self.state.lock:
                            self.state.outbox.remove(event)
        return counts

    def _deliver(self, session: requests.Session, target: PushTarget, event: dict[str, Any]) -> str:
        body = json.dumps(event["body"], separators=(",", ":")).encode()
        event["attempts"] += 1
        record = {
            "event_id": event["body"]["event_id"],
            "path": event["path"],
            "attempt": event["attempts"],
        }
        try:
            response = session.post(
                f"{target.url}/{event['path']}",
                data=body,
                timeout=PUSH_TIMEOUT,
                headers=signing.sign(target.key, target.secret, body),
                allow_redirects=False,
            )
            record.update(status=response.status_code, answer=response.text[:500])
            response.close()
        except requests.RequestException as error:
            record.update(status=None, answer=f"{type(error).__name__}")
        with self.state.lock:
            self.state.pushed.append(record)
        status = record["status"]
        if status is not None and (
            200 <= status < 300 or (status == 409 and "duplicate_event" in record["answer"])
        ):
            return "delivered"
        if status in (400, 413, 422):
            return "refused"
        event["next_at"] = time.monotonic() + min(30.0, 0.25 * 2 ** event["attempts"])
        return "retrying"

    def pushes(self) -> list[dict[str, Any]]:
        """Every push attempt, oldest first, with DropStream's status and answer."""
        with self.state.lock:
            return [dict(p) for p in self.state.pushed]


__all__ = ["SandboxError", "WmsSandbox"]
