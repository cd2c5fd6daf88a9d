"""Revocation offline: the backbone publishes a signed list of revoked blocks and subject
cutoffs, with a sequence number and a short validity; a verifier refreshes it at most every
`refresh_seconds` (60 at most) and refuses everything once the list it holds has expired and
no newer one can be fetched (fail closed).

A block is revoked when its revocation id (SHA-256 of its signature) is listed, or when the list
holds a cutoff for the chain's subject later than the block's not_before: a strike-off, a
removed habilitation, the end of a mandate or a sign-out ends every older block at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from interops.token.v1 import token_pb2

from token_suite.errors import Reason, TokenError
from token_suite.keys import raw_public, verify_signature
from token_suite.wire import encode, parse_canonical, revocations_input

if TYPE_CHECKING:
    from token_suite.chain import Signer

MAX_REVOCATIONS_BYTES = 4 * 1024 * 1024
REVOCATION_ID_BYTES = 32
LONGEST_REFRESH_SECONDS = 60.0
# After a failed fetch, the next try waits this long (a dead source is not asked on every call).
RETRY_SECONDS = 1.0
RootKeys = Mapping[str, bytes | Ed25519PublicKey]


@dataclass(frozen=True)
class Revocations:
    """One opened revocation list: what a verifier checks every block against.

    `expires` 0 means never (the empty view of `none()`); `cutoffs` maps a subject to the moment
    before which its blocks are revoked.
    """

    sequence: int
    expires: int
    directory_serial: int
    blocks: frozenset[bytes] = frozenset()
    cutoffs: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    # When the list was signed: of two lists with one sequence, the later one is newer (a
    # replica re-signs the same sequence every second; a mirror replaying an older one loses).
    issued_at: int = 0

    @property
    def empty(self) -> bool:
        """True when nothing is revoked (the verifier then skips the per-block look-ups)."""
        return not self.blocks and not self.cutoffs

    def revokes(self, revocation_id: bytes, subject: str, not_before: int) -> bool:
        """True when a block with this revocation id, subject and not_before is revoked."""
        if revocation_id in self.blocks:
            return True
        before = self.cutoffs.get(subject)
        return before is not None and not_before < before

    @classmethod
    def none(cls) -> Revocations:
        """An empty view that never expires: for tests, and for a node before its first list."""
        return _NONE

    def to_list(self, issued_at: int, expires: int) -> token_pb2.RevocationList:
        """The list to sign, in canonical order, valid from `issued_at` until `expires`."""
        return token_pb2.RevocationList(
            sequence=self.sequence, issued_at=issued_at, expires=expires,
            directory_serial=self.directory_serial, blocks=sorted(self.blocks),
            subjects=[token_pb2.SubjectCutoff(subject=s, before=b)
                      for s, b in sorted(self.cutoffs.items())],
        )  # fmt: skip


_NONE = Revocations(sequence=0, expires=0, directory_serial=0)


def sign_revocations(signer: Signer, listing: token_pb2.RevocationList) -> bytes:
    """The list signed by the root key (`signer`): a serialized SignedRevocations."""
    payload = encode(listing)
    signature = signer.key.sign(revocations_input(signer.key_id, payload))
    envelope = token_pb2.SignedRevocations(
        payload=payload, key_id=signer.key_id, signature=signature
    )
    return encode(envelope)


def _listing(payload: bytes) -> Revocations:
    """The opened list; MALFORMED unless canonical, sorted and free of duplicates."""
    listing = parse_canonical(token_pb2.RevocationList(), payload, "the revocation list")
    blocks = list(listing.blocks)
    subjects = [cutoff.subject for cutoff in listing.subjects]
    if any(len(block) != REVOCATION_ID_BYTES for block in blocks):
        raise TokenError(Reason.MALFORMED, "a revocation id is 32 bytes")
    if any(a >= b for a, b in pairwise(blocks)) or any(a >= b for a, b in pairwise(subjects)):
        raise TokenError(Reason.MALFORMED, "revocations are sorted, each listed once")
    cutoffs = {cutoff.subject: cutoff.before for cutoff in listing.subjects}
    return Revocations(
        listing.sequence, listing.expires, listing.directory_serial,
        frozenset(blocks), MappingProxyType(cutoffs), listing.issued_at,
    )  # fmt: skip


def open_revocations(data: bytes, roots: RootKeys, now: float) -> Revocations:
    """Checks a serialized SignedRevocations against the pinned root keys (key id -> public
    key, raw or as an object) and opens it; REVOCATIONS_STALE once it has expired."""
    if len(data) > MAX_REVOCATIONS_BYTES:
        raise TokenError(Reason.TOO_LARGE, "the revocation list is too large")
    envelope = parse_canonical(token_pb2.SignedRevocations(), data, "the revocation envelope")
    root = roots.get(envelope.key_id)
    if root is None:
        raise TokenError(Reason.UNTRUSTED_ROOT, f"the list is signed by {envelope.key_id!r}")
    message = revocations_input(envelope.key_id, envelope.payload)
    if not verify_signature(raw_public(root), envelope.signature, message):
        raise TokenError(Reason.BAD_SIGNATURE, "the revocation list's signature does not verify")
    opened = _listing(envelope.payload)
    if opened.expires <= now:
        raise TokenError(Reason.REVOCATIONS_STALE, "the revocation list has expired")
    return opened


class RevocationCache:
    """A verifier's copy of the revocation list, refreshed at most every `refresh_seconds`.

    A list older than the one held (a lower sequence, or the same sequence signed earlier) is
    refused (rollback: the held one stays).
    When the held list has expired and no valid newer one can be fetched, `current()` raises
    REVOCATIONS_STALE: the verifier then refuses every chain. `on_directory_change` is called
    when the list names another directory serial (e.g. DirectoryCache.reload), so that a
    retired key is seen within the same interval.
    """

    def __init__(
        self,
        fetch: Callable[[], bytes],
        roots: RootKeys,
        refresh_seconds: float = 30,
        clock: Callable[[], float] = time.time,
        on_directory_change: Callable[[], object] | None = None,
    ) -> None:
        if not 0 < refresh_seconds <= LONGEST_REFRESH_SECONDS:
            raise ValueError(f"refresh_seconds is in (0, {LONGEST_REFRESH_SECONDS:g}]")
        self._fetch = fetch
        self._roots = {key_id: raw_public(key) for key_id, key in roots.items()}
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._on_directory_change = on_directory_change
        self._held: Revocations | None = None
        self._next_fetch = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> Revocations:
        """The list in force now; raises TokenError(REVOCATIONS_STALE) when there is none."""
        now = self._clock()
        held = self._held
        if held is None or now >= self._next_fetch:
            with self._lock:
                if self._held is None or now >= self._next_fetch:
                    self._refresh(now)
                held = self._held
        if held is None or held.expires <= now:
            raise TokenError(Reason.REVOCATIONS_STALE, "no current revocation list")
        return held

    def _refresh(self, now: float) -> None:
        try:
            offered = open_revocations(self._fetch(), self._roots, now)
        except Exception:
            self._next_fetch = now + min(RETRY_SECONDS, self.refresh_seconds)
            return
        self._next_fetch = now + self.refresh_seconds
        held = self._held
        if held is not None and (offered.sequence, offered.issued_at) < (
            held.sequence,
            held.issued_at,
        ):
            return  # a rollback (an older sequence, or the same one signed earlier): keep ours
        self._held = offered
        moved = held is not None and held.directory_serial != offered.directory_serial
        if moved and self._on_directory_change is not None:
            self._on_directory_change()
