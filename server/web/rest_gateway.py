"""The REST declination of the public RPCs: POST /v1/<service>/<method>, forwarded to the node
as the gRPC call it stands for, with the caller's chain from the Authorization header and its
proof of possession from the interops-proof header (a CallProof, base64url, signed by the key the
chain's last block names, over the gRPC path /<service>/<method>); a chain without a proof is
refused here (PROOF_REQUIRED): no chain is a bearer token. GET /v1/openapi.json describes every
operation.

- A unary RPC takes its request as JSON and answers with its response as JSON.
- An upload (a client stream of a header, then chunks: SubmitDeposit, ImportStock) takes the
  header's fields as query parameters and the file as the raw body, streamed to the node.
- A server stream answers with NDJSON: one response message a line (a failure after the first
  message is a last line {"error": <google.rpc.Status>}).
- A failure is its google.rpc.Status as JSON with the HTTP status of its code; one that says
  how long to wait (TOO_MANY_ATTEMPTS) gives it in Retry-After too. So is every refusal of the
  gateway itself, under /v1/ (never a page): a body that is not a JSON object of the request
  message (BAD_JSON, 400), not sent as application/json (BAD_JSON, 415), longer than MAX_BODY
  (BODY_TOO_LARGE, 413, read no further), a path no method has (NO_SUCH_METHOD, 404), an HTTP
  method other than POST (METHOD_NOT_ALLOWED, 405), a failure of the adapter (INTERNAL, 500).

Every call carries the HTTP client's address to the node, under the node's door secret, so that
the node's sign-in limits count that client (server/rpc/client_address.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from interops.audit.v1 import audit_pb2
from interops.dsn.v1 import dsn_pb2
from interops.habilitation.v1 import account_pb2, habilitation_pb2
from interops.mandate.v1 import mandate_pb2
from interops.nomenclature.v1 import nomenclature_pb2
from interops.notify.v1 import notify_pb2
from interops.operation.v1 import operation_pb2
from interops.registry.v1 import registry_pb2
from interops.relations.v1 import relations_pb2
from interops.token.v1 import token_service_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from server.rpc.errors import build_status, http_status_of
from server.web import openapi
from server.web.node_calls import NodeCalls, client_of
from token_suite.errors import Reason, TokenError
from token_suite.wire import from_text

PROOF_HEADER = "interops-proof"
MAX_BODY = 8 * 1024 * 1024
_FILES = (registry_pb2, operation_pb2, token_service_pb2, dsn_pb2, audit_pb2, notify_pb2,
          nomenclature_pb2, relations_pb2, habilitation_pb2, account_pb2, mandate_pb2)  # fmt: skip


UNARY, UPLOAD, STREAM = "unary", "upload", "stream"
UPLOAD_CHUNK = 1024 * 1024


def _is_upload(method: MethodDescriptor) -> bool:
    fields = method.input_type.fields_by_name
    return (method.client_streaming and not method.server_streaming
            and "header" in fields and "chunk" in fields)  # fmt: skip


def rest_methods() -> dict[str, tuple[MethodDescriptor, str]]:
    """Every RPC the REST declination offers, by its path, with how it is offered."""
    found = {}
    for module in _FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                path = f"/v1/{service.full_name}/{method.name}"
                if not (method.client_streaming or method.server_streaming):
                    found[path] = (method, UNARY)
                elif _is_upload(method):
                    found[path] = (method, UPLOAD)
                elif method.server_streaming and not method.client_streaming:
                    found[path] = (method, STREAM)
    return found


def unary_methods() -> dict[str, MethodDescriptor]:
    """Every unary RPC of the contracts, by its REST path."""
    return {path: m for path, (m, kind) in rest_methods().items() if kind == UNARY}


def _status_response(status: status_pb2.Status, code: grpc.StatusCode) -> JSONResponse:
    response = JSONResponse(json_format.MessageToDict(status), status_code=http_status_of(code))
    wait = _retry_after(status)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and wait:
        response.headers["Retry-After"] = wait
    return response


def _retry_after(status: status_pb2.Status) -> str:
    """The whole seconds a refusal says to wait (ErrorInfo's "retry_after_seconds"), or ""."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            told = info.metadata.get("retry_after_seconds", "")
            return told if told.isdigit() else ""
    return ""


def _refused(
    code: grpc.StatusCode, reason: str, message: str, http_status: int | None = None
) -> JSONResponse:
    """A refusal of the gateway, with the HTTP status of its code unless one is given."""
    response = _status_response(build_status(code, message, reason), code)
    if http_status is not None:
        response.status_code = http_status
    return response


def http_refusal(
    request: Request, status: int, detail: str = "", allow: str = "POST"
) -> JSONResponse:
    """The REST declination's answer to a request no route takes (a GET on a POST method, an
    unknown path), that the HTTP layer refused, or on which the adapter failed (500: the
    status tells nothing of the failure, which is logged): JSON like every other REST error,
    with the HTTP status given; a 405 lists the methods the path takes (`allow`)."""
    path = request.url.path
    if status == 500:
        code, reason, message = grpc.StatusCode.INTERNAL, "INTERNAL", "the web adapter failed"
    elif status == 405:
        code, reason = grpc.StatusCode.UNIMPLEMENTED, "METHOD_NOT_ALLOWED"
        message = f"{path} takes {allow}, not {request.method}"
    elif status == 404:
        code, reason, message = grpc.StatusCode.NOT_FOUND, "NO_SUCH_METHOD", f"no method at {path}"
    else:
        code, reason = grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"
        message = detail or "the request is not one the REST declination takes"
    body = json_format.MessageToDict(build_status(code, message, reason))
    headers = {"Allow": allow} if status == 405 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _is_json(request: Request) -> bool:
    """Whether the body is declared as JSON, or not declared at all."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


async def _body(request: Request) -> bytes | None:
    """The request's body, or None when it is longer than MAX_BODY: read no further then."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


# What the node says of a missing chain names its gRPC metadata; over REST, say the header.
_TOKEN_MISSING_OVER_REST = (
    "a token chain is required: send it as Authorization: Bearer <token chain, base64url>, with "
    f"its proof of possession in the {PROOF_HEADER} header (interops token proof prints one)"
)


def _over_rest(status: status_pb2.Status) -> status_pb2.Status:
    """The node's status, its message told in HTTP terms where it names gRPC metadata."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.reason == "TOKEN_MISSING":
            status.message = _TOKEN_MISSING_OVER_REST
    return status


async def _hang_up(request: Request) -> None:
    """Returns when the HTTP client of a request whose body was read hangs up."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _cancel(call: object) -> None:
    cancel = getattr(call, "cancel", None)
    if cancel is not None:
        cancel()


class FollowedStream(StreamingResponse):
    """A streamed response that ends as soon as its HTTP client hangs up.

    Starlette only notices a hang-up when it next sends (ASGI 2.4); a followed stream with
    nothing new to send would hold its gRPC stream, and the node's polling of it, forever."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                with contextlib.suppress(OSError):  # the client gone while we wrote
                    await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()


class RestGateway:
    """Turns HTTP requests into the node's gRPC calls and their answers back into JSON."""

    def __init__(self, node: NodeCalls, method_rights: Mapping[str, str | None]) -> None:
        self.node = node
        self.methods = rest_methods()
        # The right each RPC needs by its gRPC path, None when public: for the OpenAPI document
        # (the node decides, whatever the document says).
        self.method_rights = method_rights
        self._document: dict[str, Any] | None = None

    def routes(self) -> list[Route]:
        """The gateway's routes."""
        return [
            Route("/v1/openapi.json", self.openapi, methods=["GET"]),
            Route("/v1/{service}/{method}", self.call, methods=["POST"]),
        ]

    def _right(self, method: MethodDescriptor) -> str | None:
        return self.method_rights[f"/{method.containing_service.full_name}/{method.name}"]

    async def openapi(self, request: Request) -> JSONResponse:
        """The OpenAPI document."""
        if self._document is None:
            self._document = openapi.document(
                ((path, m, kind, self._right(m))
                 for path, (m, kind) in sorted(self.methods.items())),
                "InterOPS backbone REST",
            )  # fmt: skip
        return JSONResponse(self._document)

    async def call(self, request: Request) -> Response:
        """One RPC over HTTP."""
        found = self.methods.get(request.url.path)
        if found is None:
            return _refused(grpc.StatusCode.NOT_FOUND, "NO_SUCH_METHOD",
                            f"no method at {request.url.path}")  # fmt: skip
        method, kind = found
        try:
            token, proof = self._credentials(request)
        except ValueError as error:
            return _refused(grpc.StatusCode.UNAUTHENTICATED, "BAD_AUTHORIZATION", str(error))
        # The node refuses it too on a protected method; here also on a public one, and with the
        # HTTP header's name, which the node does not know: a chain never travels bare.
        if token is not None and proof is None:
            return _refused(grpc.StatusCode.UNAUTHENTICATED, Reason.PROOF_REQUIRED,
                            f"a chain needs its proof of possession in the {PROOF_HEADER} "
                            "header (interops token proof prints one)")  # fmt: skip
        path = f"/{method.containing_service.full_name}/{method.name}"
        if kind == UPLOAD:
            return await self._upload(request, method, path, token, proof)
        if not _is_json(request):
            return _refused(grpc.StatusCode.INVALID_ARGUMENT, "BAD_JSON",
                            "the body is the request message as JSON: send it as "
                            "Content-Type: application/json", http_status=415)  # fmt: skip
        body = await _body(request)
        if body is None:
            return _refused(grpc.StatusCode.RESOURCE_EXHAUSTED, "BODY_TOO_LARGE",
                            f"a request body has at most {MAX_BODY} bytes",
                            http_status=413)  # fmt: skip
        message = message_factory.GetMessageClass(method.input_type)()
        # An empty body is the empty message; anything else is a JSON object (json_format
        # would take a bare list as the empty message too).
        body = body.strip() or b"{}"
        try:
            if not body.startswith(b"{"):
                raise json_format.ParseError("the body must be a JSON object: the request message")
            json_format.Parse(body, message)
        except (json_format.ParseError, UnicodeDecodeError) as error:
            return _refused(grpc.StatusCode.INVALID_ARGUMENT, "BAD_JSON", str(error)[:500])
        if kind == STREAM:
            return await self._stream(
                request, method, path, message.SerializeToString(), token=token, proof=proof
            )
        # With the client's address: the node's sign-in limits count it, not the adapter.
        answer, failure = await self.node.raw_unary(path, message.SerializeToString(), token,
                                                    proof, client_of(request))  # fmt: skip
        return _answer(method, answer, failure)

    async def _upload(
        self, request: Request, method: MethodDescriptor, path: str, token: bytes | None,
        proof: bytes | None,
    ) -> Response:  # fmt: skip
        """The header from the query, the body streamed as chunks."""
        # Built by field name: the message class is only known from the descriptor.
        message_class: Callable[..., Message] = message_factory.GetMessageClass(method.input_type)
        header = message_class()
        try:
            part = getattr(header, "header")  # noqa: B009 -- the field's name is data here
            json_format.ParseDict(dict(request.query_params), part)
            part.SetInParent()
        except json_format.ParseError as error:
            return _refused(grpc.StatusCode.INVALID_ARGUMENT, "BAD_QUERY", str(error)[:500])

        async def parts() -> AsyncIterator[bytes]:
            yield header.SerializeToString()
            pending = b""
            async for received in request.stream():
                pending += received
                while len(pending) >= UPLOAD_CHUNK:
                    chunk, pending = pending[:UPLOAD_CHUNK], pending[UPLOAD_CHUNK:]
                    yield message_class(chunk=chunk).SerializeToString()
            if pending:
                yield message_class(chunk=pending).SerializeToString()

        answer, failure = await self.node.raw_client_stream(path, parts(), token, proof,
                                                            client=client_of(request))  # fmt: skip
        return _answer(method, answer, failure)

    async def _stream(
        self, http: Request, method: MethodDescriptor, path: str, request: bytes, *,
        token: bytes | None, proof: bytes | None,
    ) -> Response:  # fmt: skip
        """NDJSON, one response a line; the first message (or the failure) comes before the
        response starts, so that a refused call gets its HTTP status. A client that hangs up,
        before the first message or after, ends the gRPC stream."""
        response_class = message_factory.GetMessageClass(method.output_type)
        call = self.node.raw_server_stream(path, request, token, proof, client_of(http))
        answers = aiter(call)
        waiting = asyncio.ensure_future(anext(answers, None))
        hung_up = asyncio.ensure_future(_hang_up(http))
        await asyncio.wait((waiting, hung_up), return_when=asyncio.FIRST_COMPLETED)
        hung_up.cancel()
        if not waiting.done():
            waiting.cancel()
            _cancel(call)
            return Response(status_code=499)  # nobody is there to read it
        try:
            first = waiting.result()
        except grpc.aio.AioRpcError as failure:
            return _status_response(_rich_status(failure), failure.code())

        def line(raw: bytes) -> bytes:
            message = json_format.MessageToDict(response_class.FromString(raw))
            return json.dumps(message, separators=(",", ":")).encode() + b"\n"

        async def lines() -> AsyncIterator[bytes]:
            if first is None:
                return
            yield line(first)
            try:
                async for raw in answers:
                    yield line(raw)
            except grpc.aio.AioRpcError as failure:
                status = json_format.MessageToDict(_rich_status(failure))
                yield json.dumps({"error": status}).encode() + b"\n"
            finally:  # the HTTP client went away: end the gRPC stream too
                _cancel(call)

        return FollowedStream(lines(), media_type="application/x-ndjson")

    @staticmethod
    def _credentials(request: Request) -> tuple[bytes | None, bytes | None]:
        authorization = request.headers.get("authorization", "")
        token = proof = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise ValueError("Authorization must be: Bearer <token chain, base64url>")
            try:
                token = from_text(value)
                if PROOF_HEADER in request.headers:
                    proof = from_text(request.headers[PROOF_HEADER])
            except TokenError:
                raise ValueError("the token chain or proof is not base64url") from None
        return token, proof


def _answer(
    method: MethodDescriptor, answer: bytes | None, failure: grpc.aio.AioRpcError | None
) -> Response:
    """The JSON of a call's response, or its rich status."""
    if failure is not None:
        return _status_response(_over_rest(_rich_status(failure)), failure.code())
    response = message_factory.GetMessageClass(method.output_type)()
    try:
        response.ParseFromString(answer or b"")
    except DecodeError:
        return _refused(grpc.StatusCode.INTERNAL, "INTERNAL", "the node's answer is unreadable")
    return JSONResponse(json_format.MessageToDict(response))


def _rich_status(failure: grpc.aio.AioRpcError) -> status_pb2.Status:
    try:
        status = rpc_status.from_call(failure)  # type: ignore[arg-type]
    except ValueError:
        status = None
    if status is None:
        status = status_pb2.Status(code=failure.code().value[0], message=failure.details() or "")
    return status
