"""Helpers for code that drives the sandbox over HTTP in tests and benchmarks.

``new_store`` makes a store with an API account; ``StoreClient`` is a ``requests.Session``
that sends its token and prefixes ``/stores/{hash}`` (close it, or use it in a ``with``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from .core import BigCommerceSandbox


@dataclass
class SandboxStore:
    sandbox: BigCommerceSandbox
    hash: str
    credentials: dict[str, Any]

    @property
    def token(self) -> str:
        return str(self.credentials["access_token"])

    def url(self, path: str) -> str:
        """``/v2/orders`` → the full URL of that path in this store."""
        return f"{self.sandbox.api_base_url}/stores/{self.hash}{path}"

    def client(self, token: str | None = None) -> StoreClient:
        return StoreClient(self, token if token is not None else self.token)


def new_store(sandbox: BigCommerceSandbox, *, scopes: Sequence[str] | None = None,
              plan: str = "standard") -> SandboxStore:
    store_hash = sandbox.create_store(plan=plan)
    return SandboxStore(sandbox, store_hash, sandbox.create_api_account(store_hash, scopes))


class StoreClient(requests.Session):
    def __init__(self, store: SandboxStore, token: str) -> None:
        super().__init__()
        self.store = store
        self.trust_env = False
        self.headers.update({"Accept": "application/json"})
        if token:
            self.headers["X-Auth-Token"] = token

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
                ) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        if text.startswith("/"):
            text = self.store.url(text)
        kwargs.setdefault("timeout", 10)
        return super().request(method, text, *args, **kwargs)
