"""Inviting provider staff and merchant users by an e-mailed, single-use, expiring link."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropstream.console.models import Invitation
from dropstream.db import utcnow
from dropstream.errors import Conflict, NotFound, ValidationFailed
from dropstream.tenants import services as tenants
from dropstream.tenants.models import Merchant, Provider, Role, User
from dropstream.tenants.scope import TenantScope, unscoped

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(session: Session, scope: TenantScope, inviter: User, *, email: str, role: Role,
           merchant_id: int | None, days: int) -> tuple[Invitation, str]:
    """Record an invitation; returns it with the plaintext token (for the link, shown once).

    :raises ValidationFailed: a bad e-mail, or a merchant missing for a merchant role.
    :raises Conflict: a user with this e-mail exists already.
    """
    email = email.strip().lower()
    fields: dict[str, list[str]] = {}
    if not EMAIL.match(email) or len(email) > 320:
        fields["email"] = ["Enter an e-mail address like name@example.com."]
    merchant = None
    if role.is_provider:
        merchant_id = None
    elif merchant_id is None:
        fields["merchant_id"] = ["Choose the merchant this user belongs to."]
    else:
        try:
            merchant = scope.get(session, Merchant, merchant_id)
        except NotFound:
            fields["merchant_id"] = ["No such merchant."]
    if fields:
        raise ValidationFailed("The invitation could not be sent: some fields are invalid.",
                               fields=fields)
    with unscoped(session):  # e-mails are unique across providers
        taken = session.scalar(select(User.id).where(User.email == email)) is not None
    if taken:
        raise Conflict("A user with this e-mail exists already.",
                       fields={"email": ["Already a user."]})
    token = secrets.token_urlsafe(32)
    invitation = Invitation(provider_id=scope.provider_id, email=email, role=role,
                            merchant_id=merchant.id if merchant else None,
                            token_hash=token_hash(token), invited_by_id=inviter.id,
                            expires_at=utcnow() + timedelta(days=days))
    session.add(invitation)
    session.flush()
    return invitation, token


def find_open(session: Session, token: str) -> Invitation | None:
    """The unused, unexpired invitation behind ``token`` (looked up across tenants: the token is
    the credential), or None."""
    if not token or len(token) > 200:
        return None
    with unscoped(session):
        invitation = session.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))
    if invitation is None or invitation.used_at is not None or invitation.expires_at < utcnow():
        return None
    return invitation


def accept(session: Session, invitation: Invitation, *, name: str, password: str) -> User:
    """Create the invited user with the chosen password and use the invitation up.

    :raises ValidationFailed: the password is too short (the message says how long).
    """
    with unscoped(session):
        provider = session.get(Provider, invitation.provider_id)
        merchant = session.get(Merchant, invitation.merchant_id) if invitation.merchant_id else None
        user = tenants.create_user(session, provider=provider, email=invitation.email,
                                   role=invitation.role, password=password, merchant=merchant,
                                   name=name.strip()[:200])
        invitation.used_at = utcnow()
    return user
