"""Ed25519 keys: generation, key ids, PEM files, the checks every public key must pass, and
signature verification (libsodium, through PyNaCl: about twice as fast as OpenSSL here).

OpenSSL verifies a signature under a small-order public key (the identity point, say) for
messages its holder never signed, so such keys, and keys of the wrong length or with a
non-canonical encoding, are refused before any use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl import _sodium  # type: ignore[attr-defined, unused-ignore]  # PyNaCl's cffi binding of libsodium

from token_suite.errors import TokenError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
# libsodium's crypto_sign_open with no output buffer (m and mlen_p NULL, which it allows) is a
# detached verification of `signature || message`: PyNaCl's wrapper would allocate and copy the
# message out, and PyNaCl exposes no crypto_sign_verify_detached. cffi releases the GIL around
# the call, so signatures can be verified on several threads at once.
_sign_open = _sodium.lib.crypto_sign_open
_NULL = _sodium.ffi.NULL
_P = 2**255 - 19
# The encodings of the eight points of small order, with the sign bit cleared (libsodium's
# list): 0 (order 4), 1 (order 1), two points of order 8, p-1 (order 2); p and p+1 are
# non-canonical encodings of 0 and 1, refused below as y >= p.
_SMALL_ORDER = frozenset(
    bytes.fromhex(point)
    for point in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


def check_public_key(raw: bytes) -> None:
    """Raises TokenError(BAD_KEY) unless `raw` is a usable Ed25519 public key."""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise TokenError("BAD_KEY", f"a public key is {PUBLIC_KEY_BYTES} bytes, not {len(raw)}")
    cleared = raw[:31] + bytes([raw[31] & 0x7F])
    if cleared in _SMALL_ORDER:
        raise TokenError("BAD_KEY", "the public key is a point of small order")
    if int.from_bytes(cleared, "little") >= _P:
        raise TokenError("BAD_KEY", "the public key is not canonically encoded")


def verify_signature(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` is an Ed25519 signature of `message` by the raw public key.

    libsodium also refuses small-order R, non-canonical S and small-order or non-canonical
    keys; callers still run `check_public_key` first so that a bad key gets its own reason.
    """
    # libsodium reads 32 bytes of key and 64 of signature without knowing their lengths.
    if len(signature) != SIGNATURE_BYTES or len(public_raw) != PUBLIC_KEY_BYTES:
        return False
    signed = signature + message
    return _sign_open(_NULL, _NULL, signed, len(signed), public_raw) == 0  # type: ignore[no-any-return]


def raw_public(key: bytes | Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of a public key given as bytes or as a key object, checked."""
    raw = key if isinstance(key, bytes) else public_bytes(key)
    check_public_key(raw)
    return raw


def load_public_key(raw: bytes) -> Ed25519PublicKey:
    """The key object for checked raw bytes."""
    check_public_key(raw)
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise TokenError("BAD_KEY", "the public key is not a point of the curve") from None


def public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of a key's public half."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: bytes) -> str:
    """The key id derived from a public key: "ed25519:" and 16 hex digits of its SHA-256."""
    return "ed25519:" + hashlib.sha256(public).hexdigest()[:16]


def generate() -> Ed25519PrivateKey:
    """A new private key."""
    return Ed25519PrivateKey.generate()


def write_private_key(key: Ed25519PrivateKey | X25519PrivateKey, path: Path) -> None:
    """Writes the key (a signing or an encryption one) as unencrypted PKCS#8 PEM, readable by
    its owner only."""
    pem = private_pem(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(pem)


def read_private_key(path: Path) -> Ed25519PrivateKey:
    """Reads a PEM private key; raises ValueError if it is not an Ed25519 key."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def private_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_once(path: Path, data: bytes) -> bytes:
    """Puts `data` in `path` (readable by its owner only) unless a file is there already, and
    returns what `path` then holds. The file appears whole or not at all (written beside it,
    then linked into place), and of processes creating it at once (nodes started together on
    one data volume) exactly one does: the others read that one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        _write_durably(descriptor, data)
        try:
            os.link(written, path)
        except FileExistsError:  # another process's is there: that one
            pass
        except OSError:  # a volume without hard links: created in place, exclusively (only
            # one process creates it, but another may read it unfinished, refuse it and stop)
            with contextlib.suppress(FileExistsError):
                _write_durably(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), data)
    finally:
        os.unlink(written)
    sync_directory(path.parent)  # the new name survives a power cut, as what it protects will
    return path.read_bytes()


def _write_durably(descriptor: int, data: bytes) -> None:
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def sync_directory(directory: Path) -> None:
    """Makes the names created or renamed in `directory` durable (fsync of the directory)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in `path`, created there (0600) on first use (`create_once`)."""
    if not path.exists():
        create_once(path, private_pem(generate()))
    return read_private_key(path)
