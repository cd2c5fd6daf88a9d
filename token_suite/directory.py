"""The trust directory: organisms and sites with their public keys (signing keys, and the
encryption keys their DSN shares are sealed to), published as a snapshot signed by the
backbone's root key, and the verifier's cache of it.

A verifier pins the root public key, fetches the snapshot, checks it offline and keeps it until
it expires. A key id it does not know makes it fetch again, at most once per `refetch_seconds`,
so that a newly published key is found soon and a flood of made-up key ids costs nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from interops.token.v1 import token_pb2

from token_suite.encryption_keys import check_encryption_key
from token_suite.errors import Reason, TokenError
from token_suite.keys import SIGNATURE_BYTES, raw_public, verify_signature
from token_suite.wire import directory_input, encode, parse_canonical

MAX_DIRECTORY_BYTES = 4 * 1024 * 1024
# Pinned root keys: key id -> public key, raw 32 bytes or a key object.
RootKeys = Mapping[str, bytes | Ed25519PublicKey]


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """A public key of an organism (raw 32 bytes, checked) and the window in which it may sign,
    or for an encryption key be sealed to (valid_until 0: open; set: the key is retired)."""

    key_id: str
    organism: str
    public: bytes
    valid_from: int
    valid_until: int

    def signs_at(self, moment: float, leeway: float) -> bool:
        """True when a signature dated `moment` falls in the key's window."""
        if moment < self.valid_from - leeway:
            return False
        return self.valid_until == 0 or moment <= self.valid_until

    def proves_at(self, moment: float, leeway: float) -> bool:
        """True when the key may sign a proof dated `moment`: in its window and not retired."""
        return self.valid_until == 0 and moment >= self.valid_from - leeway


@dataclass(frozen=True, slots=True)
class TrustDirectory:
    """One snapshot of the directory, checked and ready for lookups. `keys` are the signing keys
    (Ed25519), the only ones `key` finds; `encryption_keys` (X25519) never verify anything."""

    serial: int
    expires: int
    organisms: Mapping[str, token_pb2.Organism]
    keys: Mapping[str, KeyEntry]
    encryption_keys: Mapping[str, KeyEntry] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def build(
        cls,
        organisms: Iterable[token_pb2.Organism],
        keys: Iterable[token_pb2.PublicKey],
        *,
        serial: int = 0,
        expires: int = 0,
        encryption_keys: Iterable[token_pb2.PublicKey] = (),
    ) -> TrustDirectory:
        """Checks every key (length, small order) and indexes the snapshot."""
        by_code = {organism.code: organism for organism in organisms}
        entries: dict[str, KeyEntry] = {}
        for key in keys:
            entries[key.key_id] = _entry(key, by_code, raw_public(key.public_key))
        sealing: dict[str, KeyEntry] = {}
        for key in encryption_keys:
            check_encryption_key(key.public_key)
            sealing[key.key_id] = _entry(key, by_code, key.public_key)
        return cls(serial, expires, by_code, entries, MappingProxyType(sealing))

    def key(self, key_id: str) -> KeyEntry | None:
        """The key with this id, if listed."""
        return self.keys.get(key_id)

    def organism(self, code: str) -> token_pb2.Organism | None:
        """The organism with this code, if listed."""
        return self.organisms.get(code)

    def current(self) -> TrustDirectory:
        """This snapshot (a verifier compares snapshots to know when keys changed)."""
        return self

    def current_key(self, organism: str) -> KeyEntry | None:
        """The organism's newest key in use (not retired): the one to name as a holder."""
        live = [e for e in self.keys.values() if e.organism == organism and not e.valid_until]
        return max(live, key=lambda e: (e.valid_from, e.key_id), default=None)


def _entry(
    key: token_pb2.PublicKey, organisms: Mapping[str, token_pb2.Organism], public: bytes
) -> KeyEntry:
    if key.organism not in organisms:
        raise TokenError("MALFORMED", f"key {key.key_id} names an unknown organism")
    return KeyEntry(key.key_id, key.organism, public, key.valid_from, key.valid_until)


def sign_directory(
    snapshot: token_pb2.Directory, root_key: Ed25519PrivateKey, key_id: str
) -> token_pb2.SignedDirectory:
    """Signs a snapshot with the root key."""
    payload = encode(snapshot)
    signature = root_key.sign(directory_input(key_id, payload))
    return token_pb2.SignedDirectory(payload=payload, key_id=key_id, signature=signature)


def open_directory(
    signed: bytes,
    root_keys: RootKeys,
    now: float | None = None,
    *,
    max_bytes: int = MAX_DIRECTORY_BYTES,
) -> TrustDirectory:
    """Checks a serialized SignedDirectory against the pinned root keys and opens it."""
    now = time.time() if now is None else now
    if len(signed) > max_bytes:
        raise TokenError(Reason.TOO_LARGE, f"the directory snapshot is over {max_bytes} bytes")
    envelope = parse_canonical(token_pb2.SignedDirectory(), signed, "the directory envelope")
    root = root_keys.get(envelope.key_id)
    if root is None:
        raise TokenError("UNTRUSTED_ROOT", f"the directory is signed by {envelope.key_id!r}")
    if len(envelope.signature) != SIGNATURE_BYTES:
        raise TokenError("BAD_SIGNATURE", "the directory signature is not 64 bytes")
    message = directory_input(envelope.key_id, envelope.payload)
    if not verify_signature(raw_public(root), envelope.signature, message):
        raise TokenError("BAD_SIGNATURE", "the directory signature does not verify")
    snapshot = parse_canonical(token_pb2.Directory(), envelope.payload, "the directory")
    if snapshot.expires <= now:
        raise TokenError("EXPIRED", "the directory snapshot has expired")
    return TrustDirectory.build(
        snapshot.organisms, snapshot.keys, serial=snapshot.serial, expires=snapshot.expires,
        encryption_keys=snapshot.encryption_keys,
    )  # fmt: skip


class DirectoryCache:
    """A verifier's copy of the directory: fetched when missing or expired, and again on an
    unknown key id or organism at most every `refetch_seconds`."""

    def __init__(
        self,
        fetch: Callable[[], bytes],
        root_keys: RootKeys,
        *,
        refetch_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._root_keys = dict(root_keys)
        self.refetch_seconds = refetch_seconds
        self._clock = clock
        self._directory: TrustDirectory | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _refresh(self) -> TrustDirectory:
        with self._lock:
            now = self._clock()
            self._fetched_at = now
            self._directory = open_directory(self._fetch(), self._root_keys, now)
            return self._directory

    def current(self) -> TrustDirectory:
        """The snapshot in use, fetched anew if there is none or it has expired."""
        directory = self._directory
        if directory is None or directory.expires <= self._clock():
            return self._refresh()
        return directory

    def key(self, key_id: str) -> KeyEntry | None:
        """The key with this id, fetching the directory again if it is unknown and allowed."""
        entry = self.current().key(key_id)
        if entry is None and self._clock() - self._fetched_at >= self.refetch_seconds:
            entry = self._refresh().key(key_id)
        return entry

    def organism(self, code: str) -> token_pb2.Organism | None:
        """The organism with this code, fetching the directory again (same rule as keys)."""
        organism = self.current().organism(code)
        if organism is None and self._clock() - self._fetched_at >= self.refetch_seconds:
            organism = self._refresh().organism(code)
        return organism

    def current_key(self, organism: str) -> KeyEntry | None:
        """The organism's newest key in use (see TrustDirectory.current_key)."""
        return self.current().current_key(organism)

    def reload(self) -> TrustDirectory:
        """Fetches the directory now (a holder that learns of a change need not wait)."""
        return self._refresh()
