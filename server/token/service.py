"""interops.token.v1.TokenService: issues root tokens after a sign-in or an organism's proof of
possession, appends hops as the identity provider for its sessions, verifies and revokes chains,
and publishes the signed directory and the signed revocation list.

Every call about a chain but RevokeToken carries a proof by the key the chain's last block names
as holder (metadata "interops-proof-bin", signed for the method called, audience this service,
over the SHA-256 of the token in the request): whoever has only the bytes of a chain, or of one
of its prefixes, can neither extend it nor spend it here."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Iterator

from interops.token.v1 import token_pb2, token_service_pb2, token_service_pb2_grpc

from registry.habilitation.declarant_rights import declarant_rights
from registry.relations.store import IDLE_MONTHS
from registry.trust.declarant_store import DeclarantStore, SignInRefused
from registry.trust.issuance import (
    IssueRefused,
    asked_grants,
    check_extendable,
    check_lifetime,
    check_profile,
    declarant_subject,
)
from server.rpc.attempt_limit import AttemptLimit
from server.rpc.auth_interceptor import refusal, token_and_proof
from server.rpc.client_address import client_address
from server.rpc.errors import (
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
)
from server.rpc.handler_wrapping import Context
from server.token.trust import NodeTrust
from token_suite.chain import Terms, delegate, inspect, issue_root
from token_suite.errors import TokenError
from token_suite.grants import Grants, grants_to_messages
from token_suite.keys import check_public_key
from token_suite.verify import Party, VerifiedChain
from token_suite.wire import PROOF_METADATA

SERVICE = "interops.token.v1.TokenService"
_ISSUE = f"/{SERVICE}/IssueToken"
_DELEGATE = f"/{SERVICE}/DelegateToken"
_VERIFY = f"/{SERVICE}/VerifyToken"
_REVOKE = f"/{SERVICE}/RevokeToken"
_EMPTY_HASH = hashlib.sha256(b"").digest()
# How each issuing rule's refusal is told (any other: INVALID_ARGUMENT).
_REFUSALS: dict[str, type[ServiceError]] = {
    "NO_GRANTS": PermissionDenied,
    "GRANT_NOT_HELD": PermissionDenied,
    "NOT_HOLDER": PermissionDenied,
}


@contextlib.contextmanager
def _ruled() -> Iterator[None]:
    """An issuing rule's refusal becomes the matching status."""
    try:
        yield
    except IssueRefused as refused:
        kind = _REFUSALS.get(refused.reason, InvalidArgument)
        raise kind(refused.reason, refused.message) from None


def _proof(context: Context) -> bytes:
    _, proof = token_and_proof(context)
    if proof is not None:
        return proof
    raise Unauthenticated("PROOF_MISSING", f"a proof of possession is required in {PROOF_METADATA}")


def _party(party: Party) -> token_pb2.Party:
    return token_pb2.Party(
        organism=party.organism, key_id=party.key_id, public_key=party.public_key
    )


def principal_message(chain: VerifiedChain) -> token_service_pb2.Principal:
    """The verified chain as the contract shows it, its chain of responsibility included."""
    return token_service_pb2.Principal(
        subject=chain.subject,
        chain_id=chain.chain_id,
        profile=chain.profile,  # type: ignore[arg-type]
        audience=sorted(chain.audience),
        grants=grants_to_messages(chain.grants),
        expires=chain.expires,
        hops=[
            token_service_pb2.Hop(
                index=hop.position,
                delegator=_party(hop.delegator),
                holder=_party(hop.holder),
                profile=hop.profile,  # type: ignore[arg-type]
                not_before=hop.not_before,
                expires=hop.expires,
                purpose=hop.purpose,
                revocation_id=hop.revocation_id,
            )
            for hop in chain.hops
        ],
    )  # fmt: skip


# Revocations one key may ask for in a minute. A list of 4 MiB (what verifiers take) holds about
# 120,000 revocation ids, each listed until its block expires (an hour at most, 5 minutes for the
# blocks an organism makes itself): at this rate one key keeps at most 3,600 listed.
REVOCATIONS_A_MINUTE = 60


