"""Signed receipts: an organism acknowledges a delivery by signing, with one of its keys, the
delivery's id and the SHA-256 of the bytes it received. The backbone stores the receipt with the
deposit: the organism cannot later deny having received exactly that (non-repudiation of
receipt), and anyone with the directory can check it offline.

Signing input (SPEC.md, "Receipts"): "interops.token.v2/receipt" 0x00 || u8(2) || len8(key_id)
|| len16(delivery id) || SHA-256 (32 bytes). Receipts stored before v2 keep their own check,
`receipt_valid_v1`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from token_suite.keys import key_id_of, raw_public, verify_signature
from token_suite.wire import receipt_input

if TYPE_CHECKING:
    from token_suite.chain import Signer

RECEIPT_TAG_V1 = b"interops-receipt-v1\x00"


def sign_receipt(signer: Signer, delivery_id: str, sha256: bytes) -> bytes:
    """The organism's signature over the receipt."""
    return signer.key.sign(receipt_input(signer.key_id, delivery_id, sha256))


def receipt_valid(
    public: bytes | Ed25519PublicKey,
    delivery_id: str,
    sha256: bytes,
    signature: bytes,
    key_id: str | None = None,
) -> bool:
    """True when `signature` is a receipt of that delivery and digest by that key; `key_id` is
    the key's directory id (by default the backbone's derivation, `key_id_of`)."""
    raw = raw_public(public)
    message = receipt_input(key_id_of(raw) if key_id is None else key_id, delivery_id, sha256)
    return verify_signature(raw, signature, message)


def receipt_valid_v1(
    public: bytes | Ed25519PublicKey, delivery_id: str, sha256: bytes, signature: bytes
) -> bool:
    """The check of a receipt stored before v2 (tag, id, 0x00, SHA-256; no key id)."""
    if len(sha256) != 32:
        raise ValueError("a receipt signs a 32-byte SHA-256")
    message = RECEIPT_TAG_V1 + delivery_id.encode() + b"\x00" + sha256
    return verify_signature(raw_public(public), signature, message)
