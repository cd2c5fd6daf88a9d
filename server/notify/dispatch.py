"""Delivery of notifications from the outbox: the API and dashboard channels hold them at once;
e-mail goes through a real SMTP server (TLS as configured), with retries and exponential
backoff, a dead state after the limit, and addresses that bounce flagged once (they receive no
more mail until changed).

An e-mail carries no token: an opaque single-use reference, stored only as its hash, that leads
to sign-in. Its Message-ID is stable per delivery, so a crash between the SMTP server's
acceptance and its recording, which sends it again, is recognised by mail clients.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from opentelemetry import trace
from opentelemetry.trace import Tracer

from registry.notify.store import Due, NotifyStore
from server.background_loop import BackgroundLoop
from server.notify.smtp import send_mail

log = logging.getLogger("interops.notify")
# Held deliveries completed per transaction: a fan-out to 100,000 companies is a few of them.
HELD_BATCH = 25_000


@dataclass(frozen=True)
class MailSettings:
    """Where and how e-mail is sent."""

    host: str = "127.0.0.1"
    port: int = 25
    # "none", "starttls" or "tls" (implicit TLS).
    tls: str = "none"
    # A CA bundle to trust instead of the system's (a private relay's certificate authority).
    ca_file: str = ""
    user: str = ""
    password: str = ""
    sender: str = "notifications@interops.invalid"
    # Links in e-mails point here: <public_url>/n/<reference>.
    public_url: str = "http://127.0.0.1:8080"
    timeout_seconds: float = 10.0


class NotifyDispatcher(BackgroundLoop):
    """Works the outbox every poll interval."""

    name = "notify-dispatch"

    def __init__(
        self,
        store: NotifyStore,
        mail: MailSettings,
        poll_seconds: float,
        *,
        backoff_seconds: float = 30.0,
        max_attempts: int = 6,
        tracer: Tracer | None = None,
        claim_seconds: float = 60.0,
    ) -> None:
        # How long e-mails claimed by this node stay its own (a dead node's go to another).
        self.claim_ms = max(1, int(claim_seconds * 1000))
        self.tracer = tracer or trace.get_tracer("interops.notify")
        self.store = store
        self.mail = mail
        super().__init__(poll_seconds)
        self.backoff_ms = int(backoff_seconds * 1000)
        self.max_attempts = max_attempts

    async def round(self) -> None:
        """Delivers what is due until nothing is."""
        try:
            while await asyncio.to_thread(self.run_once):
                pass
        except Exception:  # the database or the mail server away: next poll
            log.exception("notification delivery failed; retrying")

    def run_once(self) -> int:
        """Attempts what is due now; returns how many deliveries were attempted. A round with
        work is a span, whose trace id the delivered acknowledgements carry (an idle poll makes
        none). Held deliveries (API, dashboard) are delivered in the database, up to
        HELD_BATCH a transaction, without reading them out."""
        held = self.store.held_due()
        mails = self.store.due(100, ("EMAIL",), lease_ms=self.claim_ms)
        if not held and not mails:
            return 0
        with self.tracer.start_as_current_span("notify.dispatch") as span:
            trace_id = f"{span.get_span_context().trace_id:032x}"
            delivered = self.store.deliver_held(HELD_BATCH, trace_id=trace_id) if held else 0
            span.set_attribute("interops.deliveries", delivered + len(mails))
            for item in mails:
                self._email(item, trace_id)
        return delivered + len(mails)

    def _email(self, item: Due, trace_id: str) -> None:
        if not item.email or self.store.flagged(item.email):
            self.store.failed(item, "no usable e-mail address (flagged or none)", retry_in_ms=None)
            return
        reference = secrets.token_urlsafe(32)
        self.store.add_link(item.notification_id, reference)
        message = EmailMessage()
        message["From"] = self.mail.sender
        message["To"] = item.email
        message["Subject"] = item.subject
        message["Message-ID"] = f"<notification-{item.id}@interops>"
        link = f"{self.mail.public_url.rstrip('/')}/n/{reference}"
        message.set_content(f"{item.body}\n\nRead it after signing in: {link}\n")
        try:
            self._send(message)
        except smtplib.SMTPRecipientsRefused as refused:
            reason = "; ".join(f"{code} {text!r}" for code, text in refused.recipients.values())
            self._refused(item, reason, permanent=True)
        except smtplib.SMTPResponseException as error:
            self._refused(
                item, f"{error.smtp_code} {error.smtp_error!r}", permanent=error.smtp_code >= 500
            )
        except (OSError, smtplib.SMTPException) as error:
            self._retry(item, f"{type(error).__name__}: {error}")
        else:
            self.store.delivered([item], actor="smtp", trace_id=trace_id)

    def _refused(self, item: Due, reason: str, *, permanent: bool) -> None:
        if permanent:  # the address bounced: flag it once, for every sending
            self.store.flag_contact(item.email, reason)
            self.store.failed(item, f"address refused: {reason}", retry_in_ms=None)
        else:
            self._retry(item, reason)

    def _retry(self, item: Due, error: str) -> None:
        attempts = item.attempts + 1
        if attempts >= self.max_attempts:
            self.store.failed(item, f"gave up after {attempts} attempts: {error}", retry_in_ms=None)
        else:
            self.store.failed(item, error, retry_in_ms=self.backoff_ms * 2 ** (attempts - 1))

    def _send(self, message: EmailMessage) -> None:
        send_mail(self.mail, message)
