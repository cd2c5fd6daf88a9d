"""The TLS key pin of a client certificate: the SHA-256 of its public key (DER
SubjectPublicKeyInfo), as the trust directory keeps it (KeyKind.TLS) and as the node compares it
with what a caller presented in mutual TLS. A pin survives the certificate's renewal with the
same key."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def pin_of_certificate(pem: bytes) -> bytes:
    """The pin of a PEM certificate (its first, when the file holds a chain); ValueError when
    it holds none."""
    certificate = x509.load_pem_x509_certificate(pem)
    return hashlib.sha256(
        certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
