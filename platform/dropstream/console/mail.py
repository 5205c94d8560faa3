"""Sending DropStream's e-mails (invitations, alert digests) through ``SMTP_URL``.

``smtp://user:password@host:587`` speaks STARTTLS when the server offers it; ``smtps://`` is TLS
from the first byte. Without ``SMTP_URL`` nothing is sent and :func:`send_mail` says so, so the
caller can show the link instead. A mail's body may hold a secret link: it is never logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from flask import current_app

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 15


class MailError(RuntimeError):
    """The mail server refused or could not be reached (the message names the server only)."""


def mail_configured() -> bool:
    return bool(current_app.config.get("SMTP_URL"))


def send_mail(to: list[str], subject: str, body: str) -> bool:
    """Send one plain-text message. Returns False when no mail server is configured.

    :raises MailError: the server could not be reached or refused the message.
    """
    url = current_app.config.get("SMTP_URL")
    if not url:
        return False
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailError("SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465.")
    message = EmailMessage()
    message["From"] = current_app.config.get("MAIL_FROM") or "dropstream@localhost"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    where = f"{parts.hostname}:{parts.port or (465 if parts.scheme == 'smtps' else 25)}"
    try:
        if parts.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(parts.hostname, parts.port or 465,
                                                    timeout=TIMEOUT_SECONDS,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=TIMEOUT_SECONDS)
        with client:
            if parts.scheme == "smtp":
                client.ehlo()
                if client.has_extn("starttls"):
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        # The error names the server, never the message (which may hold a sign-in link).
        raise MailError(f"The mail server {where} failed: {type(error).__name__}.") from None
    log.info("mail sent to %d recipient(s) through %s", len(to), where)
    return True
