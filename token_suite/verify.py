"""Verification of a chain, offline: every signature over the raw bytes, then every block's
content, then what each hop may change (attenuation), then revocation, then the use itself: a
call with a proof of possession of the key the last block names as holder (so that a prefix,
whose last holder is someone else, is of no use), or a partner site's `accept` of a chain it
holds itself; and single use.

Verified prefixes are cached: a chain whose first k blocks were seen costs only its new blocks.
A cached prefix is keyed by a digest of all its raw bytes, and what can change with time (expiry,
revocation, the directory) is checked again on every call.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from queue import SimpleQueue
from typing import NamedTuple, Protocol

from interops.token.v1 import token_pb2

from token_suite import profiles
from token_suite.directory import KeyEntry, TrustDirectory
from token_suite.errors import Reason, TokenError
from token_suite.grants import Grants, grants_from, widening
from token_suite.keys import SIGNATURE_BYTES, check_public_key, key_id_of, verify_signature
from token_suite.replay import ReplayCache
from token_suite.revocations import Revocations
from token_suite.wire import VERSION, block_input, parse_canonical, proof_input

ROOT_KINDS = frozenset({token_pb2.ORGANISM_KIND_PORTAL})
# Prefixes of the single-use keys a call spends: a single-use token, a proof's nonce.
TOKEN_KEY = b"token:"
PROOF_KEY = b"proof:"
ID_BYTES = 16
NONCE_BYTES = 16
MAX_SUBJECT = 128
MAX_AUDIENCE = 16


class KeyResolver(Protocol):
    """Where a verifier finds keys and organisms: a TrustDirectory or a DirectoryCache."""

    def key(self, key_id: str) -> KeyEntry | None:
        """The key with this id, if listed."""
        ...

    def organism(self, code: str) -> token_pb2.Organism | None:
        """The organism with this code, if listed."""
        ...

    def current(self) -> object:
        """The snapshot in use; a new object whenever the directory changed."""
        ...


class _Prefix(NamedTuple):
    """A verified prefix in the cache, with what its re-checks need."""

    state: VerifiedChain
    snapshot: object  # the directory it was verified against
    latest_start: int  # the latest not_before of its blocks


class Party(NamedTuple):
    """An organism or site and the key that acts for it: a directory `key_id`, or a session's
    own `public_key` (raw 32 bytes, for a holder of a root kind only). A holder names exactly
    one; an empty Party key is accepted only for an organism's sign-in proof."""

    organism: str
    key_id: str = ""
    public_key: bytes = b""


class Hop(NamedTuple):
    """One verified block: who handed the chain to whom, when, why."""

    position: int
    delegator: Party
    holder: Party
    profile: int
    not_before: int
    expires: int
    purpose: str
    token_id: bytes
    revocation_id: bytes


class VerifiedChain(NamedTuple):
    """What a verified chain grants (its last block's terms) and its chain of responsibility."""

    chain_id: bytes
    subject: str
    profile: int
    holder: Party
    audience: frozenset[str]
    grants: Grants
    expires: int
    max_hops: int
    hops: tuple[Hop, ...]
    token: bytes = b""

    @property
    def token_hash(self) -> bytes:
        """SHA-256 of the token's bytes, which a proof of possession signs."""
        return hashlib.sha256(self.token).digest()

    def allows(self, right: str, siret: str | None = None) -> bool:
        """True when the chain grants `right` (over `siret`, when given)."""
        scope = self.grants.get(right)
        return scope is not None and (siret is None or scope.includes_siret(siret))


_new = tuple.__new__
_LIFETIMES = profiles.MAX_LIFETIME
# The share of a chain's signatures (the first ones) that the helper thread verifies after
# checking every block's content: about what balances its work with the calling thread's,
# which verifies the others (a block's content costs about a sixth of its signature).
_HANDED_SHARE = 0.42
# Chains with fewer new blocks to verify are verified on the calling thread alone.
_CONCURRENT_FROM = 3
# One block: (key_id, payload, signature), read once from the parsed chain.
_Signed = tuple[str, bytes, bytes]


