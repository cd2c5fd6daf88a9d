"""interops.token.v1.TokenService: issues root tokens after a sign-in or an organism's proof of
possession, appends hops as the identity provider, verifies and revokes chains, and publishes
the signed directory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator

from interops.token.v1 import token_pb2, token_service_pb2, token_service_pb2_grpc

from registry.habilitation.declarant_rights import declarant_rights
from registry.trust.declarant_store import DeclarantStore, SignInRefused
from registry.trust.issuance import (
    IssueRefused,
    asked_grants,
    check_extendable,
    check_lifetime,
    check_profile,
)
from server.rpc.auth_interceptor import refusal, token_and_proof
from server.rpc.errors import InvalidArgument, PermissionDenied, ServiceError, Unauthenticated
from server.rpc.handler_wrapping import Context
from server.token.trust import NodeTrust
from token_suite.chain import Terms, delegate, inspect, issue_root
from token_suite.errors import TokenError
from token_suite.grants import Grants, grants_to_messages
from token_suite.verify import Party, VerifiedChain
from token_suite.wire import PROOF_METADATA

SERVICE = "interops.token.v1.TokenService"
_ISSUE = f"/{SERVICE}/IssueToken"
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
                delegator=token_pb2.Party(organism=hop.delegator.organism,
                                          key_id=hop.delegator.key_id),
                holder=token_pb2.Party(organism=hop.holder.organism, key_id=hop.holder.key_id),
                profile=hop.profile,  # type: ignore[arg-type]
                not_before=hop.not_before,
                expires=hop.expires,
                purpose=hop.purpose,
                revocation_id=hop.revocation_id,
            )
            for hop in chain.hops
        ],
    )  # fmt: skip


class TokenService(token_service_pb2_grpc.TokenServiceServicer):
    """The token service of the node."""

    def __init__(self, trust: NodeTrust, declarants: DeclarantStore) -> None:
        self.trust = trust
        self.declarants = declarants

    async def IssueToken(
        self, request: token_service_pb2.IssueTokenRequest, context: Context
    ) -> token_service_pb2.IssueTokenResponse:
        """Signs a root block after authenticating the subject."""
        if request.HasField("declarant"):
            subject, held, holder = await self._sign_in_declarant(request.declarant)
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
        if request.HasField("holder") and request.holder.organism:
            holder = Party(request.holder.organism, request.holder.key_id)
            if self.trust.keys.organism(holder.organism) is None:
                raise InvalidArgument("UNKNOWN_HOLDER", f"no organism {holder.organism}")
        return Terms(
            holder=holder, profile=request.profile, audience=tuple(request.audience),
            grants=asked_grants(held, request.grants), lifetime=request.lifetime_seconds,
            max_hops=request.max_hops, purpose=request.purpose,
        )  # fmt: skip

    async def _sign_in_declarant(
        self, sign_in: token_service_pb2.DeclarantSignIn
    ) -> tuple[str, Grants, Party]:
        try:
            declarant = await asyncio.to_thread(
                self.declarants.sign_in, sign_in.siret, sign_in.last_name, sign_in.first_name,
                sign_in.password,
            )  # fmt: skip
        except SignInRefused as refused:
            raise Unauthenticated(refused.reason, refused.message) from None
        held = await asyncio.to_thread(declarant_rights, self.declarants.engine, declarant)
        return f"declarant:{declarant}", held, Party(self.trust.issuer.organism)

    async def _sign_in_organism(self, organism: str, context: Context) -> tuple[str, Grants, Party]:
        verifier = self.trust.verifier
        try:
            proof = verifier.check_proof(
                _proof(context), holder=Party(organism), method=_ISSUE, audience=SERVICE,
                token_hash=_EMPTY_HASH,
            )  # fmt: skip
        except TokenError as error:
            raise refusal(error) from None
        if not await self.trust.spend(verifier.single_use_keys(None, proof)):
            raise Unauthenticated("REPLAYED", "this proof was used already")
        held = await asyncio.to_thread(self.trust.directory.grants_of, organism)
        return f"organism:{organism}", held, Party(organism)

    async def DelegateToken(
        self, request: token_service_pb2.DelegateTokenRequest, context: Context
    ) -> token_service_pb2.DelegateTokenResponse:
        """Appends a hop signed by the identity provider, which must hold the chain."""
        chain = self._verified(request.token)
        with _ruled():
            check_extendable(chain.holder.organism, chain.profile, self.trust.issuer.organism)
            terms = Terms(
                holder=Party(request.holder.organism, request.holder.key_id),
                profile=request.profile, audience=tuple(request.audience),
                grants=asked_grants(chain.grants, request.grants) if request.grants else {},
                lifetime=request.lifetime_seconds,
                max_hops=request.max_hops if request.max_hops else None, purpose=request.purpose,
            )  # fmt: skip
        if self.trust.keys.organism(terms.holder.organism) is None:
            raise InvalidArgument("UNKNOWN_HOLDER", f"no organism {terms.holder.organism}")
        token = delegate(request.token, self.trust.issuer, terms)
        try:
            self.trust.verifier.verify(token)
        except TokenError as error:  # the hop asked for more than the chain allows
            raise InvalidArgument(error.reason, str(error)) from None
        return token_service_pb2.DelegateTokenResponse(token=token, expires=_expiry(token))

    def _verified(self, token: bytes, audience: str | None = None) -> VerifiedChain:
        try:
            return self.trust.verifier.verify(token, audience)
        except TokenError as error:
            raise refusal(error) from None

    async def VerifyToken(
        self, request: token_service_pb2.VerifyTokenRequest, context: Context
    ) -> token_service_pb2.VerifyTokenResponse:
        """Verifies a chain for the audience; a single-use chain is spent."""
        chain = self._verified(request.token, request.audience)
        if not await self.trust.spend(self.trust.verifier.single_use_keys(chain, None)):
            raise Unauthenticated("REPLAYED", "this single-use token was used already")
        return token_service_pb2.VerifyTokenResponse(principal=principal_message(chain))

    async def RevokeToken(
        self, request: token_service_pb2.RevokeTokenRequest, context: Context
    ) -> token_service_pb2.RevokeTokenResponse:
        """Revokes a block, on a proof of possession of the key of the block's signer."""
        chain = self._verified(request.token)
        if request.block >= len(chain.hops):
            raise InvalidArgument("NO_SUCH_BLOCK", f"the chain has {len(chain.hops)} blocks")
        hop = chain.hops[request.block]
        verifier = self.trust.verifier
        try:
            proof = verifier.check_proof(
                _proof(context), holder=Party(hop.delegator.organism), method=_REVOKE,
                audience=SERVICE, token_hash=chain.token_hash,
            )  # fmt: skip
        except TokenError as error:
            raise PermissionDenied(error.reason, "only the block's signer may revoke it") from None
        if not await self.trust.spend(verifier.single_use_keys(None, proof)):
            raise Unauthenticated("REPLAYED", "this proof was used already")
        await asyncio.to_thread(self.trust.revoke, hop.revocation_id)
        return token_service_pb2.RevokeTokenResponse(revocation_id=hop.revocation_id)

    async def GetDirectory(
        self, request: token_service_pb2.GetDirectoryRequest, context: Context
    ) -> token_service_pb2.GetDirectoryResponse:
        """The directory, signed by the root key."""
        signed = await asyncio.to_thread(self.trust.signed_directory_message)
        return token_service_pb2.GetDirectoryResponse(directory=signed)


def _expiry(token: bytes) -> int:
    return int(inspect(token)[-1].expires)
