"""Requires a verified token chain on every call of a protected service.

The chain (metadata "interops-token-bin") must be meant for the called service, carry a proof
of possession ("interops-proof-bin") by the key its last block names as holder (whatever its
profile: a prefix of someone else's chain is of no use), not be revoked nor spent, and grant the
right the method needs, as its contract declares it (the `interops.auth.v1.access` method
option, read from the descriptors once, when the node starts). The verified principal is then
available to the service through `current_principal()`. Anything short ends the call with
UNAUTHENTICATED (who are you?) or PERMISSION_DENIED (not this), with the precise reason in
ErrorInfo.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, NoReturn

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from interops.auth.v1 import auth_pb2
from opentelemetry import trace

from registry.kernel.rights import right_name
from registry.trust.tls_pins import pin_of_certificate
from server.rpc.error_interceptor import fail, passes_through
from server.rpc.errors import PermissionDenied, ServiceError, Unauthenticated, build_status
from server.rpc.handler_wrapping import (
    Context,
    Handler,
    WrappingInterceptor,
    abort,
    behaviour_of,
    iterate,
    rebuild,
)
from server.token.trust import NodeTrust
from token_suite.errors import TokenError
from token_suite.verify import VerifiedChain
from token_suite.wire import PROOF_METADATA, TOKEN_METADATA, service_of

# Reasons that mean "a valid chain, but not for this"; all others mean "not authenticated".
_DENIALS = frozenset({"WRONG_AUDIENCE", "WRONG_HOLDER"})
# grpc's own services are not our contracts and declare no access: anyone may ask whether the
# node serves (health) and what it serves (reflection), as load balancers and gRPC tools do.
GRPC_PUBLIC_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)


class UndeclaredAccess(LookupError):
    """A method whose contract declares no access: the node refuses to start (fail closed)."""


def declared_access(method: MethodDescriptor) -> str | None:
    """The right a method needs, from its `interops.auth.v1.access` option; None when the
    contract declares it public. Raises UndeclaredAccess when it declares neither."""
    access = method.GetOptions().Extensions[auth_pb2.access]
    kind = access.WhichOneof("access")
    if kind == "public" and access.public:
        return None
    if kind == "right" and access.right != auth_pb2.RIGHT_UNSPECIFIED:
        return right_name(access.right)
    raise UndeclaredAccess(f"/{method.containing_service.full_name}/{method.name} declares no "
                           "access (option (interops.auth.v1.access) in its contract)")  # fmt: skip


def method_rights(services: Iterable[str]) -> dict[str, str | None]:
    """The right each method of the named services (of our contracts) needs, by its path
    "/<service>/<method>"; None for a public method. Raises UndeclaredAccess for a method
    that declares no access."""
    pool = descriptor_pool.Default()
    return {
        f"/{service.full_name}/{method.name}": declared_access(method)
        for service in map(pool.FindServiceByName, services)
        for method in service.methods
    }


def refusal(error: TokenError) -> ServiceError:
    """The error a refused chain or proof gives its caller: PERMISSION_DENIED for a valid chain
    meant for something else, UNAUTHENTICATED otherwise; the block at fault in the metadata."""
    metadata = {"block": str(error.block)} if error.block is not None else None
    kind = PermissionDenied if error.reason in _DENIALS else Unauthenticated
    return kind(error.reason, str(error), metadata=metadata)


_principal: contextvars.ContextVar[VerifiedChain | None] = contextvars.ContextVar(
    "interops_principal", default=None
)


def principal_or_none() -> VerifiedChain | None:
    """The verified chain of the call being served, or None (public service, or refused)."""
    return _principal.get()


def current_principal() -> VerifiedChain:
    """The verified chain of the call being served; raises if the call was not authenticated."""
    principal = _principal.get()
    if principal is None:
        raise LookupError("this call carries no verified principal")
    return principal


def token_and_proof(context: Context) -> tuple[bytes | None, bytes | None]:
    """The call's token chain and proof of possession, from its metadata (None if absent)."""
    token = proof = None
    for key, value in context.invocation_metadata() or ():
        if key == TOKEN_METADATA:
            token = value if isinstance(value, bytes) else None
        elif key == PROOF_METADATA:
            proof = value if isinstance(value, bytes) else None
    return token, proof


