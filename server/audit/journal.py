"""The audit journal of the node: every exchange between parties recorded, hash-chained, with
checkpoints signed by the node's root key.

A record says who (the token's subject and the walked-back chain of responsibility), what
(service, method, resource), when, the outcome, the trace id, and digests of the request and
response (never their content). Refusals are recorded like any outcome; a replayed token or
proof, and five refusals within a minute from one address, are flagged as suspicious.

Recording stays off the call path: the interceptor builds the record and queues it; a writer
task appends queued records in batches (one transaction each) and signs a checkpoint every
`checkpoint_records` records or `checkpoint_seconds`. What is queued when the process is killed
is lost (at most one batch interval); a graceful stop writes it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from registry.audit.store import AuditStore
from server.rpc.auth_interceptor import principal_or_none
from server.rpc.handler_wrapping import (
    Context,
    Handler,
    WrappingInterceptor,
    aborted_with,
    behaviour_of,
    iterate,
    rebuild,
)
from server.rpc.telemetry import current_trace_id
from token_suite.wire import service_of

log = logging.getLogger("interops.audit")

# Request fields that name what a call is about, in order of preference.
_RESOURCE_FIELDS = ("deposit_id", "id", "siret", "siren", "name")
# Response fields holding the resource a call created.
_CREATED = ("deposit", "delivery", "return", "operation")
_FAILURE_WINDOW_SECONDS = 60.0
_FAILURES_FLAGGED = 5
_details: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "interops_audit_details", default=None
)


def note(**details: str) -> None:
    """Lets a service say what its call was about (resource, siret, chain_id, subject); the
    resource also goes on the call's span (a deposit's id as interops.deposit_id)."""
    found = _details.get()
    if found is not None:
        found.update(details)
    resource = details.get("resource", "")
    if resource:
        span = trace.get_current_span()
        span.set_attribute("interops.resource", resource)
        kind, _, value = resource.partition(":")
        if kind == "deposit":
            span.set_attribute("interops.deposit_id", value)


def digest_key(data_key: bytes) -> bytes:
    """The key of the journal's message digests, derived from the node's data key."""
    return hmac.new(data_key, b"interops audit message digests", hashlib.sha256).digest()


def message_digest(key: bytes, message: Any) -> str:
    """HMAC-SHA-256 of a message's bytes under `key`: who holds the node's data key can tell
    whether a message is the one recorded, but a reader of the journal cannot try candidates
    (a NIR or an IBAN has few unknown digits; a plain SHA-256 would give it away)."""
    if isinstance(message, Message):
        return hmac.new(key, message.SerializeToString(), hashlib.sha256).hexdigest()
    return ""


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _outcome(status: status_pb2.Status | None, ended: str) -> tuple[str, str]:
    """("OK" or "CODE:REASON", reason); `ended` is ok, failed or cancelled."""
    if status is None:
        return {"ok": ("OK", ""), "cancelled": ("CANCELLED", "")}.get(
            ended, ("INTERNAL:UNEXPECTED", "UNEXPECTED")
        )
    code = _CODE_NAMES.get(status.code, str(status.code))
    reason = ""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return f"{code}:{reason}" if reason else code, reason


def _resource(request: Any, response: Any, noted: dict[str, str]) -> tuple[str, str]:
    """(resource, siret) of a call."""
    siret = noted.get("siret", "")
    if "resource" in noted:
        return noted["resource"], siret
    if isinstance(response, Message):
        for name in _CREATED:
            field = response.DESCRIPTOR.fields_by_name.get(name)
            if field is not None and response.HasField(name):
                created = getattr(response, name)
                value = getattr(created, "id", "") or getattr(created, "name", "")
                if value:
                    return f"{name}:{value}", siret
    if isinstance(request, Message):
        for name in _RESOURCE_FIELDS:
            if name in request.DESCRIPTOR.fields_by_name:
                value = getattr(request, name)
                if isinstance(value, str) and value:
                    if name == "siret" and not siret:
                        siret = value
                    return f"{name}:{value}"[:200], siret
    return "", siret


# What the database says of a record it cannot hold (as opposed to being unreachable).
_REFUSED_FOR_CONTENT = (DataError, IntegrityError)


def _stand_in(row: dict[str, object]) -> dict[str, object]:
    """A record whose free texts are replaced by their SHA-256, for one the database refused."""
    free = ("subject", "resource", "siret", "outcome", "flags", "chain_id", "organisms")
    result = dict(row)
    for name in free:
        value = str(row.get(name, ""))
        result[name] = hashlib.sha256(value.encode("utf-8", "backslashreplace")).hexdigest()[:14]
    return result


class AuditJournal:
    """Queues records and appends them from a writer task."""

    def __init__(
        self,
        store: AuditStore,
        key: Ed25519PrivateKey,
        key_id: str,
        *,
        digest_key: bytes,
        checkpoint_records: int = 1000,
        checkpoint_seconds: float = 60.0,
        batch_seconds: float = 0.05,
    ) -> None:
        self.store = store
        self.key = key
        self.key_id = key_id
        self.digest_key = digest_key
        self.checkpoint_records = checkpoint_records
        self.checkpoint_seconds = checkpoint_seconds
        self.batch_seconds = batch_seconds
        self.pending: list[dict[str, object]] = []
        self.failures: dict[str, deque[float]] = {}
        self._wake = asyncio.Event()
        self._lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_checkpoint_at = time.monotonic()

    async def start(self) -> None:
        """Reads the chain's head and starts the writer."""
        await asyncio.to_thread(self.store.load_head)
        self._task = asyncio.create_task(self._run(), name="audit-journal")

    async def stop(self, patience_seconds: float = 30.0) -> None:
        """Writes what is queued, signs a last checkpoint, stops the writer. The database away,
        it tries again for `patience_seconds`, then says how many records it could not write."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        give_up_at = time.monotonic() + patience_seconds
        while True:
            try:
                await asyncio.to_thread(self._flush, True)
                return
            except Exception as error:
                if time.monotonic() >= give_up_at:
                    log.error("the audit journal lost %d records at stop: %s",
                              len(self.pending), type(error).__name__)  # fmt: skip
                    return
                await asyncio.sleep(0.5)

    async def flush(self) -> None:
        """Writes what is queued now (tests and operators' queries use it)."""
        await asyncio.to_thread(self._flush, False)

    def record(self, row: dict[str, object]) -> None:
        """Queues a record (called on the event loop)."""
        with self._pending_lock:  # the writer thread swaps the list
            self.pending.append(row)
            first = len(self.pending) == 1
        if first:
            self._wake.set()

    def flags(self, peer: str, outcome: str, reason: str) -> str:
        """Suspicious behaviour: a replay, or repeated refusals from one address."""
        found = []
        if reason == "REPLAYED":
            found.append("replay")
        if outcome.startswith(("UNAUTHENTICATED", "PERMISSION_DENIED")):
            address = peer.rsplit(":", 1)[0]
            now = time.monotonic()
            recent = self.failures.setdefault(address, deque())
            recent.append(now)
            while recent and recent[0] < now - _FAILURE_WINDOW_SECONDS:
                recent.popleft()
            if len(recent) >= _FAILURES_FLAGGED:
                found.append("repeated-failures")
            if len(self.failures) > 10_000:  # bounded: forget the quietest addresses
                self.failures = {a: d for a, d in self.failures.items() if len(d) > 1}
        return ",".join(found)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.batch_seconds)  # let a batch gather
            self._wake.clear()
            try:
                await asyncio.to_thread(self._flush, False)
            except Exception:  # the database away: the records wait in memory for the next try
                log.exception("the audit journal could not be written; retrying")
                self._wake.set()
                await asyncio.sleep(1.0)

    def _append(self, batch: list[dict[str, object]]) -> None:
        """Appends a batch; a batch that the database refuses for what it holds (not for being
        away) is appended record by record, and a record refused alone is kept as a stand-in
        with its texts replaced by their digests: one record never stops the journal."""
        try:
            self.store.append(batch)
            return
        except DBAPIError as error:
            if error.connection_invalidated or not isinstance(error, _REFUSED_FOR_CONTENT):
                raise
        for row in batch:
            try:
                self.store.append([row])
            except _REFUSED_FOR_CONTENT:
                log.warning("an audit record was refused by the database; stored as digests")
                self.store.append([_stand_in(row)])

    def _flush(self, final: bool) -> None:
        with self._lock:  # the writer task and a query's flush may both be here
            self._flush_locked(final)

    def _flush_locked(self, final: bool) -> None:
        with self._pending_lock:
            batch, self.pending = self.pending, []
        if batch:
            try:
                self._append(batch)
            except BaseException:
                with self._pending_lock:
                    self.pending[:0] = batch
                raise
        since = self.store.head_seq - self.store.last_checkpoint
        due = time.monotonic() - self._last_checkpoint_at >= self.checkpoint_seconds
        if since and (final or since >= self.checkpoint_records or due):
            self.store.checkpoint(self.key, self.key_id, int(time.time() * 1000))
            self._last_checkpoint_at = time.monotonic()


