"""The node's side of the token suite: its keys, the directory it publishes, the verifier it
checks every call with, revocations followed from the database (and the signed list it
publishes of them), and spent single-use keys.

The node keeps two keys in its data directory: the root key, which signs the directory
snapshots (verifiers pin its public half), and the issuer key of the identity provider
(the portal organism), which signs root blocks. Both are created on first start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from interops.token.v1 import token_pb2
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import Engine

from registry.trust.directory_store import DirectoryError, DirectoryStore
from registry.trust.revocation_store import Revocation, RevocationStore
from registry.trust.spent_token_store import SpentTokenStore
from server.config import Settings
from server.rpc.coalescing import Coalescer
from token_suite.chain import Signer
from token_suite.directory import DirectoryCache, sign_directory
from token_suite.keys import key_id_of, load_or_create_private_key, public_bytes
from token_suite.replay import MemoryReplayCache
from token_suite.revocations import Revocations, sign_revocations
from token_suite.verify import Verifier

log = logging.getLogger("interops.trust")
# How often a replica deletes the revocations that revoke no valid chain any more.
_PRUNE_SECONDS = 60.0
# Every authenticated call spends its proof's nonce in the database: under load, calls of the
# same 3 ms share a transaction (a batch per call cost the node a third of its calls, bench
# audit_overhead; README, "Token chains"), and a lone call does not wait.
SPEND_PACE = 0.003
# Revocations read again at every poll below the greatest id seen: ids are given at insertion
# and transactions commit in any order, so a row may appear below one read already.
_REREAD_ROWS = 256


def node_key(path: Path) -> Ed25519PrivateKey:
    """The key in `path`, created there on first use."""
    if not path.exists():
        log.info("created key %s", path)
    return load_or_create_private_key(path)


class NodeTrust:
    """Everything the node needs to issue and verify chains."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.settings = settings
        self.directory = DirectoryStore(engine)
        self.revocation_store = RevocationStore(engine)
        self.spent = SpentTokenStore(engine)
        keys_dir = settings.data_dir / "keys"
        self.root_key = node_key(keys_dir / "root.pem")
        self.root_key_id = key_id_of(public_bytes(self.root_key))
        issuer_key = node_key(keys_dir / "issuer.pem")
        self.issuer = Signer(
            settings.issuer_organism, key_id_of(public_bytes(issuer_key)), issuer_key
        )
        self.keys = DirectoryCache(
            self.signed_directory,
            {self.root_key_id: self.root_key.public_key()},
            refetch_seconds=settings.directory_refetch_seconds,
        )
        # The root key belongs to no organism: verifiers pin it.
        self.root_signer = Signer("", self.root_key_id, self.root_key)
        # The live revocations: block ids and subjects' cutoffs, each with its `until`.
        self._blocks: dict[bytes, int] = {}
        self._cutoffs: dict[str, tuple[int, int]] = {}
        self._revocations = Revocations.none()
        self._revocation_position = 0
        self._revocation_lock = threading.Lock()
        self._pruned_at = 0.0
        self._signed_revocations: tuple[Revocations, float, bytes] | None = None
        self._directory_serial = -1
        # Each organism's TLS key pins (mutual TLS), read again when the directory changes.
        self.tls_pins: dict[str, frozenset[bytes]] = {}
        self.verifier = Verifier(self.keys, leeway=settings.token_leeway_seconds,
                                 revocations=self.revocations)  # fmt: skip
        self._memory_spent = MemoryReplayCache()
        # Calls spending keys at the same moment share one database transaction, at most one
        # every SPEND_PACE seconds: a batch costs about the same whatever its size.
        self._spending: Coalescer[tuple[bytes, float], bool] = Coalescer(
            self._spend_batch, pace=SPEND_PACE
        )
        self._follower: asyncio.Task[None] | None = None

    def publish_issuer(self) -> None:
        """Makes sure the identity provider and its current key are in the directory."""
        with contextlib.suppress(DirectoryError):
            self.directory.add_organism(self.issuer.organism, "Identity provider", "PORTAL")
        with contextlib.suppress(DirectoryError):
            self.directory.add_key(
                self.issuer.organism, public_bytes(self.issuer.key), valid_from=0
            )

    def signed_directory(self) -> bytes:
        """The directory as it is now, signed by the root key (serialized SignedDirectory)."""
        return self.signed_directory_message().SerializeToString()

    def signed_directory_message(self) -> token_pb2.SignedDirectory:
        """The same, as a message."""
        return sign_directory(
            self.directory.snapshot(int(self.settings.directory_lifetime_seconds)),
            self.root_key, self.root_key_id,
        )  # fmt: skip

    def refresh(self) -> None:
        """Takes in what any replica or operator changed: new revocations, and a changed
        directory (a retired key stops verifying here at once, not when the snapshot expires)."""
        now = time.time()
        if now - self._pruned_at >= _PRUNE_SECONDS:
            self._pruned_at = now
            self.revocation_store.prune(now)
        serial = self.directory.serial()
        if serial != self._directory_serial:
            self._directory_serial = serial
            self.keys.reload()  # here, in a worker thread, not in a call on the event loop
            if self.settings.grpc_tls_client_ca:
                self.tls_pins = self.directory.tls_pins()
        with self._revocation_lock:
            position = self._revocation_position
            found, last = self.revocation_store.after(max(position - _REREAD_ROWS, 0))
            self._revocation_position = max(position, last)
            self._take(found, now)

    def _take(self, found: list[Revocation], now: float) -> None:
        """The live view with these revocations added and the outdated ones dropped (called
        with the lock held)."""
        changed = self._add(found) | self._drop_outdated(now)
        view, serial = self._revocations, max(self._directory_serial, 0)
        sequence = self._revocation_position
        if changed or (view.sequence, view.directory_serial) != (sequence, serial):
            cutoffs = {subject: before for subject, (before, _) in self._cutoffs.items()}
            self._revocations = dataclasses.replace(
                view, sequence=sequence, directory_serial=serial,
                blocks=frozenset(self._blocks), cutoffs=MappingProxyType(cutoffs),
            )  # fmt: skip

    def _add(self, found: list[Revocation]) -> bool:
        """Adds revocations (a subject keeps its latest cutoff); True when one was new."""
        blocks, cutoffs = self._blocks, self._cutoffs
        changed = False
        for revocation in found:
            if revocation.revocation_id is not None and revocation.revocation_id not in blocks:
                blocks[revocation.revocation_id] = revocation.until
                changed = True
            elif revocation.subject is not None:
                cutoff = cutoffs.get(revocation.subject)
                if cutoff is None or cutoff[0] < revocation.before:
                    cutoffs[revocation.subject] = (revocation.before, revocation.until)
                    changed = True
        return changed

    def _drop_outdated(self, now: float) -> bool:
        """Drops the revocations that revoke no valid chain any more; True when one was."""
        outdated = [key for key, until in self._blocks.items() if until < now]
        ended = [key for key, (_, until) in self._cutoffs.items() if until < now]
        for key in outdated:
            del self._blocks[key]
        for subject in ended:
            del self._cutoffs[subject]
        return bool(outdated or ended)

    def revocations(self) -> Revocations:
        """The revocations in force on this node now (its verifier checks every block
        against them)."""
        return self._revocations

    def revoke(self, revocation_id: bytes, expires: int) -> None:
        """Revokes a block of a chain that expires at `expires`, for every replica, and at
        once on this one."""
        self.revocation_store.revoke(revocation_id, expires)
        self.refresh()

    def signed_revocations(self) -> bytes:
        """The revocations in force, as a list signed by the root key (a serialized
        SignedRevocations) valid INTEROPS_REVOCATION_LIST_SECONDS; signed again when they
        change, and at most once a second otherwise."""
        view, now = self._revocations, time.time()
        signed = self._signed_revocations
        if signed is not None and signed[0] is view and now - signed[1] < 1.0:
            return signed[2]
        issued_at = int(now)
        listing = view.to_list(issued_at, issued_at + int(self.settings.revocation_list_seconds))
        data = sign_revocations(self.root_signer, listing)
        self._signed_revocations = (view, now, data)
        return data

    async def spend(self, keys: Iterable[tuple[bytes, float]]) -> bool:
        """Spends single-use keys (a navigation chain's token id, a proof's nonce); False when
        one was spent already, on this node or on any other sharing its database.

        This node's memory refuses its own replays at once; each key is then spent in the
        database, so a proof or a navigation chain replayed to another node is refused too.
        Calls spending at the same moment share one transaction (a group commit,
        server/rpc/coalescing.py): see README, "Token chains", for what it costs.
        """
        wanted = list(keys)
        for key, until in wanted:
            if not self._memory_spent.first_use(key, until):
                return False
        if len(wanted) == 1:  # most calls: one proof (no task to gather)
            return await self._spending.submit(wanted[0])
        spent = await asyncio.gather(*(self._spending.submit(entry) for entry in wanted))
        return all(spent)

    def _spend_batch(self, entries: list[tuple[bytes, float]]) -> dict[tuple[bytes, float], bool]:
        # Untraced: a batch serves many calls (its span would land in the trace of whichever
        # started it), and a span per batch costs every authenticated call.
        with suppress_instrumentation():
            return dict(zip(entries, self.spent.first_uses(entries), strict=True))

    async def start(self) -> None:
        """Publishes the issuer, loads the revocations, and follows revocations and the
        directory (every feed_poll_seconds: each replica sees another's within a second)."""
        await asyncio.to_thread(self.publish_issuer)
        await asyncio.to_thread(self.refresh)
        self._follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.settings.feed_poll_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # the database may come back; keep following
                log.exception("reading revocations and the directory failed")

    async def stop(self) -> None:
        """Stops following and spending keys."""
        await self._spending.stop()
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
