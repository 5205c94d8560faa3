"""People: the provider's users and invitations (provider admins only)."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for

from dropstream.console.access import bp, current_user, provider_admin_only, scope
from dropstream.console.forms import Form
from dropstream.console.invitations import invite
from dropstream.console.mail import MailError, send_mail
from dropstream.console.models import Invitation
from dropstream.db import utcnow
from dropstream.errors import AppError, ValidationFailed
from dropstream.extensions import db
from dropstream.tenants.models import Merchant, Role, User

ROLE_NAMES = {
    Role.PROVIDER_ADMIN: "Provider admin: everything, including users and queues",
    Role.PROVIDER_STAFF: "Provider staff: every merchant's stores and orders",
    Role.MERCHANT_ADMIN: "Merchant admin: one merchant's stores and orders",
    Role.MERCHANT_VIEWER: "Merchant viewer: sees one merchant's data, changes nothing",
}


def _page(form: Form, status: int = 200) -> Any:
    session = db.session
    users = session.scalars(scope().select(User).order_by(User.email)).all()
    invitations = session.scalars(scope().select(
        Invitation, Invitation.used_at.is_(None), Invitation.expires_at > utcnow())
        .order_by(Invitation.created_at.desc())).all()
    merchants = session.scalars(scope().select(Merchant).order_by(Merchant.name)).all()
    return render_template("console/users.html", users=users, invitations=invitations,
                           merchants=merchants, roles=ROLE_NAMES, form=form), status


@bp.get("/users")
@provider_admin_only
def users() -> Any:
    return _page(Form(values={"role": Role.MERCHANT_ADMIN.value}))


@bp.post("/users/invite")
@provider_admin_only
def invite_user() -> Any:
    form = Form.posted()
    try:
        try:
            role = Role(form.value("role"))
        except ValueError:
            raise ValidationFailed("Choose a role.", fields={"role": ["Choose a role."]}) from None
        merchant = form.value("merchant_id")
        invitation, token = invite(
            db.session, scope(), current_user(), email=form.value("email"), role=role,
            merchant_id=int(merchant) if merchant.isdigit() else None,
            days=int(current_app.config["CONSOLE_INVITATION_DAYS"]))
        db.session.commit()
    except AppError as error:
        db.session.rollback()
        return _page(form.fail(error), 422)
    link = url_for("console.accept_invitation", token=token, _external=True)
    body = (f"{current_user().name or current_user().email} invites you to DropStream as "
            f"{ROLE_NAMES[invitation.role].split(':')[0].lower()}.\n\nChoose your password here "
            f"(the link works once, for {current_app.config['CONSOLE_INVITATION_DAYS']} days):\n"
            f"{link}\n")
    try:
        sent = send_mail([invitation.email], "Your DropStream invitation", body)
    except MailError as error:
        sent = False
        flash(f"{error} Give {invitation.email} this link yourself instead.", "warning")
    if sent:
        flash(f"Invitation e-mailed to {invitation.email}.")
    else:
        # No mail server: the admin passes the link on. It is shown once and never logged.
        flash(f"No mail server is configured. Send {invitation.email} this link (shown once): "
              f"{link}", "link")
    return redirect(url_for("console.users"))


@bp.post("/users/invitations/<int:invitation_id>/revoke")
@provider_admin_only
def revoke_invitation(invitation_id: int) -> Any:
    invitation = scope().get(db.session, Invitation, invitation_id)
    if invitation.used_at is None:
        invitation.expires_at = utcnow()
        db.session.commit()
    flash(f"The invitation for {invitation.email} no longer works.")
    return redirect(url_for("console.users"))
