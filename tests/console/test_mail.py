"""Invitations and alert digests, received by a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest

from dropstream.alerts.services import raise_alert
from dropstream.console.models import AlertDigestPreference
from dropstream.extensions import db
from dropstream.jobs.models import OutboxItem
from dropstream.tenants.models import Role, User
from dropstream.testing.jobs import make_due, run_until_idle
from tests.console.conftest import Console, signed_in, text


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(app_config: dict[str, object]) -> Iterator[Inbox]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app_config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    try:
        yield inbox
    finally:
        controller.stop()


def test_an_invitation_is_mailed_and_works_once(smtp, client, tenant):
    admin = signed_in(client, tenant, Role.PROVIDER_ADMIN)
    response = admin.post("/console/users/invite", {"email": "New.Packer@Acme.test", "role": "merchant_viewer",
                                                     "merchant_id": str(tenant.merchant.id)})
    assert response.status_code == 302
    assert "Invitation e-mailed to new.packer@acme.test" in text(admin.get("/console/users"))
    (mail,) = smtp.messages
    assert mail["To"] == "new.packer@acme.test"
    link = re.search(r"http://\S+/console/invitations/(\S+)", mail.get_payload(decode=True).decode()).group(0)
    path = "/console/invitations/" + link.rsplit("/", 1)[1]
    admin.post("/console/sign-out")

    guest = Console(client)
    assert "Choose your password" in text(guest.get(path))
    response = guest.post(path, {"name": "Nia", "password": "short", "password_again": "short"})
    assert response.status_code == 422 and "at least 12 characters" in text(response)
    assert 'value="Nia"' in text(response)
    password = "a long enough password"
    response = guest.post(path, {"name": "Nia", "password": password, "password_again": password})
    assert response.status_code == 302
    user = db.session.query(User).filter_by(email="new.packer@acme.test").one()
    assert user.role is Role.MERCHANT_VIEWER and user.merchant_id == tenant.merchant.id
    assert guest.get("/console/orders").status_code == 200  # signed in as the new user
    guest.post("/console/sign-out")
    assert Console(client).get(path).status_code == 404  # used up


def test_without_a_mail_server_the_link_is_shown_to_the_admin_once(client, tenant):
    admin = signed_in(client, tenant, Role.PROVIDER_ADMIN)
    admin.post("/console/users/invite", {"email": "staff@acme.test", "role": "provider_staff"})
    page = text(admin.get("/console/users"))
    assert "No mail server is configured" in page and "/console/invitations/" in page
    assert "/console/invitations/" not in text(admin.get("/console/users"))  # shown once


def test_invitation_form_errors_keep_the_input(client, tenant):
    admin = signed_in(client, tenant, Role.PROVIDER_ADMIN)
    response = admin.post("/console/users/invite", {"email": "not-an-address", "role": "merchant_admin"})
    assert response.status_code == 422
    page = text(response)
    assert "Enter an e-mail address" in page and "Choose the merchant" in page
    assert 'value="not-an-address"' in page


def test_alerts_opening_together_make_one_digest(smtp, app, tenant):
    for role in (Role.PROVIDER_STAFF, Role.MERCHANT_ADMIN):
        user = tenant.users[role]
        db.session.add(AlertDigestPreference(provider_id=user.provider_id, user_id=user.id,
                                             merchant_id=user.merchant_id))
    db.session.commit()
    owned = {"provider_id": tenant.provider.id, "merchant_id": tenant.merchant.id, "store_id": tenant.store.id}
    for reason in ("unknown_sku", "no_sku", "unmapped_shipping_method"):
        raise_alert(db.session, **owned, group_key=f"store:{tenant.store.id}:hold:{reason}",
                    code=f"hold_{reason}", message=f"Orders are on hold: {reason}", severity="warning")
        db.session.commit()
    assert db.session.query(OutboxItem).filter_by(kind="alerts.digest").count() == 1
    run_until_idle(channels=False)
    assert smtp.messages == []  # the batch window is still open
    make_due()
    run_until_idle(channels=False)
    (mail,) = smtp.messages
    body = mail.get_payload(decode=True).decode()
    assert "3 new alerts" in body and "unmapped_shipping_method" in body
    assert set(mail["To"].split(", ")) == {tenant.users[Role.PROVIDER_STAFF].email,
                                           tenant.users[Role.MERCHANT_ADMIN].email}
    # Already notified: another digest run sends nothing new.
    raise_alert(db.session, **owned, group_key=f"store:{tenant.store.id}:hold:unknown_sku",
                code="hold_unknown_sku", message="again", severity="warning")
    db.session.commit()
    make_due()
    run_until_idle(channels=False)
    assert len(smtp.messages) == 1


def test_the_digest_preference_is_per_user(client, tenant):
    console = signed_in(client, tenant, Role.MERCHANT_VIEWER)
    assert console.post("/console/account", {"digest": "on"}).status_code == 302
    assert "checked" in text(console.get("/console/account"))
    preference = db.session.query(AlertDigestPreference).one()
    assert preference.user_id == tenant.users[Role.MERCHANT_VIEWER].id
