"""A DSN share sealed for its organism (SPEC.md, "Sealed shares"): the backbone writes it, holds
it and streams it, and only the organism's X25519 private key opens it, so neither a copy of the
backbone's storage nor its operator reads any share.

A fresh random content key per share is sealed to the organism's published encryption key
(libsodium's crypto_box_seal); the content follows as a libsodium secretstream
(XChaCha20-Poly1305) in chunks, each authenticated with the delivery id as associated data (a
share copied onto another delivery does not open) and the last one tagged FINAL (a share cut
short does not open either). The writer reports the plaintext's size and SHA-256: the delivery
announces them and the organism's receipt signs that digest.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import BinaryIO, NamedTuple

from nacl.bindings import (
    crypto_box,
    crypto_box_seal,
    crypto_box_seal_open,
    crypto_box_seed_keypair,
    crypto_secretstream_xchacha20poly1305_ABYTES,
    crypto_secretstream_xchacha20poly1305_HEADERBYTES,
    crypto_secretstream_xchacha20poly1305_init_pull,
    crypto_secretstream_xchacha20poly1305_init_push,
    crypto_secretstream_xchacha20poly1305_pull,
    crypto_secretstream_xchacha20poly1305_push,
    crypto_secretstream_xchacha20poly1305_state,
    crypto_secretstream_xchacha20poly1305_TAG_FINAL,
    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
)
from nacl.exceptions import CryptoError

from token_suite.encryption_keys import KEY_BYTES, check_encryption_key, public_of

MAGIC = b"IOPSHARE"
VERSION = 1
# Plaintext bytes per chunk; every chunk but the last holds exactly this many.
CHUNK_BYTES = 64 * 1024
ABYTES = crypto_secretstream_xchacha20poly1305_ABYTES  # 17: the tag byte and the MAC
HEADER_BYTES = crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
SEALED_KEY_BYTES = 32 + KEY_BYTES + 16  # ephemeral public key, content key, MAC
AD_TAG = b"interops.share.v1\x00"
_LENGTH = struct.Struct(">I")
_MESSAGE = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_FINAL = crypto_secretstream_xchacha20poly1305_TAG_FINAL


class ShareFault(StrEnum):
    """Why a sealed share does not open (SPEC.md, "Sealed shares"; the vectors use them)."""

    NOT_A_SHARE = "NOT_A_SHARE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    # Sealed to another key: the content key does not open with this private key.
    WRONG_KEY = "WRONG_KEY"
    # A chunk does not authenticate: altered, or the share of another delivery.
    ALTERED = "ALTERED"
    # The share ends before its FINAL chunk.
    CUT_SHORT = "CUT_SHORT"
    # Bytes after the FINAL chunk.
    TRAILING_BYTES = "TRAILING_BYTES"


class ShareError(ValueError):
    """A sealed share that does not open, with the reason; the message names no content."""

    def __init__(self, fault: ShareFault, message: str) -> None:
        super().__init__(message)
        self.fault = fault


class _Randomness(NamedTuple):
    """What a writer draws at random, fixed for the test vector only."""

    content_key: bytes
    ephemeral_seed: bytes
    stream_header: bytes


def associated_data(delivery_id: str, key_id: str) -> bytes:
    """Every chunk's associated data: the tag, then len16(delivery id) and len8(key id)."""
    delivery, key = delivery_id.encode(), key_id.encode()
    if not delivery or len(delivery) > 0xFFFF:
        raise ValueError("a delivery id is 1 to 65535 bytes")
    if not key or len(key) > 0xFF:
        raise ValueError("a key id is 1 to 255 bytes")
    return AD_TAG + len(delivery).to_bytes(2, "big") + delivery + bytes([len(key)]) + key


def _seal_key(content_key: bytes, public_key: bytes, ephemeral_seed: bytes | None) -> bytes:
    """crypto_box_seal(content_key, public_key); with a seed, the same construction spelt out
    (ephemeral key pair from the seed, nonce BLAKE2b-192(epk || pk), crypto_box) for vectors."""
    if ephemeral_seed is None:
        return crypto_box_seal(content_key, public_key)
    ephemeral_public, ephemeral_private = crypto_box_seed_keypair(ephemeral_seed)
    nonce = hashlib.blake2b(ephemeral_public + public_key, digest_size=24).digest()
    return ephemeral_public + crypto_box(content_key, nonce, public_key, ephemeral_private)


