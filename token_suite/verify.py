"""Verification of a chain, offline: every signature over the raw bytes, then every block's
content, then what each hop may change (attenuation), then the call itself (audience, proof of
possession, single use).

Verified prefixes are cached: a chain whose first k blocks were seen costs only its new blocks.
A cached prefix is keyed by a digest of all its raw bytes, and what can change with time (expiry,
revocation, the directory) is checked again on every call.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Sequence
from typing import NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature
from interops.token.v1 import token_pb2

from token_suite import profiles
from token_suite.directory import KeyEntry
from token_suite.errors import TokenError
from token_suite.grants import Grants, grants_from, widening
from token_suite.keys import SIGNATURE_BYTES
from token_suite.replay import ReplayCache
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
    """An organism or site, and one of its keys (empty: any)."""

    organism: str
    key_id: str = ""


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


def revocation_id(signature: bytes) -> bytes:
    """A block's revocation id: SHA-256 of its signature."""
    return hashlib.sha256(signature).digest()


def _prefix_digests(token: bytes, count: int) -> list[bytes]:
    """SHA-256 of the token's bytes up to the end of each block: the prefix cache's keys.

    The token was checked canonical: `08 01` (version 1), then each block as `12`, its length
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
        revoked: Container[bytes] = frozenset(),
        prefix_cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.leeway = leeway
        self.max_bytes = max_bytes
        self.max_blocks = max_blocks
        self.root_kinds = root_kinds
        self.revoked = revoked
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
        blocks = chain.blocks
        if not blocks:
            raise TokenError("MALFORMED", "the token has no block")
        if len(blocks) > self.max_blocks:
            raise TokenError("TOO_MANY_BLOCKS", f"the token has over {self.max_blocks} blocks")
        if self.prefix_cache_size <= 0:
            state, block = None, None
            for index in range(len(blocks)):
                state, block = self._extend(state, index, blocks, now, block)
        else:
            state = self._verify_with_prefixes(token, blocks, now)
        assert state is not None
        if audience is not None and audience not in state.audience:
            raise TokenError("WRONG_AUDIENCE", f"the token is not meant for {audience}")
        return _new(VerifiedChain, (*state[:-1], token))

    def _verify_with_prefixes(
        self, token: bytes, blocks: Sequence[token_pb2.SignedBlock], now: float
    ) -> VerifiedChain:
        """Verifies the blocks after the longest cached prefix, caching each new prefix."""
        digests = _prefix_digests(token, len(blocks))
        snapshot = self.keys.current()
        prefix, start = self._cached_prefix(digests)
        state = None
        latest_start = 0
        if prefix is not None:
            self._check_still_valid(prefix, snapshot, now)
            state, latest_start = prefix.state, prefix.latest_start
        block = None
        for index in range(start, len(blocks)):
            state, block = self._extend(state, index, blocks, now, block)
            latest_start = max(latest_start, state.hops[-1].not_before)
            self._remember(digests[index], _Prefix(state, snapshot, latest_start))
        assert state is not None
        return state

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
        """What may have changed since the prefix was verified: time, keys, revocations."""
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
        revoked = self.revoked
        for hop in hops:
            if hop.revocation_id in revoked:
                raise TokenError("REVOKED", "the block was revoked", hop.position)

    def _check_time(self, not_before: int, expires: int, now: float, index: int) -> None:
        if not_before > now + self.leeway:
            raise TokenError("NOT_YET_VALID", "the block is not valid yet", index)
        if expires < now - self.leeway:
            raise TokenError("EXPIRED", "the block has expired", index)

    def _signer(self, index: int, key_id: str, parent: VerifiedChain | None) -> KeyEntry:
        entry = self.keys.key(key_id)
        if entry is None:
            raise TokenError("UNKNOWN_KEY", f"no key {key_id!r} in the directory", index)
        if parent is None:
            organism = self.keys.organism(entry.organism)
            if organism is None or organism.kind not in self.root_kinds:
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

    def _extend(
        self,
        parent: VerifiedChain | None,
        index: int,
        blocks: Sequence[token_pb2.SignedBlock],
        now: float,
        previous: token_pb2.Block | None,
    ) -> tuple[VerifiedChain, token_pb2.Block]:
        """The chain after block `index`; `previous` is block index-1's content when this
        verification parsed it (not when it came from the prefix cache)."""
        signed = blocks[index]
        signature = signed.signature
        if len(signature) != SIGNATURE_BYTES:
            raise TokenError("BAD_SIGNATURE", "a signature is 64 bytes", index)
        key_id, payload = signed.key_id, signed.payload
        entry = self._signer(index, key_id, parent)
        previous_signature = blocks[index - 1].signature if index else b""
        try:
            entry.public.verify(signature, block_input(index, key_id, payload, previous_signature))
        except InvalidSignature:
            raise TokenError("BAD_SIGNATURE", "the signature does not verify", index) from None
        block = parse_canonical(token_pb2.Block(), payload, "the block", index)
        # Grants or audience the same as the previous block's are taken as they were, already
        # parsed and checked: a hop often changes only the holder and the expiry.
        same_grants = previous is not None and block.grants == previous.grants
        same_audience = previous is not None and block.audience == previous.audience
        child = self._read_block(
            block, index, entry=entry, key_id=key_id, signature=signature, now=now,
            parent=parent, same_grants=same_grants, same_audience=same_audience,
        )  # fmt: skip
        if parent is not None:
            self._check_narrowing(parent, child, index, same_grants=same_grants)
        if child.hops[-1].revocation_id in self.revoked:
            raise TokenError("REVOKED", "the block was revoked", index)
        return child, block

    def _read_block(
        self,
        block: token_pb2.Block,
        index: int,
        *,
        entry: KeyEntry,
        key_id: str,
        signature: bytes,
        now: float,
        parent: VerifiedChain | None,
        same_grants: bool,
        same_audience: bool,
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
        audience = parent.audience if same_audience and parent else frozenset(block.audience)
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
        # tuple.__new__ skips the named tuples' Python-level constructors: this runs per block.
        holder_party = _new(Party, (holder_organism, holder.key_id))
        delegator_party = _new(Party, (organism, key_id))
        hop = _new(Hop, (index, delegator_party, holder_party, profile, not_before, expires,
                         block.purpose, token_id, revocation_id(signature)))  # fmt: skip
        hops = (*parent.hops, hop) if parent is not None else (hop,)
        grants = parent.grants if same_grants and parent else grants_from(block.grants, index)
        return _new(VerifiedChain, (chain_id, subject, profile, holder_party, audience, grants,
                                    expires, block.max_hops, hops, b""))  # fmt: skip

    @staticmethod
    def _check_narrowing(
        parent: VerifiedChain, child: VerifiedChain, index: int, *, same_grants: bool
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
        """Checks a proof of possession of `holder`'s key for one call; returns it parsed."""
        now = self.clock() if now is None else now
        if len(proof) > 512:
            raise TokenError("BAD_PROOF", "the proof is too large")
        try:
            parsed = parse_canonical(token_pb2.CallProof(), proof, "the proof")
        except TokenError:
            raise TokenError("BAD_PROOF", "the proof is malformed") from None
        entry = self.keys.key(parsed.key_id)
        if entry is None:
            raise TokenError("BAD_PROOF", f"no key {parsed.key_id!r} in the directory")
        if entry.organism != holder.organism or (holder.key_id and holder.key_id != parsed.key_id):
            raise TokenError("BAD_PROOF", "the proof is not signed by the chain's holder")
        if len(parsed.nonce) != NONCE_BYTES or len(parsed.signature) != SIGNATURE_BYTES:
            raise TokenError("BAD_PROOF", "the nonce is 16 bytes and the signature 64")
        if abs(now - parsed.time) > self.leeway:
            raise TokenError("STALE_PROOF", "the proof was not made for this moment")
        if not entry.signs_at(parsed.time, self.leeway):
            raise TokenError("BAD_PROOF", "the key was not valid when it signed the proof")
        message = proof_input(
            parsed.key_id, method, audience, parsed.time, parsed.nonce, token_hash
        )
        try:
            entry.public.verify(parsed.signature, message)
        except InvalidSignature:
            raise TokenError("BAD_PROOF", "the proof's signature does not verify") from None
        return parsed

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
        and the proof of possession when the profile asks for one (or one is given). Returns the
        chain and the single-use keys the call spends, for the caller's replay cache."""
        now = self.clock() if now is None else now
        chain = self.verify(token, audience, now)
        parsed = None
        if proof:
            parsed = self.check_proof(
                proof, holder=chain.holder, method=method, audience=audience,
                token_hash=chain.token_hash, now=now,
            )  # fmt: skip
        elif chain.profile == profiles.APPLICATION:
            raise TokenError("PROOF_REQUIRED", "an application chain needs a proof of possession")
        return chain, self.single_use_keys(chain, parsed)

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
