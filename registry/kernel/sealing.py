"""Sealing at rest with the node's AES-256-GCM key, the one place it is written: values (a row's
payload, a NIR) and files (deposited DSNs hold NIRs and names, so they never touch the disk in
clear). The shares routed from a deposit are not sealed here but to their organism's own key
(token_suite/sealed_share.py): the node cannot read them back.

A sealed value is a random 12-byte nonce, then the ciphertext with its tag; its associated data
binds it to its place (a return's id, a NIR's row), so it cannot be moved unnoticed.

A sealed file is MAGIC, then chunks of at most CHUNK_BYTES of plaintext, each written as its
ciphertext length (4 bytes, big-endian), a random 12-byte nonce and the ciphertext with its tag.
Each chunk's associated data binds the file's name, the chunk's index and whether it is the
last, so chunks cannot be swapped, reordered, moved to another file or cut off unnoticed.
A writer writes to a blob store's writer (registry/kernel/blob_store.py: files on the node's
disk, or rows in the database every node shares), which puts it in place on close: a file
either is whole or is not there. The file's name is the last part of its blob's name.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from token_suite.keys import create_once

if TYPE_CHECKING:
    from registry.kernel.blob_store import BlobWriter

MAGIC = b"IOPSEAL1"
CHUNK_BYTES = 1 << 20
_LENGTH = struct.Struct(">I")


NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed file was altered, cut, or sealed with another key."""


def seal(aead: AESGCM, plain: bytes, associated: bytes) -> bytes:
    """`plain` sealed under a fresh random nonce, bound to `associated`: nonce || ciphertext."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plain, associated)


def unseal(aead: AESGCM, sealed: bytes, associated: bytes) -> bytes:
    """The plaintext of a sealed value; raises cryptography's InvalidTag when it was altered,
    moved (other associated data) or sealed under another key."""
    return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)


def _associated(name: str, index: int, last: bool) -> bytes:
    return name.encode() + b"\0" + index.to_bytes(8, "big") + (b"\1" if last else b"\0")


class SealedWriter:
    """Writes a sealed file to `out`; `sha256` and `size` describe the plaintext written."""

    def __init__(self, out: BlobWriter, key: bytes) -> None:
        self.aead = AESGCM(key)
        self.name = PurePosixPath(out.name).name
        self.buffer = bytearray()
        self.index = 0
        self.size = 0
        self.hash = hashlib.sha256()
        self.out = out
        self.out.write(MAGIC)

    def write(self, data: bytes) -> int:
        """Appends plaintext."""
        self.buffer += data
        self.size += len(data)
        self.hash.update(data)
        while len(self.buffer) > CHUNK_BYTES:
            self._seal(bytes(self.buffer[:CHUNK_BYTES]), last=False)
            del self.buffer[:CHUNK_BYTES]
        return len(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        sealed = seal(self.aead, plain, _associated(self.name, self.index, last))
        self.out.write(_LENGTH.pack(len(sealed) - NONCE_BYTES) + sealed)
        self.index += 1

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the plaintext written so far."""
        return self.hash.digest()

    def close(self) -> None:
        """Seals the last chunk and puts the file in place."""
        self._seal(bytes(self.buffer), last=True)
        self.buffer.clear()
        self.out.commit()

    def discard(self) -> None:
        """Drops what was written (nothing once put in place)."""
        self.out.discard()

    def remove(self) -> None:
        """Removes the file once put in place."""
        self.out.remove()

    def __enter__(self) -> SealedWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


class _Stream:
    """Reads exact sizes from a blob's chunks, holding at most one chunk more than asked."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.buffer = bytearray()

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size and (chunk := next(self.chunks, None)) is not None:
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


def open_sealed(chunks: Iterable[bytes], name: str, key: bytes) -> Iterator[bytes]:
    """The plaintext of the sealed file `name` whose bytes are `chunks`, chunk by chunk; raises
    SealError at the first chunk that does not open, or if the file ends before its last chunk."""
    aead = AESGCM(key)
    stream = _Stream(chunks)
    if stream.read(len(MAGIC)) != MAGIC:
        raise SealError(f"{name} is not a sealed file")
    index = 0
    while True:
        header = stream.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            raise SealError(f"{name} ends before its last chunk")
        (length,) = _LENGTH.unpack(header)
        if length > CHUNK_BYTES + 16:
            raise SealError(f"{name}: chunk {index} is too long")
        sealed = stream.read(NONCE_BYTES + length)
        for last in (False, True):
            try:
                plain = unseal(aead, sealed, _associated(name, index, last))
            except InvalidTag:
                continue
            yield plain
            if last:
                return
            break
        else:
            raise SealError(f"{name}: chunk {index} was altered or has another key")
        index += 1


def load_or_create_key(path: Path) -> bytes:
    """The 32-byte data key in `path`, created (mode 0600) when absent (`create_once`: nodes
    started at once on one volume all use the one created)."""
    key = path.read_bytes() if path.exists() else create_once(path, AESGCM.generate_key(256))
    if len(key) != 32:
        raise SealError(f"{path} does not hold a 32-byte key")
    return key
