"""Signing in and out, accepting an invitation, and one's own account (alert digests)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

from dropstream.console.access import bp, current_user, start_session
from dropstream.console.forms import Form
from dropstream.console.invitations import accept, find_open
from dropstream.console.models import AlertDigestPreference
from dropstream.errors import AppError
from dropstream.extensions import db
from dropstream.tenants.scope import unscoped
from dropstream.tenants.services import authenticate_password


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("console.dashboard")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    form = Form()
    if request.method == "POST":
        form = Form.posted("password")
        email = form.value("email").strip()
        password = request.form.get("password", "")
        if not email:
            form.errors["email"] = ["Enter your e-mail address."]
        if not password:
            form.errors["password"] = ["Enter your password."]
        if form.ok:
            with unscoped(db.session):
                user = authenticate_password(db.session, email[:320], password[:1024])
            if user is not None:
                start_session(user)
                return redirect(_safe_next(request.args.get("next")))
            form.message = "Wrong e-mail or password."
        db.session.rollback()
        return render_template("console/sign_in.html", form=form), 401 if form.message else 422
    return render_template("console/sign_in.html", form=form)


@bp.route("/sign-out", methods=["POST"])
def sign_out() -> Any:
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("console.sign_in"))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Any:
    invitation = find_open(db.session, token)
    if invitation is None:
        return render_template("console/error.html", status=404, title="This invitation cannot be used",
                               message="It was used already, has expired, or the link is incomplete. "
                                       "Ask for a new one."), 404
    form = Form(values={"name": ""})
    if request.method == "POST":
        form = Form.posted("password", "password_again")
        password = request.form.get("password", "")
        if password != request.form.get("password_again", ""):
            form.errors["password_again"] = ["The two passwords differ."]
        else:
            try:
                user = accept(db.session, invitation, name=form.value("name"), password=password)
                db.session.commit()
            except AppError as error:
                db.session.rollback()
                form.fail(error)
            else:
                start_session(user)
                flash(f"Welcome, {user.name or user.email}.")
                return redirect(url_for("console.dashboard"))
        return render_template("console/accept.html", invitation=invitation, form=form), 422
    return render_template("console/accept.html", invitation=invitation, form=form)


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    user = current_user()
    preference = db.session.scalar(select(AlertDigestPreference).where(
        AlertDigestPreference.user_id == user.id))
    if request.method == "POST":
        wanted = request.form.get("digest") == "on"
        if preference is None:
            preference = AlertDigestPreference(provider_id=user.provider_id, user_id=user.id,
                                               merchant_id=user.merchant_id)
            db.session.add(preference)
        preference.enabled = wanted
        db.session.commit()
        flash("Alert e-mails switched " + ("on: you get one digest when new alerts open."
                                           if wanted else "off."))
        return redirect(url_for("console.account"))
    return render_template("console/account.html",
                           digest=bool(preference and preference.enabled))
