"""The bytes that are signed, and the canonical-encoding rule for what is parsed (SPEC.md).

Each signing input starts with a domain-separation tag, so that a signature made for one use (a
block, a proof, a directory) never verifies as another.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from token_suite.errors import TokenError

VERSION = 2
BLOCK_TAG = b"interops.token.v2/block\x00"
PROOF_TAG = b"interops.token.v2/proof\x00"
DIRECTORY_TAG = b"interops.token.v2/directory\x00"
REVOCATIONS_TAG = b"interops.token.v2/revocations\x00"
RECEIPT_TAG = b"interops.token.v2/receipt\x00"
_BLOCK_HEAD = BLOCK_TAG + bytes([VERSION])
MAX_KEY_ID = 64
# gRPC metadata keys of a call's token chain and proof of possession.
TOKEN_METADATA = "interops-token-bin"  # noqa: S105 -- a header name, not a secret
PROOF_METADATA = "interops-proof-bin"
M = TypeVar("M", bound=Message)


def _short(value: bytes, what: str) -> bytes:
    if len(value) > 255:
        raise TokenError("MALFORMED", f"{what} is longer than 255 bytes")
    return bytes([len(value)]) + value


def service_of(method: str) -> str:
    """ "pkg.Service" of "/pkg.Service/Method": the audience a call's proof names."""
    return method.lstrip("/").split("/", 1)[0]


def block_input(index: int, key_id: str, payload: bytes, previous_signature: bytes) -> bytes:
    """What block `index` signs: tag, version, index, key id, payload, previous signature."""
    key = key_id.encode()
    if len(key) > 255 or not 0 <= index <= 255:
        raise TokenError("MALFORMED", "a key id or block index is too long")
    # Built in one join: this runs once per block verified.
    return b"".join(
        (_BLOCK_HEAD, bytes((index, len(key))), key, len(payload).to_bytes(4, "big"), payload,
         previous_signature)
    )  # fmt: skip


def proof_input(  # noqa: PLR0917 -- the fields in their signed order, as SPEC.md lists them
    key_id: str, method: str, audience: str, time: int, nonce: bytes, token_hash: bytes
) -> bytes:
    """What a proof of possession signs for one call."""
    method_bytes, audience_bytes = method.encode(), audience.encode()
    return b"".join(
        (
            PROOF_TAG,
            bytes([VERSION]),
            _short(key_id.encode(), "a key id"),
            struct.pack(">H", len(method_bytes)),
            method_bytes,
            struct.pack(">H", len(audience_bytes)),
            audience_bytes,
            struct.pack(">q", time),
            _short(nonce, "a nonce"),
            token_hash,
        )
    )


def _root_signed_input(tag: bytes, key_id: str, payload: bytes) -> bytes:
    return b"".join(
        (tag, bytes([VERSION]), _short(key_id.encode(), "a key id"),
         struct.pack(">I", len(payload)), payload)
    )  # fmt: skip


def directory_input(key_id: str, payload: bytes) -> bytes:
    """What the root key signs for a directory snapshot."""
    return _root_signed_input(DIRECTORY_TAG, key_id, payload)


def revocations_input(key_id: str, payload: bytes) -> bytes:
    """What the root key signs for a revocation list."""
    return _root_signed_input(REVOCATIONS_TAG, key_id, payload)


def receipt_input(key_id: str, delivery_id: str, sha256: bytes) -> bytes:
    """What an organism's key signs to acknowledge a delivery of bytes with this SHA-256."""
    if len(sha256) != 32:
        raise ValueError("a receipt signs a 32-byte SHA-256")
    delivery = delivery_id.encode()
    if len(delivery) > 0xFFFF:
        raise ValueError("a delivery id is at most 65535 bytes")
    return b"".join(
        (RECEIPT_TAG, bytes([VERSION]), _short(key_id.encode(), "a key id"),
         struct.pack(">H", len(delivery)), delivery, sha256)
    )  # fmt: skip


def parse_canonical(message: M, raw: bytes, what: str, block: int | None = None) -> M:
    """Parses `raw` into `message`; refuses anything but the canonical encoding.

    The canonical encoding is the deterministic serialization with no unknown fields, so a
    re-serialization of what was parsed must give back `raw` exactly: trailing bytes, unknown
    fields, repeated or out-of-order fields and explicit default values are all refused.
    """
    try:
        message.ParseFromString(raw)
    except DecodeError:
        raise TokenError("MALFORMED", f"{what} is not a valid encoding", block) from None
    message.DiscardUnknownFields()
    # Our messages have no maps, the one thing `deterministic` changes: the plain (faster)
    # serialization writes fields in number order already.
    if message.SerializeToString() != raw:
        raise TokenError("MALFORMED", f"{what} is not in canonical encoding", block)
    return message


def encode(message: Message) -> bytes:
    """The canonical encoding of a message."""
    return message.SerializeToString(deterministic=True)


def to_text(token: bytes) -> str:
    """A token as text for files, environment variables and command lines: base64url."""
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def from_text(text: str) -> bytes:
    """The token bytes of `to_text`'s output; raises TokenError(MALFORMED) otherwise."""
    cleaned = text.strip()
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("MALFORMED", "the token text is not base64url") from None