def revocation_id(signature: bytes) -> bytes:
    """A block's revocation id: SHA-256 of its signature."""
    return hashlib.sha256(signature).digest()


def _prefix_digests(token: bytes, count: int) -> list[bytes]:
    """SHA-256 of the token's bytes up to the end of each block: the prefix cache's keys.

    The token was checked canonical: `08 02` (version 2), then each block as `12`, its length
    as a varint, and its bytes.
    """
    hasher = hashlib.sha256()
    view = memoryview(token)
    digests = []
    position = 2
    for _ in range(count):
        cursor, length, shift = position + 1, 0, 0
        while True:
            byte = token[cursor]
            length |= (byte & 0x7F) << shift
            cursor += 1
            if byte < 0x80:
                break
            shift += 7
        end = cursor + length
        hasher.update(view[position:end])
        digests.append(hasher.copy().digest())
        position = end
    return digests


class _Signatures:
    """The block signatures of one verification, checked on two threads: index -> (public key,
    signature, signed bytes), and the verdicts as they come. `_extend` defers a block's verdict
    to `confirm`, which gives the first failure in block order."""

    __slots__ = ("deferred", "jobs", "results")

    def __init__(self, jobs: dict[int, tuple[bytes, bytes, bytes]]) -> None:
        self.jobs = jobs
        self.results: dict[int, bool] = {}
        self.deferred: list[int] = []

    def check(self, indices: Iterable[int]) -> None:
        """Verifies these blocks' signatures on the calling thread."""
        jobs, results = self.jobs, self.results
        for index in indices:
            results[index] = verify_signature(*jobs[index])

    def defer(self, index: int, public: bytes) -> bool:
        """True when block `index`'s signature under `public` is in the set: `confirm` then
        gives its verdict."""
        job = self.jobs.get(index)
        if job is None or job[0] != public:
            return False
        self.deferred.append(index)
        return True

    def confirm(self) -> None:
        """Raises BAD_SIGNATURE for the first deferred block whose signature does not verify."""
        for index in self.deferred:
            verifies = self.results.get(index)
            if verifies is None:  # not checked (its thread failed): check it here
                verifies = verify_signature(*self.jobs[index])
            if not verifies:
                raise TokenError("BAD_SIGNATURE", "the signature does not verify", index)


class _Task:
    """Work handed to a helper thread. Whoever claims it first runs it, so a verification whose
    helpers are all busy runs it itself rather than wait in line."""

    __slots__ = ("_claim", "_done", "_work", "error", "result")

    def __init__(self, work: Callable[[], list[VerifiedChain]]) -> None:
        self._work = work
        self.result: list[VerifiedChain] = []
        self.error: Exception | None = None
        self._claim = threading.Lock()
        self._done = threading.Lock()
        self._done.acquire()

    def run(self) -> None:
        """Runs the work, unless another thread claimed it first; keeps its error."""
        if not self._claim.acquire(blocking=False):
            return
        try:
            self.result = self._work()
        except Exception as error:  # raised again by the thread that waits
            self.error = error
        finally:
            self._done.release()

    def wait(self) -> None:
        """Returns once the work is done, running it here if no helper has started it."""
        self.run()
        self._done.acquire()


