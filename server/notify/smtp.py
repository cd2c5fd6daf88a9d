"""Sending one e-mail through the configured SMTP relay (TLS as configured): the notification
dispatcher's deliveries and the accounts' one-time codes (registration, lost password)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.notify.dispatch import MailSettings


def send_mail(mail: MailSettings, message: EmailMessage) -> None:
    """Sends the message; raises smtplib's errors (and OSError) as the relay answers."""
    context = ssl.create_default_context(cafile=mail.ca_file or None)
    if mail.tls == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            mail.host, mail.port, timeout=mail.timeout_seconds, context=context
        )
    else:
        client = smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout_seconds)
    with client:
        if mail.tls == "starttls":
            client.starttls(context=context)
        if mail.user:
            client.login(mail.user, mail.password)
        client.send_message(message)


def mail_text(mail: MailSettings, to: str, subject: str, text: str) -> None:
    """Sends a plain-text e-mail from the configured sender."""
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    send_mail(mail, message)
