"""X25519 encryption keys: an organism publishes one in the directory (`encryption_keys`) and
the backbone seals the organism's DSN shares to it (token_suite/sealed_share.py). Generation,
key ids, PEM files and the checks every published key passes (SPEC.md, "Sealed shares").

A point of small order would give every sender the same, publicly known, shared secret: such
keys, and keys of the wrong length, are refused before any use.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.bindings import crypto_scalarmult_base

from token_suite.errors import TokenError
from token_suite.keys import create_once, private_pem, write_private_key

KEY_BYTES = 32
KEY_ID_PREFIX = "x25519:"
# The encodings of the points of small order on Curve25519, with bit 7 of byte 31 cleared
# (libsodium's list): 0 (order 4), 1 (order 1), two points of order 8, p-1 (order 2), and p and
# p+1, the non-canonical encodings of 0 and 1.
_SMALL_ORDER = frozenset(
    bytes.fromhex(point)
    for point in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


def check_encryption_key(raw: bytes) -> None:
    """Raises TokenError(BAD_KEY) unless `raw` is a usable X25519 public key."""
    if len(raw) != KEY_BYTES:
        raise TokenError("BAD_KEY", f"an encryption key is {KEY_BYTES} bytes, not {len(raw)}")
    if raw[:31] + bytes([raw[31] & 0x7F]) in _SMALL_ORDER:
        raise TokenError("BAD_KEY", "the encryption key is a point of small order")


def encryption_key_id(public: bytes) -> str:
    """The key id of an encryption key: "x25519:" and 16 hex digits of its SHA-256."""
    return KEY_ID_PREFIX + hashlib.sha256(public).hexdigest()[:16]


def generate_encryption_key() -> bytes:
    """A new private key, 32 raw bytes."""
    return os.urandom(KEY_BYTES)


def public_of(private: bytes) -> bytes:
    """The raw public key of a raw private key."""
    if len(private) != KEY_BYTES:
        raise ValueError(f"an encryption private key is {KEY_BYTES} bytes")
    return crypto_scalarmult_base(private)


def write_encryption_key(private: bytes, path: Path) -> None:
    """Writes the private key as unencrypted PKCS#8 PEM, readable by its owner only."""
    write_private_key(X25519PrivateKey.from_private_bytes(private), path)


def read_encryption_key(path: Path) -> bytes:
    """The raw private key in a PEM file; raises ValueError if it is not an X25519 key."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"{path} does not hold an X25519 private key")
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def beside(signing_key_file: Path) -> Path:
    """Where an organism's encryption key is kept by default: next to its signing key,
    URSSAF.pem -> URSSAF.x25519.pem."""
    name = signing_key_file.name.removesuffix(".pem")
    return signing_key_file.with_name(f"{name}.x25519.pem")


def load_or_create_encryption_key(path: Path) -> bytes:
    """The private key in `path`, created there (0600) on first use (`create_once`)."""
    if not path.exists():
        create_once(path, private_pem(X25519PrivateKey.from_private_bytes(
            generate_encryption_key()
        )))  # fmt: skip
    return read_encryption_key(path)
