"""The calls of the token service, written once for both clients (clients/calls.py): sign-ins
for declarants (naming the holder's own key) and organisms (with a proof of possession of the
organism's key), delegation and verification (with a proof by the chain's last holder),
revocation, the trust directory and the signed revocation list."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
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


def _proven(request: Message, token: bytes, prover: Signer | None) -> list[tuple[str, bytes]]:
    """The proof by the chain's last holder for a call of the token service about `token`
    (none without a prover: the node then refuses with PROOF_REQUIRED)."""
    return [proof_metadata(prover, rpc_of(request).path, token)] if prover else []


def delegate_token(
    token: bytes, prover: Signer | None = None, **terms: Any
) -> Steps[token_service_pb2.DelegateTokenResponse]:
    """A hop appended by the backbone to a portal chain whose last holder is a session key of
    its identity provider, proven by `prover` (that session key); `terms` are
    DelegateTokenRequest fields (holder: the next holder, naming its key; profile, audience,
    grants, lifetime_seconds, max_hops, purpose)."""
    request = token_service_pb2.DelegateTokenRequest(token=token, **terms)
    answer: token_service_pb2.DelegateTokenResponse = yield Unary(
        request, _proven(request, token, prover)
    )
    return answer


def verify_token(
    token: bytes, audience: str, prover: Signer | None = None
) -> Steps[token_service_pb2.Principal]:
    """The verified principal and its chain of responsibility, proven by `prover` (the key
    the chain's last block names)."""
    request = token_service_pb2.VerifyTokenRequest(token=token, audience=audience)
    answer: token_service_pb2.VerifyTokenResponse = yield Unary(
        request, _proven(request, token, prover)
    )
    return answer.principal


def revoke_token(token: bytes, block: int, signer: Signer) -> Steps[bytes]:
    """Revokes a block the signer signed, or that names the signer's key as its holder;
    returns its revocation id."""
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


def get_revocations() -> Steps[token_pb2.SignedRevocations]:
    """The revoked blocks and subject cutoffs, signed by the backbone's root key (for
    token_suite.revocations.open_revocations or a RevocationCache)."""
    answer: token_service_pb2.GetRevocationsResponse = yield Unary(
        token_service_pb2.GetRevocationsRequest()
    )
    return answer.revocations


def current_key(directory: token_pb2.Directory, organism: str, now: float) -> str:
    """The id of the organism's key in use at `now` in a directory (the latest to start), or ""
    when it has none: the key a hop to that organism names as its holder."""
    usable = [k for k in directory.keys if k.organism == organism and k.valid_from <= now
              and (k.valid_until == 0 or k.valid_until > now)]  # fmt: skip
    return max(usable, key=lambda k: k.valid_from).key_id if usable else ""