class ShareWriter:
    """Writes a share sealed to `public_key` (the organism's encryption key `key_id`) on `out`
    for the delivery `delivery_id`. `size` and `sha256` describe the plaintext written. `close`
    writes the last chunk; `out` stays open (its owner closes it)."""

    def __init__(
        self,
        out: BinaryIO,
        delivery_id: str,
        key_id: str,
        public_key: bytes,
        *,
        _randomness: _Randomness | None = None,
    ) -> None:
        check_encryption_key(public_key)
        self.out = out
        self.key_id = key_id
        self.associated = associated_data(delivery_id, key_id)
        self.size = 0
        self.hash = hashlib.sha256()
        self.buffer = bytearray()
        self.closed = False
        content_key = os.urandom(KEY_BYTES) if _randomness is None else _randomness.content_key
        sealed_key = _seal_key(
            content_key, public_key, None if _randomness is None else _randomness.ephemeral_seed
        )
        self.state = crypto_secretstream_xchacha20poly1305_state()
        if _randomness is None:
            header = crypto_secretstream_xchacha20poly1305_init_push(self.state, content_key)
        else:  # init_pull sets up the very state init_push would with that header
            header = _randomness.stream_header
            crypto_secretstream_xchacha20poly1305_init_pull(self.state, header, content_key)
        key = key_id.encode()
        out.write(MAGIC + bytes([VERSION, len(key)]) + key + sealed_key + header)

    def write(self, data: bytes) -> int:
        """Appends plaintext."""
        if self.closed:
            raise ValueError("the share is closed")
        self.buffer += data
        self.size += len(data)
        self.hash.update(data)
        while len(self.buffer) > CHUNK_BYTES:  # the last chunk waits for close(): it is FINAL
            self._push(bytes(self.buffer[:CHUNK_BYTES]), _MESSAGE)
            del self.buffer[:CHUNK_BYTES]
        return len(data)

    def _push(self, plain: bytes, tag: int) -> None:
        sealed = crypto_secretstream_xchacha20poly1305_push(self.state, plain, self.associated, tag)
        self.out.write(_LENGTH.pack(len(sealed)) + sealed)

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the plaintext written so far."""
        return self.hash.digest()

    def close(self) -> None:
        """Writes the last chunk (tagged FINAL, possibly empty)."""
        if not self.closed:
            self._push(bytes(self.buffer), _FINAL)
            self.buffer.clear()
            self.closed = True


class _Reader:
    """Exact-length reads over chunks of any boundaries."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.buffer = bytearray()

    def take(self, count: int) -> bytes | None:
        """The next `count` bytes, or None when the input ends before them."""
        while len(self.buffer) < count:
            chunk = next(self.chunks, None)
            if chunk is None:
                return None
            self.buffer += chunk
        taken = bytes(self.buffer[:count])
        del self.buffer[:count]
        return taken

    def at_end(self) -> bool:
        """True when nothing is left."""
        while not self.buffer:
            chunk = next(self.chunks, None)
            if chunk is None:
                return True
            self.buffer += chunk
        return False


def share_key_id(head: bytes) -> str:
    """The id of the encryption key a share is sealed to, read from its first bytes (at least
    10 + 255 of them, or the whole share); raises ShareError if they are not a share's."""
    if len(head) < len(MAGIC) + 2 or head[: len(MAGIC)] != MAGIC:
        raise ShareError(ShareFault.NOT_A_SHARE, "not a sealed share")
    if head[len(MAGIC)] != VERSION:
        raise ShareError(
            ShareFault.UNSUPPORTED_VERSION,
            f"sealed share version {head[len(MAGIC)]} is not supported",
        )
    length = head[len(MAGIC) + 1]
    key = head[len(MAGIC) + 2 : len(MAGIC) + 2 + length]
    if not length or len(key) != length:
        raise ShareError(ShareFault.CUT_SHORT, "the sealed share's header is cut short")
    try:
        return key.decode()
    except UnicodeDecodeError:
        raise ShareError(ShareFault.NOT_A_SHARE, "the sealed share's key id is not UTF-8") from None


def open_share(chunks: Iterable[bytes], delivery_id: str, private_key: bytes) -> Iterator[bytes]:
    """The plaintext of a sealed share read from `chunks` (its bytes, cut anywhere), chunk by
    chunk, for the delivery `delivery_id` with the organism's raw X25519 private key.

    Raises ShareError when it is not a share, is sealed to another key, was altered, belongs to
    another delivery or ends before its FINAL chunk (or goes on after it). Each chunk yielded
    is authentic, but the share is whole only once the iterator is exhausted: act on the
    plaintext (acknowledge it) only then."""
    reader = _Reader(chunks)
    prefix = reader.take(len(MAGIC) + 2)
    if prefix is None:
        raise ShareError(ShareFault.NOT_A_SHARE, "not a sealed share")
    rest = reader.take(prefix[-1])
    key_id = share_key_id(prefix + (rest or b""))
    public = public_of(private_key)
    sealed_key = reader.take(SEALED_KEY_BYTES)
    header = reader.take(HEADER_BYTES)
    if sealed_key is None or header is None:
        raise ShareError(ShareFault.CUT_SHORT, "the sealed share's header is cut short")
    try:
        content_key = crypto_box_seal_open(sealed_key, public, private_key)
    except CryptoError:
        raise ShareError(
            ShareFault.WRONG_KEY, f"the share is sealed to key {key_id}: this key does not open it"
        ) from None
    associated = associated_data(delivery_id, key_id)
    state = crypto_secretstream_xchacha20poly1305_state()
    crypto_secretstream_xchacha20poly1305_init_pull(state, header, content_key)
    index = 0
    while True:
        length = reader.take(_LENGTH.size)
        if length is None:
            raise ShareError(ShareFault.CUT_SHORT, "the share ends before its final chunk")
        (size,) = _LENGTH.unpack(length)
        if not ABYTES <= size <= CHUNK_BYTES + ABYTES:
            raise ShareError(ShareFault.ALTERED, f"chunk {index} has an impossible length")
        sealed = reader.take(size)
        if sealed is None:
            raise ShareError(ShareFault.CUT_SHORT, "the share ends before its final chunk")
        try:
            plain, tag = crypto_secretstream_xchacha20poly1305_pull(state, sealed, associated)
        except CryptoError:
            raise ShareError(
                ShareFault.ALTERED,
                f"chunk {index} of the share was altered, or the share is not this delivery's",
            ) from None
        if tag not in (_MESSAGE, _FINAL):
            raise ShareError(ShareFault.ALTERED, f"chunk {index} has an unknown tag")
        yield plain
        if tag == _FINAL:
            if not reader.at_end():
                raise ShareError(
                    ShareFault.TRAILING_BYTES, "the share goes on after its final chunk"
                )
            return
        index += 1
