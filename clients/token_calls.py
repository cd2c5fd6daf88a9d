"""The calls of the token service, written once for both clients (clients/calls.py): sign-ins
for declarants and organisms (with a proof of possession of the organism's key), delegation,
verification, revocation and the trust directory."""

from __future__ import annotations

from typing import Any

from interops.token.v1 import token_pb2, token_service_pb2

from clients.calls import Steps, Unary, rpc_of
from clients.token_credentials import ISSUE_METHOD, proof_metadata
from token_suite.chain import Signer


def sign_in(
    siret: str, last_name: str, first_name: str, password: str, **terms: Any
) -> Steps[token_service_pb2.IssueTokenResponse]:
    """A root chain for a declarant; `terms` are IssueTokenRequest fields (profile,
    audience, grants, holder, lifetime_seconds, max_hops, purpose)."""
    terms.setdefault("profile", token_pb2.PROFILE_PORTAL)
    declarant = token_service_pb2.DeclarantSignIn(
        siret=siret, last_name=last_name, first_name=first_name, password=password
    )
    answer: token_service_pb2.IssueTokenResponse = yield Unary(
        token_service_pb2.IssueTokenRequest(declarant=declarant, **terms)
    )
    return answer


def issue_organism_token(
    signer: Signer, **terms: Any
) -> Steps[token_service_pb2.IssueTokenResponse]:
    """An APPLICATION root chain for the signer's organism, proving possession of its key."""
    terms.setdefault("profile", token_pb2.PROFILE_APPLICATION)
    request = token_service_pb2.IssueTokenRequest(
        organism=token_service_pb2.OrganismSignIn(organism=signer.organism), **terms
    )
    proof = proof_metadata(signer, ISSUE_METHOD, b"")
    answer: token_service_pb2.IssueTokenResponse = yield Unary(request, [proof])
    return answer


def delegate_token(token: bytes, **terms: Any) -> Steps[token_service_pb2.DelegateTokenResponse]:
    """A hop appended by the backbone to a portal chain it holds (DelegateTokenRequest
    fields: holder, profile, audience, grants, lifetime_seconds, max_hops, purpose)."""
    answer: token_service_pb2.DelegateTokenResponse = yield Unary(
        token_service_pb2.DelegateTokenRequest(token=token, **terms)
    )
    return answer


def verify_token(token: bytes, audience: str) -> Steps[token_service_pb2.Principal]:
    """The verified principal and its chain of responsibility."""
    answer: token_service_pb2.VerifyTokenResponse = yield Unary(
        token_service_pb2.VerifyTokenRequest(token=token, audience=audience)
    )
    return answer.principal


def revoke_token(token: bytes, block: int, signer: Signer) -> Steps[bytes]:
    """Revokes a block the signer signed; returns its revocation id."""
    request = token_service_pb2.RevokeTokenRequest(token=token, block=block)
    proof = proof_metadata(signer, rpc_of(request).path, token)
    answer: token_service_pb2.RevokeTokenResponse = yield Unary(request, [proof])
    return answer.revocation_id


def get_directory() -> Steps[token_pb2.SignedDirectory]:
    """The trust directory signed by the backbone's root key."""
    answer: token_service_pb2.GetDirectoryResponse = yield Unary(
        token_service_pb2.GetDirectoryRequest()
    )
    return answer.directory
