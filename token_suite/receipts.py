"""Signed receipts: an organism acknowledges a delivery by signing, with one of its keys, the
delivery's id and the SHA-256 of the bytes it received. The backbone stores the receipt with the
deposit: the organism cannot later deny having received exactly that (non-repudiation of
receipt), and anyone with the directory can check it offline.

Signing input: b"interops-receipt-v1\\x00" + delivery id (UTF-8) + b"\\x00" + SHA-256 (32 bytes).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from token_suite.chain import Signer

RECEIPT_TAG = b"interops-receipt-v1\x00"


def receipt_input(delivery_id: str, sha256: bytes) -> bytes:
    """The bytes a receipt signs."""
    if len(sha256) != 32:
        raise ValueError("a receipt signs a 32-byte SHA-256")
    return RECEIPT_TAG + delivery_id.encode() + b"\x00" + sha256


def sign_receipt(signer: Signer, delivery_id: str, sha256: bytes) -> bytes:
    """The organism's signature over the receipt."""
    return signer.key.sign(receipt_input(delivery_id, sha256))


def receipt_valid(
    public: Ed25519PublicKey, delivery_id: str, sha256: bytes, signature: bytes
) -> bool:
    """True when `signature` is a receipt of that delivery and digest by that key."""
    try:
        public.verify(signature, receipt_input(delivery_id, sha256))
    except InvalidSignature:
        return False
    return True
