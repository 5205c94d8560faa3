"""API keys: random (256 bits), shown once, stored as a SHA-256 hash with a public prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_MARK = "ds_"
PREFIX_LENGTH = 10


def generate_api_key() -> tuple[str, str, str]:
    """Return ``(plaintext, prefix, hash)``; only the prefix and hash are stored."""
    body = secrets.token_urlsafe(32)  # 32 random bytes = 256 bits
    plaintext = f"{KEY_MARK}{body}"
    return plaintext, plaintext[: len(KEY_MARK) + PREFIX_LENGTH], hash_api_key(plaintext)


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_prefix(plaintext: str) -> str | None:
    if not plaintext.startswith(KEY_MARK) or len(plaintext) < len(KEY_MARK) + PREFIX_LENGTH + 20:
        return None
    return plaintext[: len(KEY_MARK) + PREFIX_LENGTH]


def key_matches(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(plaintext), stored_hash)
