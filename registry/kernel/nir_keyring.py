"""Employees' NIRs at rest: sealed with AES-256-GCM and found again through a keyed hash, under a
keyring that can rotate.

The keyring is a text file (INTEROPS_NIR_KEYRING, default <data dir>/keys/nir.keyring, created
with one random key when absent, mode 0600): one key per line, `<key id> <base64 of 32 bytes>`;
the last line is the current key. To rotate, append a new line and run
`interops relations rekey`, which re-seals and re-hashes every row still under an older key;
then the older line may be removed. Each line's secret derives two keys (HKDF-SHA256): one seals,
one hashes. A lookup hashes the NIR under every key of the ring (one or two during a rotation).

A NIR never leaves this module in an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from registry.kernel.sealing import seal, unseal
from token_suite.keys import create_once

_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,16}").fullmatch


class KeyringError(ValueError):
    """The keyring file is malformed, or a sealed NIR does not open under its key."""


@dataclass(frozen=True)
class NirKey:
    """One key of the ring: its id and the two keys derived from its secret."""

    id: str
    seal: AESGCM
    mac: bytes

    @classmethod
    def derive(cls, key_id: str, secret: bytes) -> NirKey:
        """The key `key_id` from its 32-byte secret."""
        if len(secret) != 32:
            raise KeyringError(f"NIR key {key_id!r} is not 32 bytes")
        derived = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=None,
            info=b"interops.nir.v1/" + key_id.encode(),
        ).derive(secret)  # fmt: skip
        return cls(key_id, AESGCM(derived[:32]), derived[32:])

    def hash(self, nir: str) -> bytes:
        """The keyed hash that finds this NIR (HMAC-SHA256)."""
        return hmac.digest(self.mac, nir.encode(), hashlib.sha256)


class NirKeyring:
    """Seals, opens and hashes NIRs; `current` seals new rows."""

    def __init__(self, keys: list[NirKey]) -> None:
        if not keys:
            raise KeyringError("the NIR keyring holds no key")
        self.keys = {key.id: key for key in keys}
        if len(self.keys) != len(keys):
            raise KeyringError("the NIR keyring names a key twice")
        self.current = keys[-1]

    @classmethod
    def load_or_create(cls, path: Path) -> NirKeyring:
        """The keyring in `path`, created with one random key when absent (`create_once`:
        nodes started at once on one volume all use the one created)."""
        if not path.exists():
            line = f"k1 {base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}\n"
            create_once(path, line.encode())
        return cls.parse(path.read_text())

    @classmethod
    def parse(cls, text: str) -> NirKeyring:
        """A keyring from the file's text (blank lines and # comments skipped)."""
        keys = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key_id, _, encoded = line.partition(" ")
            if not _KEY_ID(key_id):
                raise KeyringError(f"keyring line {number}: a key id is 1-16 of [A-Za-z0-9_.-]")
            try:
                secret = base64.b64decode(encoded.strip(), validate=True)
            except binascii.Error:
                raise KeyringError(f"keyring line {number}: the key is not base64") from None
            keys.append(NirKey.derive(key_id, secret))
        return cls(keys)

    def hashes(self, nir: str) -> list[bytes]:
        """The NIR's hash under every key of the ring, the current one first."""
        others = [key.hash(nir) for key in self.keys.values() if key is not self.current]
        return [self.current.hash(nir), *others]

    def seal(self, nir: str, context: bytes) -> tuple[str, bytes, bytes]:
        """(key id, sealed NIR, hash) under the current key; `context` (the row's establishment)
        is bound as associated data, so a sealed NIR cannot be moved to another row's place."""
        key = self.current
        sealed = seal(key.seal, nir.encode(), key.id.encode() + b"\0" + context)
        return key.id, sealed, key.hash(nir)

    def open(self, key_id: str, sealed: bytes, context: bytes) -> str:
        """The NIR sealed under `key_id`; KeyringError when the key is gone or it was altered."""
        key = self.keys.get(key_id)
        if key is None:
            raise KeyringError(f"NIR key {key_id!r} is no longer in the keyring")
        try:
            plain = unseal(key.seal, sealed, key_id.encode() + b"\0" + context)
        except InvalidTag:
            raise KeyringError("a sealed NIR does not open: altered or moved") from None
        return plain.decode()