class TokenService(token_service_pb2_grpc.TokenServiceServicer):
    """The token service of the node."""

    def __init__(
        self,
        trust: NodeTrust,
        declarants: DeclarantStore,
        door_secret: bytes = b"",
        link_idle_months: int = IDLE_MONTHS,
    ) -> None:
        self.trust = trust
        self.declarants = declarants
        # How long a DSN link lasts without a DSN: a declarant's chain inherits only live ones.
        self.link_idle_months = link_idle_months
        # Whose sign-in the node's web adapter forwards (server/rpc/client_address.py).
        self.door_secret = door_secret
        self.revocations = AttemptLimit(limit=REVOCATIONS_A_MINUTE, seconds=60)

    async def _spend(self, keys: list[tuple[bytes, float]], used: str) -> None:
        """Spends a call's single-use keys (a proof's nonce, a navigation chain); REPLAYED when
        one was spent already."""
        if not await self.trust.spend(keys):
            raise Unauthenticated("REPLAYED", used)

    async def IssueToken(
        self, request: token_service_pb2.IssueTokenRequest, context: Context
    ) -> token_service_pb2.IssueTokenResponse:
        """Signs a root block after authenticating the subject."""
        if request.HasField("declarant"):
            holder = self._session_holder(request.holder)
            subject, held = await self._sign_in_declarant(request.declarant, context)
        else:
            subject, held, holder = await self._sign_in_organism(request.organism.organism, context)
        with _ruled():
            check_profile(subject, request.profile)
            terms = self._terms(request, held, holder)
        token = issue_root(self.trust.issuer, subject, terms)
        return token_service_pb2.IssueTokenResponse(token=token, expires=_expiry(token))

    def _terms(
        self, request: token_service_pb2.IssueTokenRequest, held: Grants, holder: Party
    ) -> Terms:
        check_lifetime(request.profile, request.lifetime_seconds)
        return Terms(
            holder=holder, profile=request.profile, audience=tuple(request.audience),
            grants=asked_grants(held, request.grants), lifetime=request.lifetime_seconds,
            max_hops=request.max_hops, purpose=request.purpose,
        )  # fmt: skip

    def _session_holder(self, asked: token_pb2.Party) -> Party:
        """A declarant's chain is held by a session key of the identity provider: the key of
        the portal side (the web adapter, a CLI) that signed the declarant in, which proves
        every use of the chain and never leaves it."""
        portal = self.trust.issuer.organism
        if not asked.public_key or asked.organism not in ("", portal) or asked.key_id:
            raise InvalidArgument(
                "HOLDER_KEY_REQUIRED",
                f"a declarant's chain is held by a session key: name holder.public_key "
                f"(organism {portal} or empty)",
            )
        try:
            check_public_key(asked.public_key)
        except TokenError as error:
            raise InvalidArgument(error.reason, error.message) from None
        return Party(portal, public_key=asked.public_key)

    async def _sign_in_declarant(
        self, sign_in: token_service_pb2.DeclarantSignIn, context: Context
    ) -> tuple[str, Grants]:
        try:
            declarant = await asyncio.to_thread(
                self.declarants.sign_in, sign_in.siret, sign_in.last_name, sign_in.first_name,
                sign_in.password, source=client_address(context, self.door_secret),
            )  # fmt: skip
        except SignInRefused as refused:
            raise sign_in_refusal(refused) from None
        subject = declarant_subject(declarant)
        # Before the rights are read: a change committed meanwhile cuts this chain too.
        await self._after_cutoff(subject)
        held = await asyncio.to_thread(
            declarant_rights, self.declarants.engine, declarant, self.link_idle_months
        )
        return subject, held

    async def _after_cutoff(self, subject: str) -> None:
        """Waits, when the subject's chains were cut in this second, for the next one: a cutoff
        ends the blocks that start before it, and a block starts at a whole second."""
        before = await asyncio.to_thread(self.trust.revocation_store.cutoff_of, subject)
        wait = before - time.time()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _sign_in_organism(self, organism: str, context: Context) -> tuple[str, Grants, Party]:
        verifier = self.trust.verifier
        try:
            proof = verifier.check_proof(
                _proof(context), holder=Party(organism), method=_ISSUE, audience=SERVICE,
                token_hash=_EMPTY_HASH,
            )  # fmt: skip
        except TokenError as error:
            raise refusal(error) from None
        await self._spend(verifier.single_use_keys(None, proof), "this proof was used already")
        held = await asyncio.to_thread(self.trust.directory.grants_of, organism)
        # The chain is held by the key that proved the sign-in: only it proves its uses.
        return f"organism:{organism}", held, Party(organism, proof.key_id)

    async def DelegateToken(
        self, request: token_service_pb2.DelegateTokenRequest, context: Context
    ) -> token_service_pb2.DelegateTokenResponse:
        """Appends a hop signed by the identity provider to a portal chain of one of its
        sessions, on the session key's proof; the new holder names its key."""
        chain = await self._proven(request.token, _DELEGATE, context)
        with _ruled():
            check_extendable(chain.holder.organism, chain.holder.public_key, chain.profile,
                             self.trust.issuer.organism)  # fmt: skip
            terms = Terms(
                holder=_named_holder(request.holder),
                profile=request.profile, audience=tuple(request.audience),
                grants=asked_grants(chain.grants, request.grants) if request.grants else {},
                lifetime=request.lifetime_seconds,
                max_hops=request.max_hops if request.max_hops else None, purpose=request.purpose,
            )  # fmt: skip
        if self.trust.keys.organism(terms.holder.organism) is None:
            raise InvalidArgument("UNKNOWN_HOLDER", f"no organism {terms.holder.organism}")
        self._check_holder_key(terms.holder)
        token = delegate(request.token, self.trust.issuer, terms)
        try:
            self.trust.verifier.verify(token)
        except TokenError as error:  # the hop asked for more than the chain allows
            raise InvalidArgument(error.reason, str(error)) from None
        return token_service_pb2.DelegateTokenResponse(token=token, expires=_expiry(token))

    def _check_holder_key(self, holder: Party) -> None:
        """A directory key the next holder names must be its organism's, and in use."""
        if not holder.key_id:
            return
        entry = self.trust.keys.key(holder.key_id)
        if entry is None or entry.organism != holder.organism:
            raise InvalidArgument("UNKNOWN_KEY", f"{holder.organism} has no key {holder.key_id}")
        if not entry.proves_at(time.time(), self.trust.verifier.leeway):
            raise InvalidArgument("KEY_NOT_VALID", f"the key {holder.key_id} is not in use")

    def _verified(self, token: bytes, audience: str | None = None) -> VerifiedChain:
        try:
            return self.trust.verifier.verify(token, audience)
        except TokenError as error:
            raise refusal(error) from None

    async def _proven(
        self, token: bytes, method: str, context: Context, audience: str | None = None
    ) -> VerifiedChain:
        """The verified chain, on a proof by its last holder's key for this call; the
        proof's nonce (and a single-use chain, for VerifyToken) is spent."""
        chain = self._verified(token, audience)
        _, proof = token_and_proof(context)
        verifier = self.trust.verifier
        try:
            if not proof:
                raise TokenError("PROOF_REQUIRED", "the chain's holder proves this call")
            parsed = verifier.check_proof(
                proof, holder=chain.holder, method=method, audience=SERVICE,
                token_hash=chain.token_hash,
            )  # fmt: skip
        except TokenError as error:
            raise refusal(error) from None
        spent = verifier.single_use_keys(chain if method == _VERIFY else None, parsed)
        await self._spend(spent, "this token or proof was used already")
        return chain

    async def VerifyToken(
        self, request: token_service_pb2.VerifyTokenRequest, context: Context
    ) -> token_service_pb2.VerifyTokenResponse:
        """Verifies a chain for the audience, on its holder's proof; a single-use chain is
        spent."""
        chain = await self._proven(request.token, _VERIFY, context, request.audience)
        return token_service_pb2.VerifyTokenResponse(principal=principal_message(chain))

    async def RevokeToken(
        self, request: token_service_pb2.RevokeTokenRequest, context: Context
    ) -> token_service_pb2.RevokeTokenResponse:
        """Revokes a block, on a proof by the key that signed it or by the key it names as
        holder (a session signing out revokes its root this way)."""
        chain = self._verified(request.token)
        if request.block >= len(chain.hops):
            raise InvalidArgument("NO_SUCH_BLOCK", f"the chain has {len(chain.hops)} blocks")
        hop = chain.hops[request.block]
        proof = self._proof_by_either(_proof(context), (hop.delegator, hop.holder), chain)
        await self._spend(
            self.trust.verifier.single_use_keys(None, proof), "this proof was used already"
        )
        # Each revocation is published until its block expires: a party revoking blocks it
        # makes for the purpose could grow the list past what offline verifiers take, and
        # they would then fail closed for everyone. Per revoking key (an organism's key, or a
        # session), never more than a person or a system revokes in earnest.
        if not self.revocations.allow(proof.key_id):
            raise ResourceExhausted(
                "TOO_MANY_REVOCATIONS",
                f"at most {REVOCATIONS_A_MINUTE} revocations a minute by one key; retry in "
                f"{self.revocations.retry_after(proof.key_id)} s",
            )
        await asyncio.to_thread(self.trust.revoke, hop.revocation_id, hop.expires)
        return token_service_pb2.RevokeTokenResponse(revocation_id=hop.revocation_id)

    def _proof_by_either(
        self, proof: bytes, parties: tuple[Party, ...], chain: VerifiedChain
    ) -> token_pb2.CallProof:
        """The proof checked as made by one of these parties' keys; the first refusal
        otherwise."""
        refused: TokenError | None = None
        for party in parties:
            try:
                return self.trust.verifier.check_proof(
                    proof, holder=party, method=_REVOKE, audience=SERVICE,
                    token_hash=chain.token_hash,
                )  # fmt: skip
            except TokenError as error:
                refused = refused or error
        assert refused is not None
        raise PermissionDenied(
            refused.reason, "only the block's signer or its holder may revoke it"
        ) from None

    async def GetDirectory(
        self, request: token_service_pb2.GetDirectoryRequest, context: Context
    ) -> token_service_pb2.GetDirectoryResponse:
        """The directory, signed by the root key."""
        signed = await asyncio.to_thread(self.trust.signed_directory_message)
        return token_service_pb2.GetDirectoryResponse(directory=signed)

    async def GetRevocations(
        self, request: token_service_pb2.GetRevocationsRequest, context: Context
    ) -> token_service_pb2.GetRevocationsResponse:
        """The revocations in force, signed by the root key, valid a short while."""
        signed = token_pb2.SignedRevocations.FromString(self.trust.signed_revocations())
        return token_service_pb2.GetRevocationsResponse(revocations=signed)


def sign_in_refusal(refused: SignInRefused) -> ServiceError:
    """How a refused sign-in is told: UNAUTHENTICATED, or RESOURCE_EXHAUSTED with the wait in
    ErrorInfo's metadata "retry_after_seconds" (REST: Retry-After)."""
    if refused.reason == "TOO_MANY_ATTEMPTS":
        return ResourceExhausted(
            refused.reason,
            refused.message,
            metadata={"retry_after_seconds": str(refused.retry_after)},
        )
    return Unauthenticated(refused.reason, refused.message)


def _named_holder(holder: token_pb2.Party) -> Party:
    """The next holder of a hop the backbone signs, which must name its key (a partner site:
    its current directory key), so that only it can use the chain."""
    if bool(holder.key_id) == bool(holder.public_key):
        raise InvalidArgument(
            "HOLDER_KEY_REQUIRED", "the next holder names one key: key_id or public_key"
        )
    return Party(holder.organism, holder.key_id, holder.public_key)


def _expiry(token: bytes) -> int:
    return int(inspect(token)[-1].expires)
