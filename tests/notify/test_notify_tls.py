"""E-mail over TLS against a real relay (aiosmtpd with a certificate made here): STARTTLS and
implicit TLS deliver when the relay's certificate verifies against INTEROPS_SMTP_CA_FILE, and
nothing is sent when it does not. Each case runs its own node on this module's own database (a
node left running on a shared outbox would deliver the mail itself)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from interops.notify.v1 import notify_pb2 as pb

from clients.client import Client
from registry.rcd.sirene_synth import siren_at
from server.notify.dispatch import MailSettings
from tests.mailbox import Mailbox
from tests.notify.test_notifications import NOTIFY, _declarant, _send, _settled, _subscribe
from tests.running_node import RunningNode


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate authority's certificate for 127.0.0.1, used as the server's own."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test smtp relay")])
    now = datetime.datetime.now(datetime.UTC)
    identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(identifier, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier),
                       critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=False, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = directory / "relay.pem", directory / "relay.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


@pytest.mark.parametrize(
    ("mode", "trusted", "company_index"),
    [("starttls", True, 31), ("tls", True, 32), ("starttls", False, 33)],
)
def test_e_mail_over_tls_verifies_the_relays_certificate(
    database_url: str, tmp_path: Path, mode: str, trusted: bool, company_index: int
) -> None:
    siren = siren_at(company_index)
    cert_file, key_file = _self_signed(tmp_path)
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
    mail = MailSettings(port=port, tls=mode, ca_file=str(cert_file) if trusted else "")
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