class _Helpers:
    """Daemon threads that run tasks handed over by verifications on other threads. Started on
    first use, and again in a forked child, which inherits no thread."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._queue: SimpleQueue[_Task] | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def hand_over(self, task: _Task) -> None:
        """Queues the task for the first free helper."""
        (self._queue or self._start()).put(task)

    def _start(self) -> SimpleQueue[_Task]:
        with self._lock:
            if self._queue is None:
                work: SimpleQueue[_Task] = SimpleQueue()
                for number in range(self.count):
                    threading.Thread(target=self._serve, args=(work,), daemon=True,
                                     name=f"token-verify-{number}").start()  # fmt: skip
                self._queue = work
            return self._queue

    @staticmethod
    def _serve(work: SimpleQueue[_Task]) -> None:
        while True:
            work.get().run()

    def _forget(self) -> None:
        self._queue = None
        self._lock = threading.Lock()


_CPUS = os.cpu_count() or 1
# None on a single core, where a helper thread could only slow a verification down.
_HELPERS = _Helpers(min(3, _CPUS - 1)) if _CPUS > 1 else None


class Verifier:
    """Verifies chains and calls against a directory; thread-safe for reading."""

    def __init__(
        self,
        keys: KeyResolver,
        *,
        leeway: float = 30.0,
        max_bytes: int = 4096,
        max_blocks: int = 8,
        root_kinds: frozenset[int] = ROOT_KINDS,
        revocations: Callable[[], Revocations] = Revocations.none,
        prefix_cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.leeway = leeway
        self.max_bytes = max_bytes
        self.max_blocks = max_blocks
        self.root_kinds = root_kinds
        # Asked at every verification (a RevocationCache's `current` is cheap between
        # refreshes, and raises REVOCATIONS_STALE when it has no current list).
        self.revocations = revocations
        self.prefix_cache_size = prefix_cache_size
        self.clock = clock
        self._prefixes: OrderedDict[bytes, _Prefix] = OrderedDict()

    # -- the chain -------------------------------------------------------------------------------

    def verify(
        self, token: bytes, audience: str | None = None, now: float | None = None
    ) -> VerifiedChain:
        """The verified chain; raises TokenError with the precise reason otherwise.

        With `audience`, the chain must be meant for it. Single use and proofs of possession
        belong to the call: see `verify_call`.
        """
        now = self.clock() if now is None else now
        if len(token) > self.max_bytes:
            raise TokenError("TOO_LARGE", f"the token is over {self.max_bytes} bytes")
        chain = parse_canonical(token_pb2.TokenChain(), token, "the token")
        if chain.version != VERSION:
            raise TokenError("UNSUPPORTED_VERSION", f"version {chain.version} is not supported")
        count = len(chain.blocks)
        if not count:
            raise TokenError("MALFORMED", "the token has no block")
        if count > self.max_blocks:
            raise TokenError("TOO_MANY_BLOCKS", f"the token has over {self.max_blocks} blocks")
        blocks = [(signed.key_id, signed.payload, signed.signature) for signed in chain.blocks]
        view = self.revocations()
        if view.expires and view.expires <= now:
            raise TokenError(Reason.REVOCATIONS_STALE, "the revocation list has expired")
        snapshot = self.keys.current()
        if self.prefix_cache_size <= 0:
            state = self._walk(None, 0, blocks, now, snapshot)[-1]
        else:
            state = self._verify_with_prefixes(token, blocks, now, snapshot)
        if not view.empty:
            subject = state.subject
            for hop in state.hops:
                if view.revokes(hop.revocation_id, subject, hop.not_before):
                    raise TokenError("REVOKED", "the block was revoked", hop.position)
        if audience is not None and audience not in state.audience:
            raise TokenError("WRONG_AUDIENCE", f"the token is not meant for {audience}")
        return _new(VerifiedChain, (*state[:-1], token))

    def _verify_with_prefixes(
        self, token: bytes, blocks: list[_Signed], now: float, snapshot: object
    ) -> VerifiedChain:
        """Verifies the blocks after the longest cached prefix, caching each new prefix."""
        digests = _prefix_digests(token, len(blocks))
        prefix, start = self._cached_prefix(digests)
        if prefix is None:
            states = self._walk(None, 0, blocks, now, snapshot)
            latest_start = 0
        else:
            self._check_still_valid(prefix, snapshot, now)
            states = self._walk(prefix.state, start, blocks, now, snapshot)
            latest_start = prefix.latest_start
        for index, state in enumerate(states, start):
            latest_start = max(latest_start, state.hops[-1].not_before)
            self._remember(digests[index], _Prefix(state, snapshot, latest_start))
        if not states:  # the whole chain was cached
            assert prefix is not None
            return prefix.state
        return states[-1]

    def _cached_prefix(self, digests: list[bytes]) -> tuple[_Prefix | None, int]:
        prefixes = self._prefixes
        for index in range(len(digests) - 1, -1, -1):
            prefix = prefixes.get(digests[index])
            if prefix is not None:
                with contextlib.suppress(KeyError):  # recently used: evicted last
                    prefixes.move_to_end(digests[index])
                return prefix, index + 1
        return None, 0

    def _remember(self, digest: bytes, prefix: _Prefix) -> None:
        prefixes = self._prefixes
        prefixes[digest] = prefix
        if len(prefixes) > self.prefix_cache_size:
            with contextlib.suppress(KeyError):  # emptied by another thread meanwhile
                prefixes.popitem(last=False)

    def _check_still_valid(self, prefix: _Prefix, snapshot: object, now: float) -> None:
        """What may have changed since the prefix was verified: time and keys (revocations are
        checked for every block of every chain, cached or not, in `verify`)."""
        hops = prefix.state.hops
        leeway = self.leeway
        if prefix.latest_start > now + leeway or prefix.state.expires < now - leeway:
            for hop in hops:
                self._check_time(hop.not_before, hop.expires, now, hop.position)
        if prefix.snapshot is not snapshot:
            for hop in hops:
                entry = self.keys.key(hop.delegator.key_id)
                if entry is None or not entry.signs_at(hop.not_before, leeway):
                    raise TokenError("KEY_NOT_VALID", "the signing key was withdrawn", hop.position)

    def _check_time(self, not_before: int, expires: int, now: float, index: int) -> None:
        if not_before > now + self.leeway:
            raise TokenError("NOT_YET_VALID", "the block is not valid yet", index)
        if expires < now - self.leeway:
            raise TokenError("EXPIRED", "the block has expired", index)

    def _key(self, key_id: str, snapshot: object) -> KeyEntry | None:
        """The key with this id: from the snapshot in use when it is a TrustDirectory (no clock,
        no lock), else, and on a miss (which may fetch the directory again), from the resolver."""
        if type(snapshot) is TrustDirectory:
            entry = snapshot.keys.get(key_id)
            if entry is not None:
                return entry
        return self.keys.key(key_id)

    def _of_root_kind(self, organism: str, snapshot: object) -> bool:
        """True when the organism is listed with a root kind (the portal)."""
        listed = None
        if type(snapshot) is TrustDirectory:
            listed = snapshot.organisms.get(organism)
        if listed is None:
            listed = self.keys.organism(organism)
        return listed is not None and listed.kind in self.root_kinds

    def _signer(
        self, index: int, key_id: str, parent: VerifiedChain | None, snapshot: object
    ) -> KeyEntry:
        entry = self._key(key_id, snapshot)
        if entry is None:
            raise TokenError("UNKNOWN_KEY", f"no key {key_id!r} in the directory", index)
        if parent is None:
            if not self._of_root_kind(entry.organism, snapshot):
                raise TokenError(
                    "UNTRUSTED_ROOT", f"{entry.organism} may not issue root blocks", index
                )
        elif entry.organism != parent.holder.organism or (
            parent.holder.key_id and parent.holder.key_id != key_id
        ):
            raise TokenError(
                "WRONG_SIGNER", f"signed by {entry.organism}, not by the holder named before", index
            )
        return entry

    def _walk(
        self,
        state: VerifiedChain | None,
        start: int,
        blocks: list[_Signed],
        now: float,
        snapshot: object,
    ) -> list[VerifiedChain]:
        """The chain after each block from `start` on; `state` is the chain before it (a cached
        prefix's) or None.

        With a helper thread, the work is shared so that each thread does a part while the other
        holds no GIL: the helper checks every block's content (Python) and then the first
        signatures, while this thread verifies the other signatures (libsodium, GIL released).
        The verdict is still the one a sequential verification gives: a block's signature
        before its content, an earlier block before a later one.
        """
        # Fewer blocks are checked here: waking a helper (tens of microseconds on a busy or
        # virtual machine) then costs about what it saves.
        if _HELPERS is None or len(blocks) - start < _CONCURRENT_FROM:
            if len(blocks) - start == 1:
                return [self._extend(state, start, blocks, now, None, snapshot, None)[0]]
            return self._walk_blocks(state, start, blocks, now, snapshot, None, ())
        signatures = _Signatures(self._signature_jobs(blocks, start, snapshot))
        ready = sorted(signatures.jobs)
        handed = ready[: round((len(blocks) - start) * _HANDED_SHARE)]
        task = _Task(lambda: self._walk_blocks(state, start, blocks, now, snapshot, signatures,
                                               handed))  # fmt: skip
        _HELPERS.hand_over(task)
        signatures.check(ready[len(handed) :])
        task.wait()
        signatures.confirm()  # an earlier bad signature is the verdict, if there is one
        if task.error is not None:
            raise task.error
        return task.result

    def _walk_blocks(  # noqa: PLR0917 -- the work of `_walk`, run on whichever thread claims it
        self,
        state: VerifiedChain | None,
        start: int,
        blocks: list[_Signed],
        now: float,
        snapshot: object,
        signatures: _Signatures | None,
        handed: Sequence[int],
    ) -> list[VerifiedChain]:
        """Every block's content from `start` on, then the `handed` signatures; signatures in
        `signatures` are deferred to its `confirm`, others verified in turn."""
        states: list[VerifiedChain] = []
        block = None
        try:
            for index in range(start, len(blocks)):
                state, block = self._extend(state, index, blocks, now, block, snapshot, signatures)
                states.append(state)
        finally:
            if signatures is not None:
                signatures.check(handed)
        return states

    def _signature_jobs(
        self, blocks: list[_Signed], start: int, snapshot: object
    ) -> dict[int, tuple[bytes, bytes, bytes]]:
        """What verifies each block's signature from `start` on: (public key, signature, signed
        bytes). A block whose key is unknown or whose input is malformed ends the list:
        `_extend` refuses it in its turn."""
        jobs: dict[int, tuple[bytes, bytes, bytes]] = {}
        previous = blocks[start - 1][2] if start else b""
        for index in range(start, len(blocks)):
            key_id, payload, signature = blocks[index]
            entry = self._key(key_id, snapshot)
            if entry is None:
                break
            try:
                message = block_input(index, key_id, payload, previous)
            except TokenError:
                break
            jobs[index] = (entry.public, signature, message)
            previous = signature
        return jobs

    def _extend(  # noqa: PLR0917 -- one call site, all of it per block
        self,
        parent: VerifiedChain | None,
        index: int,
        blocks: list[_Signed],
        now: float,
        previous: token_pb2.Block | None,
        snapshot: object,
        signatures: _Signatures | None,
    ) -> tuple[VerifiedChain, token_pb2.Block]:
        """The chain after block `index`; `previous` is block index-1's content when this
        verification parsed it (not when it came from the prefix cache); the verdict on a
        signature in `signatures` is deferred to its `confirm`."""
        key_id, payload, signature = blocks[index]
        if len(signature) != SIGNATURE_BYTES:
            raise TokenError("BAD_SIGNATURE", "a signature is 64 bytes", index)
        entry = self._signer(index, key_id, parent, snapshot)
        if signatures is None or not signatures.defer(index, entry.public):
            message = block_input(index, key_id, payload, blocks[index - 1][2] if index else b"")
            if not verify_signature(entry.public, signature, message):
                raise TokenError("BAD_SIGNATURE", "the signature does not verify", index)
        block = parse_canonical(token_pb2.Block(), payload, "the block", index)
        # Grants or audience the same as the previous block's are taken as they were, already
        # parsed and checked: a hop often changes only the holder and the expiry.
        if previous is None:
            same_grants = same_audience = False
        else:
            same_grants = block.grants == previous.grants
            same_audience = block.audience == previous.audience
        child = self._read_block(block, index, entry, key_id, signature, now, parent,
                                 same_grants, same_audience, snapshot)  # fmt: skip
        if parent is not None:
            self._check_narrowing(parent, child, index, same_grants)
        return child, block

    def _read_block(  # noqa: PLR0917 -- one call site, per block: positional is cheaper
        self,
        block: token_pb2.Block,
        index: int,
        entry: KeyEntry,
        key_id: str,
        signature: bytes,
        now: float,
        parent: VerifiedChain | None,
        same_grants: bool,
        same_audience: bool,
        snapshot: object,
    ) -> VerifiedChain:
        """The chain's terms after this block, once the block's own content is checked."""
        delegator, holder = block.delegator, block.holder
        organism, holder_organism = delegator.organism, holder.organism
        if organism != entry.organism or delegator.key_id != key_id:
            raise TokenError("WRONG_SIGNER", "the block names another delegator", index)
        chain_id, token_id, subject = block.chain_id, block.token_id, block.subject
        if len(chain_id) != ID_BYTES or len(token_id) != ID_BYTES:
            raise TokenError("MALFORMED", "chain and token ids are 16 bytes", index)
        if not 0 < len(subject) <= MAX_SUBJECT or not holder_organism:
            raise TokenError("MALFORMED", "the subject and the holder are required", index)
        # A slice reads the repeated field at once (iterating the container is slower).
        audience = parent.audience if same_audience and parent else frozenset(block.audience[:])
        if not 0 < len(audience) <= MAX_AUDIENCE:
            raise TokenError("MALFORMED", "the audience has 1 to 16 entries", index)
        profile, not_before, expires = block.profile, block.not_before, block.expires
        lifetime = _LIFETIMES.get(profile)
        if lifetime is None:
            raise TokenError("MALFORMED", "the profile is missing or unknown", index)
        if not_before <= 0 or expires <= not_before:
            raise TokenError("MALFORMED", "not_before and expires are required, in order", index)
        if expires - not_before > lifetime:
            name = profiles.name(profile)
            raise TokenError(
                "LIFETIME_TOO_LONG", f"a {name} block lives at most {lifetime} s", index
            )
        leeway = self.leeway
        if not_before > now + leeway or expires < now - leeway:
            self._check_time(not_before, expires, now, index)  # raises with the reason
        if not_before < entry.valid_from - leeway or 0 < entry.valid_until < not_before:
            raise TokenError("KEY_NOT_VALID", "the key was not valid when it signed", index)
        holder_key_id, holder_public = holder.key_id, holder.public_key
        if not holder_key_id or holder_public:
            self._check_holder_key(
                holder_organism, holder_key_id, holder_public, index, snapshot, organism
            )
        # tuple.__new__ skips the named tuples' Python-level constructors: this runs per block.
        holder_party = _new(Party, (holder_organism, holder_key_id, holder_public))
        hop = _new(Hop, (index, _new(Party, (organism, key_id, b"")), holder_party, profile,
                         not_before, expires, block.purpose, token_id,
                         revocation_id(signature)))  # fmt: skip
        hops = (*parent.hops, hop) if parent is not None else (hop,)
        grants = parent.grants if same_grants and parent else grants_from(block.grants, index)
        return _new(VerifiedChain, (chain_id, subject, profile, holder_party, audience, grants,
                                    expires, block.max_hops, hops, b""))  # fmt: skip

    def _check_holder_key(  # noqa: PLR0917 -- the block's facts, in the order they are read
        self,
        organism: str,
        key_id: str,
        public: bytes,
        index: int,
        snapshot: object,
        signer: str,
    ) -> None:
        """A holder names exactly one key; a session key only for an organism of a root kind
        (the portal, which signs the next hop itself after the session key's proof), in a block
        that organism signed: no one else may name a key outside the directory on its behalf."""
        if key_id or not public:
            raise TokenError(
                Reason.HOLDER_KEY_REQUIRED, "the holder names one key: key_id or public_key", index
            )
        if not self._of_root_kind(organism, snapshot):
            raise TokenError(
                Reason.HOLDER_KEY_REQUIRED, f"{organism} must name a key of its directory", index
            )
        if signer != organism:
            raise TokenError(
                Reason.HOLDER_KEY_REQUIRED,
                f"only {organism} names a session key of its own, not {signer}", index,
            )  # fmt: skip
        try:
            check_public_key(public)
        except TokenError as error:
            raise TokenError(error.reason, error.message, index) from None

    @staticmethod
    def _check_narrowing(
        parent: VerifiedChain, child: VerifiedChain, index: int, same_grants: bool
    ) -> None:
        if child.chain_id != parent.chain_id:
            raise TokenError("CHAIN_ID_CHANGED", "the chain id is fixed at the root", index)
        if child.subject != parent.subject:
            raise TokenError("SUBJECT_CHANGED", "the subject is fixed at the root", index)
        if parent.max_hops == 0:
            raise TokenError("TOO_MANY_HOPS", "the previous block allows no further hop", index)
        if child.max_hops >= parent.max_hops:
            raise TokenError("HOPS_NOT_DECREASING", "max_hops must decrease at each hop", index)
        if not profiles.may_follow(parent.profile, child.profile):
            raise TokenError("PROFILE_WIDENED", "the profile may not move back", index)
        if child.audience is not parent.audience and not child.audience <= parent.audience:
            raise TokenError("AUDIENCE_WIDENED", "the audience may only narrow", index)
        if child.expires > parent.expires:
            raise TokenError("EXPIRY_EXTENDED", "the expiry may not grow", index)
        right = None if same_grants else widening(parent.grants, child.grants)
        if right is not None:
            raise TokenError("GRANTS_WIDENED", f"the {right} grant is wider than before", index)

    # -- the call --------------------------------------------------------------------------------

    def check_proof(
        self,
        proof: bytes,
        *,
        holder: Party,
        method: str,
        audience: str,
        token_hash: bytes,
        now: float | None = None,
    ) -> token_pb2.CallProof:
        """Checks a proof of possession of `holder`'s key for one use; returns it parsed.

        The key is the holder's session `public_key` (the proof's key id is then its
        `key_id_of`), or its directory `key_id`, which must be in use at the proof's time and not
        retired (KEY_NOT_VALID). A holder naming no key (an organism signing in) accepts any key
        of its organism under the same rule.
        """
        now = self.clock() if now is None else now
        if len(proof) > 512:
            raise TokenError("BAD_PROOF", "the proof is too large")
        try:
            parsed = parse_canonical(token_pb2.CallProof(), proof, "the proof")
        except TokenError:
            raise TokenError("BAD_PROOF", "the proof is malformed") from None
        key_id = parsed.key_id
        if holder.public_key:
            if key_id != key_id_of(holder.public_key):
                raise TokenError("BAD_PROOF", "the proof is not signed by the holder's key")
            public = holder.public_key
        else:
            public = self._proof_key(key_id, holder, parsed.time)
        if len(parsed.nonce) != NONCE_BYTES or len(parsed.signature) != SIGNATURE_BYTES:
            raise TokenError("BAD_PROOF", "the nonce is 16 bytes and the signature 64")
        if abs(now - parsed.time) > self.leeway:
            raise TokenError("STALE_PROOF", "the proof was not made for this moment")
        message = proof_input(key_id, method, audience, parsed.time, parsed.nonce, token_hash)
        if not verify_signature(public, parsed.signature, message):
            raise TokenError("BAD_PROOF", "the proof's signature does not verify")
        return parsed

    def _proof_key(self, key_id: str, holder: Party, moment: int) -> bytes:
        """The directory key that may sign a proof for `holder` at `moment`."""
        entry = self.keys.key(key_id)
        if entry is None:
            raise TokenError("BAD_PROOF", f"no key {key_id!r} in the directory")
        if entry.organism != holder.organism or (holder.key_id and holder.key_id != key_id):
            raise TokenError("BAD_PROOF", "the proof is not signed by the chain's holder")
        if not entry.proves_at(moment, self.leeway):
            raise TokenError(
                Reason.KEY_NOT_VALID, "a retired or not yet valid key may not sign a proof"
            )
        return entry.public

    def single_use_keys(
        self, chain: VerifiedChain | None, proof: token_pb2.CallProof | None
    ) -> list[tuple[bytes, float]]:
        """What a call spends, each with the moment until which it must be remembered: the
        last token id of a navigation chain, the nonce of a proof."""
        spent: list[tuple[bytes, float]] = []
        if chain is not None and chain.profile == profiles.NAVIGATION:
            spent.append((TOKEN_KEY + chain.hops[-1].token_id, chain.expires + self.leeway))
        if proof is not None:
            key = PROOF_KEY + proof.key_id.encode() + b"\x00" + proof.nonce
            spent.append((key, proof.time + self.leeway))
        return spent

    def check_call(
        self,
        token: bytes,
        proof: bytes | None,
        *,
        method: str,
        audience: str,
        now: float | None = None,
    ) -> tuple[VerifiedChain, list[tuple[bytes, float]]]:
        """Everything a server checks of a call but single use: the chain meant for `audience`
        and, for every profile, the proof of possession of the key its last block names as
        holder. Returns the chain and the single-use keys the call spends, for the caller's
        replay cache."""
        now = self.clock() if now is None else now
        chain = self.verify(token, audience, now)
        if not proof:
            raise TokenError("PROOF_REQUIRED", "every use of a chain needs its holder's proof")
        parsed = self.check_proof(
            proof, holder=chain.holder, method=method, audience=audience,
            token_hash=chain.token_hash, now=now,
        )  # fmt: skip
        return chain, self.single_use_keys(chain, parsed)

    def accept(
        self,
        token: bytes,
        site: str,
        now: float | None = None,
        *,
        replays: ReplayCache | None = None,
    ) -> VerifiedChain:
        """A navigation chain handed back to `site`, which is itself the last holder (so no
        proof: the verifier is the holder). WRONG_HOLDER unless the last block names `site` as
        holder and the profile is NAVIGATION. With `replays`, spends the chain's token id
        (REPLAYED on reuse); otherwise the caller spends `single_use_keys(chain, None)`."""
        now = self.clock() if now is None else now
        chain = self.verify(token, site, now)
        if chain.holder.organism != site:
            raise TokenError(Reason.WRONG_HOLDER, f"the chain is held by {chain.holder.organism}")
        if chain.profile != profiles.NAVIGATION:
            raise TokenError(Reason.WRONG_HOLDER, "a site accepts only a navigation chain")
        if replays is not None:
            for key, until in self.single_use_keys(chain, None):
                if not replays.first_use(key, until):
                    raise TokenError("REPLAYED", "this token was used already")
        return chain

    def verify_call(
        self,
        token: bytes,
        proof: bytes | None,
        *,
        method: str,
        audience: str,
        replays: ReplayCache,
        now: float | None = None,
    ) -> VerifiedChain:
        """`check_call`, then the spending of its single-use keys in `replays`."""
        chain, spent = self.check_call(token, proof, method=method, audience=audience, now=now)
        for key, until in spent:
            if not replays.first_use(key, until):
                raise TokenError("REPLAYED", "this token or proof was used already")
        return chain
