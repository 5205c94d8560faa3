"""Creating providers, merchants, users and API keys; checking passwords and keys."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from dropstream.db import utcnow
from dropstream.errors import Conflict, ValidationFailed
from dropstream.security.keys import generate_api_key, key_matches, key_prefix
from dropstream.tenants.models import ApiKey, Merchant, Provider, Role, User
from dropstream.tenants.scope import unscoped

#: Compared against when no user matches, so an unknown e-mail takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")
MIN_PASSWORD_LENGTH = 12
LAST_USED_RESOLUTION = timedelta(minutes=1)


def create_provider(session: Session, name: str, slug: str | None = None) -> Provider:
    slug = slug or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "provider"
    if session.scalar(select(Provider.id).where(Provider.slug == slug)) is not None:
        raise Conflict(f"A provider with slug {slug!r} exists already.", fields={"slug": ["taken"]})
    provider = Provider(name=name, slug=slug)
    session.add(provider)
    session.flush()
    return provider


def create_merchant(session: Session, provider: Provider, name: str, contact_email: str | None = None) -> Merchant:
    merchant = Merchant(provider_id=provider.id, name=name, contact_email=contact_email)
    session.add(merchant)
    session.flush()
    return merchant


def create_user(
    session: Session, *, provider: Provider, email: str, role: Role, password: str | None,
    merchant: Merchant | None = None, name: str = "",
) -> User:
    email = email.strip().lower()
    if role.is_provider and merchant is not None:
        raise ValidationFailed("Provider users do not belong to a merchant.", fields={"merchant_id": ["must be empty for provider roles"]})
    if not role.is_provider and merchant is None:
        raise ValidationFailed("Merchant users need a merchant.", fields={"merchant_id": ["required for merchant roles"]})
    if merchant is not None and merchant.provider_id != provider.id:
        raise ValidationFailed("The merchant belongs to another provider.", fields={"merchant_id": ["unknown merchant"]})
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
            fields={"password": [f"at least {MIN_PASSWORD_LENGTH} characters"]},
        )
    with unscoped(session):  # e-mails are unique across providers, so look across them
        taken = session.scalar(select(User.id).where(User.email == email)) is not None
    if taken:
        raise Conflict("A user with this e-mail exists already.", fields={"email": ["taken"]})
    user = User(
        provider_id=provider.id, merchant_id=merchant.id if merchant else None, email=email,
        name=name, role=role, password_hash=generate_password_hash(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def authenticate_password(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    return user


def issue_api_key(session: Session, user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key for ``user``; the plaintext is returned once and never stored."""
    plaintext, prefix, key_hash = generate_api_key()
    key = ApiKey(provider_id=user.provider_id, user_id=user.id, name=name, prefix=prefix, key_hash=key_hash)
    session.add(key)
    session.flush()
    return key, plaintext


def authenticate_api_key(session: Session, plaintext: str) -> User | None:
    """The active user behind a bearer key, or None. Constant-time on the hash comparison."""
    prefix = key_prefix(plaintext)
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if prefix else None
    if key is None:
        key_matches(plaintext, "0" * 64)  # same work for unknown prefixes
        return None
    if key.revoked_at is not None or not key_matches(plaintext, key.key_hash):
        return None
    if not key.user.is_active:
        return None
    now = utcnow()
    # Stamped at most once a minute: a write on every request would cost each GET a commit.
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
        key.last_used_at = now
    return key.user