class AuthInterceptor(WrappingInterceptor):
    """Authenticates every call of a method that is not public.

    `rights` gives the right each method (by path) or service (by full name) needs, None for a
    public one; grpc's health and reflection services are public; anything else is refused."""

    def __init__(self, trust: NodeTrust, rights: Mapping[str, str | None]) -> None:
        super().__init__()
        self.trust = trust
        self.rights = {name: right for name, right in rights.items() if right is not None}
        public = (name for name, right in rights.items() if right is None)
        self.public = frozenset((*public, *GRPC_PUBLIC_SERVICES))

    def _right(self, method: str) -> str | None:
        return self.rights.get(method) or self.rights.get(service_of(method))

    async def authenticate(self, method: str, context: Context) -> VerifiedChain:
        """The call's verified chain; ends the call with the reason otherwise (and with
        INTERNAL if the check itself fails: this interceptor runs outside the error mapping)."""
        try:
            return await self._authenticate(method, context)
        except Exception as error:
            if passes_through(error):
                raise
            await fail(error, method, context)
            raise AssertionError("unreachable: fail aborts") from error

    async def _authenticate(self, method: str, context: Context) -> VerifiedChain:
        if self.trust.settings.grpc_tls_cert:
            await self._check_tls_version(context)
        token, proof = token_and_proof(context)
        if token is None:
            await _refuse(context, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING",
                          f"a token chain is required in {TOKEN_METADATA}")  # fmt: skip
        service = service_of(method)
        try:
            chain, spent = self.trust.verifier.check_call(
                token,
                proof,
                method=method,
                audience=service,
            )
        except TokenError as error:
            await abort(context, refusal(error).to_status())
        if not await self.trust.spend(spent):
            await _refuse(context, grpc.StatusCode.UNAUTHENTICATED, "REPLAYED",
                          "this token or proof was used already")  # fmt: skip
        _describe_span(chain)
        holder = chain.holder
        if self.trust.settings.grpc_tls_client_ca and holder.key_id and not holder.public_key:
            # held by an organism's directory key (a session's or a person's own key is not)
            await self._check_client_certificate(holder.organism, context)
        right = self._right(method)
        if right is None or not chain.allows(right):
            await _refuse(context, grpc.StatusCode.PERMISSION_DENIED, "MISSING_GRANT",
                          f"{method} needs the {right or 'unknown'} right")  # fmt: skip
        return chain

    async def _check_client_certificate(self, organism: str, context: Context) -> None:
        """Mutual TLS: an organism's chain is used over TLS with a client certificate whose key
        the organism published in the directory (kind TLS); the node's own plaintext loopback
        door (its web adapter's) takes no organism's chain."""
        presented = list(context.auth_context().get("x509_pem_cert", ()))
        if not presented or pin_of(presented[0]) not in self.trust.tls_pins.get(organism, ()):
            await _refuse(context, grpc.StatusCode.UNAUTHENTICATED, "CLIENT_CERTIFICATE",
                          f"{organism}'s chain is used with a TLS client certificate whose key "
                          f"{organism} published in the trust directory (kind TLS)")  # fmt: skip

    async def _check_tls_version(self, context: Context) -> None:
        """Over TLS, TLS 1.3 only (grpcio cannot refuse 1.2 at the handshake yet: the call is)."""
        version = list(context.auth_context().get("ssl_tls_version", ()))
        if version and version[0] != b"TLSv1.3":
            await _refuse(context, grpc.StatusCode.UNAUTHENTICATED, "TLS_VERSION",
                          "this node takes TLS 1.3 only")  # fmt: skip

    def wrap(self, handler: Handler, method: str) -> Handler:
        if service_of(method) in self.public or method in self.public:
            if self.trust.settings.grpc_tls_cert:
                return _first(self._check_tls_version, handler)
            return handler
        authenticate = self.authenticate

        async def authenticated(context: Context) -> None:
            _principal.set(await authenticate(method, context))

        return _first(authenticated, handler)


def _first(step: Callable[[Context], Awaitable[None]], handler: Handler) -> Handler:
    """The handler with `step` awaited before its behaviour (in the call's own context: what
    it sets in a context variable, the behaviour sees); unary or streaming alike."""
    behaviour: Callable[..., Any] = behaviour_of(handler)
    if handler.response_streaming:

        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            await step(context)
            async for response in iterate(behaviour, request, context):
                yield response

        return rebuild(handler, streaming)

    async def unary(request: Any, context: Context) -> Any:
        await step(context)
        return await behaviour(request, context)

    return rebuild(handler, unary)


def _describe_span(chain: VerifiedChain) -> None:
    """The call's span names the chain, its hops and organisms; never a person."""
    span = trace.get_current_span()
    if span.is_recording():
        parties = [chain.hops[0].delegator.organism, *(hop.holder.organism for hop in chain.hops)]
        span.set_attributes({
            "interops.chain_id": chain.chain_id.hex(), "interops.hops": len(chain.hops),
            "interops.organisms": ">".join(parties),
            "interops.subject_kind": chain.subject.split(":")[0],
        })  # fmt: skip


async def _refuse(context: Context, code: grpc.StatusCode, reason: str, message: str) -> NoReturn:
    await abort(context, build_status(code, message, reason))


@functools.lru_cache(maxsize=1024)
def pin_of(certificate_pem: bytes) -> bytes:
    """The TLS key pin of a presented certificate (parsed once per certificate)."""
    return pin_of_certificate(certificate_pem)