class AuditInterceptor(WrappingInterceptor):
    """Records every call of every service but health and reflection."""

    def __init__(self, journal: AuditJournal, unaudited: Collection[str]) -> None:
        super().__init__()
        self.journal = journal
        self.unaudited = frozenset(unaudited)

    def _record(self, method: str, peer: str, request: Any, response: Any,
                ended: str) -> None:  # fmt: skip
        noted = _details.get() or {}
        status = aborted_with()
        outcome, reason = _outcome(status, ended)
        principal = principal_or_none()
        chain_id, subject, organisms = noted.get("chain_id", ""), noted.get("subject", ""), ""
        if principal is not None:
            chain_id, subject = principal.chain_id.hex(), principal.subject
            parties = [principal.hops[0].delegator.organism] + [
                hop.holder.organism for hop in principal.hops
            ]
            organisms = "|" + "|".join(parties) + "|"
        resource, siret = _resource(request, response, noted)
        self.journal.record({
            "at": int(time.time() * 1000), "trace_id": current_trace_id(), "chain_id": chain_id,
            "subject": subject[:128], "organisms": organisms, "service": service_of(method),
            "method": method.rsplit("/", 1)[-1], "resource": resource, "siret": siret[:14],
            "outcome": outcome[:100],
            "request_digest": message_digest(self.journal.digest_key, request),
            "response_digest": message_digest(self.journal.digest_key, response),
            "flags": self.journal.flags(peer, outcome, reason),
        })  # fmt: skip

    def wrap(self, handler: Handler, method: str) -> Handler:
        if service_of(method) in self.unaudited:
            return handler
        behaviour: Callable[..., Any] = behaviour_of(handler)
        record = self._record
        if handler.response_streaming:

            async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
                _details.set({})
                # Read now: once the caller has hung up, the call is gone and asking it for its
                # peer crashes the process (grpc.aio, a followed stream cancelled).
                peer = context.peer() or ""
                ended = "failed"
                try:
                    async for response in iterate(behaviour, request, context):
                        yield response
                    ended = "ok"
                except (asyncio.CancelledError, GeneratorExit):
                    ended = "cancelled"  # the caller hung up (a followed stream ends so)
                    raise
                finally:
                    record(method, peer, request, None, ended)

            return rebuild(handler, streaming)

        async def unary(request: Any, context: Context) -> Any:
            _details.set({})
            peer = context.peer() or ""
            try:
                response = await behaviour(request, context)
            except (asyncio.CancelledError, GeneratorExit):
                record(method, peer, request, None, "cancelled")
                raise
            except BaseException:
                record(method, peer, request, None, "failed")
                raise
            record(method, peer, request, response, "ok")
            return response

        return rebuild(handler, unary)
