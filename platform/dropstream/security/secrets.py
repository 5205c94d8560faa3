"""Credentials and tokens encrypted at rest with Fernet, rotated with MultiFernet.

Each sealed value is bound to a *context* (the owning table and tenant) inside the ciphertext, so a
ciphertext copied into another tenant's row fails to open instead of leaking across tenants.
The first key in ``ENCRYPTION_KEYS`` encrypts; every key decrypts; ``rotate`` re-encrypts a value
under the first key so an old key can be removed afterwards.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretError(Exception):
    """A sealed value could not be opened (wrong key, tampered, or another row's ciphertext)."""


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("SecretBox needs at least one key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, value: dict[str, Any], context: str) -> str:
        envelope = json.dumps({"c": context, "v": value}, separators=(",", ":"))
        return self._fernet.encrypt(envelope.encode()).decode()

    def open(self, token: str, context: str) -> dict[str, Any]:
        try:
            envelope = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            raise SecretError("stored credentials cannot be decrypted with the configured keys") from None
        if envelope.get("c") != context:
            raise SecretError("stored credentials belong to another record")
        return envelope["v"]

    def rotate(self, token: str) -> str:
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretError("stored credentials cannot be decrypted with the configured keys") from None


def mask(value: str | None, keep: int = 4) -> str:
    """Show only the last few characters of a secret, for messages that must refer to one."""
    if not value:
        return ""
    return "…" + value[-keep:] if len(value) > keep * 2 else "…"
