"""E-mail over TLS against a real relay (aiosmtpd with a certificate made here): STARTTLS and
implicit TLS deliver when the relay's certificate verifies against INTEROPS_SMTP_CA_FILE, and
nothing is sent when it does not. Each case runs its own node on this module's own database (a
node left running on a shared outbox would deliver the mail itself)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from interops.notify.v1 import notify_pb2 as pb

from clients.client import Client
from registry.rcd.sirene_synth import siren_at
from server.notify.dispatch import MailSettings
from tests.certificates import TestAuthority
from tests.mailbox import Mailbox
from tests.notify.test_notifications import NOTIFY, _declarant, _send, _settled, _subscribe
from tests.running_node import RunningNode


@pytest.mark.parametrize(
    ("mode", "trusted", "company_index"),
    [("starttls", True, 31), ("tls", True, 32), ("starttls", False, 33)],
)
def test_e_mail_over_tls_verifies_the_relays_certificate(
    database_url: str, tmp_path: Path, mode: str, trusted: bool, company_index: int
) -> None:
    siren = siren_at(company_index)
    authority = TestAuthority(tmp_path)
    relay = authority.issue("relay")
    cert_file, key_file = relay.cert, relay.key
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    box = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tls_arguments: dict[str, Any] = (
        {"tls_context": server_tls, "require_starttls": True}
        if mode == "starttls" else {"ssl_context": server_tls}
    )  # fmt: skip
    controller = Controller(box, hostname="127.0.0.1", port=port, **tls_arguments)
    controller.start()
    mail = MailSettings(port=port, tls=mode, ca_file=str(authority.ca_file) if trusted else "")
    running = RunningNode(database_url, tmp_path / "node", mail=mail,
                          notify_backoff_seconds=0.05, notify_max_attempts=2)  # fmt: skip
    try:
        signer = running.organism("CARSAT", "OC", rights=("notify.send",))
        with (
            _declarant(running, siren, "Durand") as company,
            Client(running.address, credentials=running.credentials(signer, (NOTIFY,))) as sender,
        ):
            sender.notify.PublishTemplate(pb.PublishTemplateRequest(template=pb.Template(
                name="atmp-rate", topic=pb.TOPIC_AT_MP_RATE, subject="Taux {year}",
                body="Taux {rate} en {year}.")))  # fmt: skip
            _subscribe(company, siren, "tls@a.example", pb.CHANNEL_EMAIL)
            _send(sender, f"tls-{mode}-{trusted}", siren)
            (notification,) = _settled(company, siren)
    finally:
        running.stop()
        controller.stop()
    (email,) = notification.deliveries
    if trusted:
        assert email.state == pb.DELIVERY_STATE_DELIVERED
        assert [m["To"] for m in box.messages] == ["tls@a.example"]
    else:  # an unverifiable certificate is never sent to
        assert email.state == pb.DELIVERY_STATE_DEAD and "CERTIFICATE_VERIFY_FAILED" in (
            email.last_error
        )
        assert box.messages == []
