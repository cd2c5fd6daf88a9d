"""Credentials that fill the client's slot with token chains (clients.credentials).

`ChainCredentials` attaches a chain you hold, with a proof of possession by the key its last
block names (without that key, every protected call is refused: PROOF_REQUIRED).
`OrganismCredentials` is what an organism's system uses: it issues itself an APPLICATION chain
with its own key, which the chain then names as its holder, renews it before it expires, and
proves possession with that key on every call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import grpc
from interops.token.v1 import token_pb2, token_service_pb2, token_service_pb2_grpc

from clients.address import open_channel
from clients.credentials import Metadata
from clients.errors import from_rpc_error
from token_suite.chain import Signer, sign_proof
from token_suite.wire import PROOF_METADATA, TOKEN_METADATA, service_of

ISSUING_SERVICE = "interops.token.v1.TokenService"
ISSUE_METHOD = f"/{ISSUING_SERVICE}/IssueToken"


def proof_metadata(signer: Signer, method: str, token: bytes) -> tuple[str, bytes]:
    """The metadata entry proving possession of the signer's key for one call."""
    return PROOF_METADATA, sign_proof(signer, method, service_of(method), token)


class ChainCredentials:
    """A chain for every call; with the holder's key, a proof of possession too."""

    def __init__(self, token: bytes, holder: Signer | None = None) -> None:
        self.token = token
        self.holder = holder

    def metadata(self, method: str) -> Metadata:
        """The chain, and a fresh proof when the holder's key is known."""
        entries: list[tuple[str, str | bytes]] = [(TOKEN_METADATA, self.token)]
        if self.holder is not None:
            entries.append(proof_metadata(self.holder, method, self.token))
        return entries


class OrganismCredentials:
    """An organism's own APPLICATION chains, issued by the node and renewed before expiry.

    A renewal is one blocking call to the node from the thread that makes the call (every few
    minutes; also on an asyncio channel).
    """

    def __init__(
        self,
        address: str,
        signer: Signer,
        audience: Sequence[str],
        *,
        grants: Sequence[token_pb2.Grant] = (),
        lifetime: int = 300,
        renew_before: float = 60.0,
        tls: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.address = address.removeprefix("grpc://")
        self.tls = tls
        self.signer = signer
        self.audience = tuple(audience)
        self.grants = tuple(grants)
        self.lifetime = lifetime
        self.renew_before = renew_before
        self._token = b""
        self._expires = 0.0
        self._lock = threading.Lock()

    def _issue(self) -> token_service_pb2.IssueTokenResponse:
        request = token_service_pb2.IssueTokenRequest(
            organism=token_service_pb2.OrganismSignIn(organism=self.signer.organism),
            profile=token_pb2.PROFILE_APPLICATION,
            audience=self.audience,
            grants=self.grants,
            lifetime_seconds=self.lifetime,
        )
        with open_channel(self.address, self.tls) as channel:
            stub = token_service_pb2_grpc.TokenServiceStub(channel)
            try:
                response: token_service_pb2.IssueTokenResponse = stub.IssueToken(
                    request, metadata=(proof_metadata(self.signer, ISSUE_METHOD, b""),), timeout=30
                )
            except grpc.RpcError as error:
                raise from_rpc_error(error) from None
        return response

    def token(self) -> bytes:
        """A chain with time left, issued anew when needed."""
        with self._lock:
            if self._expires - time.time() < self.renew_before:
                response = self._issue()
                self._token, self._expires = response.token, float(response.expires)
            return self._token

    def metadata(self, method: str) -> Metadata:
        """The organism's chain and a proof for this call."""
        token = self.token()
        return [(TOKEN_METADATA, token), proof_metadata(self.signer, method, token)]
