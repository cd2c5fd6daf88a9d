"""Fuzzing every method of every service the node lists through server reflection (no
hand-written list, no generated stub): known bad requests, then hypothesis requests drawn from
each request's descriptor, as an organism holding every right, as a company's administrator and
anonymously, on each backend. Bad input is never INTERNAL nor UNKNOWN, and the node stays alive
and healthy.

A failure prints, per method, each distinct cause (the exception and where it was raised, from
the `interops.errors` log line with the same trace id), the callers and the smallest input that
triggered it, minimized (against the node as the run left it: a failure that needs an earlier
call, a reused request id say, keeps what it needs). INTEROPS_FUZZ_EXAMPLES scales the number
of hypothesis examples per method (10 finds more, in ten times the time), INTEROPS_FUZZ_SEED
draws other ones."""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from hypothesis import HealthCheck, Phase, given, seed, settings

from clients.credentials import Metadata
from clients.token_credentials import ChainCredentials
from registry.habilitation.store import HabilitationStore
from registry.rcd.sirene_synth import siren_at, siret_of
from tests.node.fuzz_messages import Strategies, bad_requests, message_class, show
from tests.registry_rows import in_registry
from tests.running_node import RunningNode

ROOT = str(Path(__file__).resolve().parents[2])
# A server-streaming call follows until its deadline; a unary call has no reason to be slow.
STREAM_SECONDS = 0.2
UNARY_SECONDS = 30.0
SCALE = float(os.environ.get("INTEROPS_FUZZ_EXAMPLES", "1"))
# Another seed draws other requests (the default, derandomized, draws the same on every run).
SEED = os.environ.get("INTEROPS_FUZZ_SEED", "")
# Bodies sent as they are: what no protobuf encoder makes.
RAW_CASES = (
    ("undecodable body", b"\xff\xff\xff"),
    ("empty message", b""),
    ("unknown field 999", b"\xba\x3e\x03abc"),
    ("field 1 with the wrong wire type", b"\x0d\x00\x00\x00\x00"),
    ("truncated field 1", b"\x0a\x05ab"),
)
FAILING = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
COMPANY = siren_at(990)
ADMIN_SIRET = siret_of(COMPANY, 1)
TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")
ERRORS_LOG = "interops.errors"

# The node, in this process, draws its trace ids from `random` while hypothesis draws requests.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")


@dataclass(frozen=True)
class Target:
    """A method found through reflection."""

    path: str
    input: Descriptor
    output: Descriptor
    client_streaming: bool
    server_streaming: bool


@dataclass(frozen=True)
class Caller:
    """Who calls: the metadata of each call."""

    name: str
    metadata: Callable[[str], Metadata]


@dataclass(frozen=True)
class Failure:
    """A call answered INTERNAL or UNKNOWN; `kind` tells failures of one cause apart from
    others (the exception's type and where it was raised, or the status details)."""

    method: str
    caller: str
    code: str
    details: str
    kind: str
    cause: str
    case: str
    requests: tuple[Message | bytes, ...]

    @property
    def size(self) -> int:
        """The bytes sent."""
        return sum(len(r) if isinstance(r, bytes) else r.ByteSize() for r in self.requests)

    def shown(self) -> str:
        """The requests, one line."""
        label = f"[{self.case}] " if self.case else ""
        return label + " + ".join(show(r) for r in self.requests)


class ErrorLog(logging.Handler):
    """Keeps the node's error log lines (the node runs in this process): by trace id for
    `interops.errors`, in order for the others."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_trace: dict[str, logging.LogRecord] = {}
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:  # under the handler's own lock
        trace_id = getattr(record, "trace_id", None)
        if isinstance(trace_id, str):
            self.by_trace[trace_id] = record
        self.records.append(record)


def cause_of(record: logging.LogRecord) -> tuple[str, str]:
    """(kind, cause) of a log line: the exception's type and where it was raised (the deepest
    frame of ours, and the deepest frame at all when that is in a library); the cause adds
    the exception's message."""
    if record.exc_info is None or record.exc_info[1] is None:
        return record.name, f"{record.name}: {record.getMessage()[:200]}"
    error = record.exc_info[1]
    innermost = error
    while innermost.__cause__ is not None:  # what the database driver said, say
        innermost = innermost.__cause__
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(ROOT) and "/.venv/" not in f.filename]
    where = ""
    if ours:
        frame = ours[-1]
        where = f" at {os.path.relpath(frame.filename, ROOT)}:{frame.lineno} in {frame.name}"
    if frames and (not ours or frames[-1] is not ours[-1]):
        last = frames[-1]
        library = last.filename.split("site-packages/")[-1]
        where += f" (raised in {library}:{last.lineno} in {last.name})"
    kind = f"{type(innermost).__module__}.{type(innermost).__qualname__}"
    message = str(innermost).strip().splitlines()[0][:200] if str(innermost).strip() else ""
    return f"{kind}{where}", f"{kind}: {message}{where}"


@dataclass
class Fuzzer:
    """Calls the node's methods with raw bytes on a plain channel and keeps what failed."""

    node: RunningNode
    channel: grpc.Channel
    targets: list[Target]
    callers: dict[str, Caller]
    strategies: Strategies
    errors: ErrorLog
    failures: list[Failure] = field(default_factory=list)
    codes: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def call(
        self, target: Target, caller: Caller, payloads: Sequence[bytes]
    ) -> grpc.RpcError | None:
        """Sends the payloads (serialized requests) and reads every response, keeping what
        they hold to send it back later; the error, if the call ended with one."""
        metadata = tuple(caller.metadata(target.path))
        answers: list[bytes] = []
        try:
            if target.server_streaming:
                if target.client_streaming:
                    responses = self.channel.stream_stream(target.path, None, None)(
                        iter(payloads), timeout=STREAM_SECONDS, metadata=metadata
                    )
                else:
                    responses = self.channel.unary_stream(target.path, None, None)(
                        payloads[0], timeout=STREAM_SECONDS, metadata=metadata
                    )
                for answer in responses:
                    answers.append(answer)
            elif target.client_streaming:
                answers.append(self.channel.stream_unary(target.path, None, None)(
                    iter(payloads), timeout=UNARY_SECONDS, metadata=metadata
                ))  # fmt: skip
            else:
                answers.append(self.channel.unary_unary(target.path, None, None)(
                    payloads[0], timeout=UNARY_SECONDS, metadata=metadata
                ))  # fmt: skip
        except grpc.RpcError as error:
            return error
        finally:
            for answer in answers:
                self.strategies.learned.take(message_class(target.output).FromString(answer))
        return None

    def check(
        self, target: Target, caller: Caller, requests: Sequence[Message | bytes], case: str = ""
    ) -> None:
        """Makes the call and records it when it answers INTERNAL or UNKNOWN."""
        failure = self.attempt(target, caller, requests, case)
        if failure is not None:
            self.failures.append(failure)

    def attempt(
        self, target: Target, caller: Caller, requests: Sequence[Message | bytes], case: str = ""
    ) -> Failure | None:
        """Makes the call; what failed, if it answered INTERNAL or UNKNOWN."""
        payloads = [r if isinstance(r, bytes) else r.SerializeToString() for r in requests]
        logged = len(self.errors.records)
        error = self.call(target, caller, payloads)
        code = "OK" if error is None else error.code().name
        self.codes[target.path, caller.name, code] += 1
        if error is None or error.code() not in FAILING:
            return None
        details = TRACE_ID.sub("<trace id>", error.details() or "")
        found = TRACE_ID.search(error.details() or "")
        record = self.errors.by_trace.get(found.group(0)) if found else None
        if record is None:  # an exception our error mapping never saw: grpc logged it, if any
            fresh = [r for r in self.errors.records[logged:] if r.exc_info]
            record = fresh[-1] if fresh else None
        kind, cause = (details, "(nothing in the node's log)")
        if record is not None:
            kind, cause = cause_of(record)
        return Failure(target.path, caller.name, error.code().name, details, kind, cause, case,
                       tuple(requests))  # fmt: skip

    def minimized(self, failure: Failure) -> Failure:
        """The failure with every field that does not matter to it cleared (and every stream
        message that does not matter dropped), found by trying each in turn."""
        target = next(t for t in self.targets if t.path == failure.method)
        caller = self.callers[failure.caller]
        requests = list(failure.requests)

        def same(candidate: list[Message | bytes]) -> bool:
            again = self.attempt(target, caller, candidate, failure.case)
            return again is not None and again.kind == failure.kind

        for index in reversed(range(len(requests))):
            if len(requests) > 1 and same(requests[:index] + requests[index + 1 :]):
                del requests[index]
        for index, request in enumerate(requests):
            if isinstance(request, Message):
                requests[index] = _cleared(request, _in_stream(requests, index, same))
        return replace(failure, requests=tuple(requests))

    def fuzz(self, target: Target, caller: Caller, examples: int) -> None:
        """Hypothesis requests for the method, drawn from its request's descriptor; seeded
        (derandomized), so a run is the same on every machine."""
        examples = max(1, round(examples * SCALE))
        strategy = self.strategies.requests(target.input, target.client_streaming)

        @settings(max_examples=examples, deadline=None, database=None, derandomize=not SEED,
                  phases=(Phase.generate,), suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(strategy)
        def run(requests: list[Message]) -> None:
            self.check(target, caller, requests)

        (seed(int(SEED))(run) if SEED else run)()

    def coverage(self) -> str:
        """How each method answered each caller: which calls got past the checks."""
        lines = ["answers per method and caller:"]
        for target in self.targets:
            for caller in self.callers:
                counts = [(code, n) for (m, c, code), n in self.codes.items()
                          if m == target.path and c == caller]  # fmt: skip
                text = ", ".join(f"{code} {n}" for code, n in sorted(counts))
                lines.append(f"  {target.path} [{caller}]: {text}")
        return "\n".join(lines)

    def other_errors(self) -> str:
        """The error lines the node logged that no call answered with (background work the
        requests set off), counted by cause."""
        causes = Counter(cause_of(r)[1] for r in self.errors.records if r.name != ERRORS_LOG)
        lines = [f"{n} x {cause}" for cause, n in sorted(causes.items())]
        return "\n".join(["other error lines the node logged:", *lines])

    def take_failures(self) -> list[Failure]:
        """The failures recorded since the last call."""
        taken, self.failures = self.failures, []
        return taken

    def assert_healthy(self) -> None:
        """The node answers health checks with SERVING, for itself and each service."""
        check = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        services = {t.path.split("/")[1] for t in self.targets if t.path.startswith("/interops.")}
        for service in ("", *sorted(services)):
            answer = check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


def _copy(message: Message) -> Message:
    copy = message.__class__()
    copy.CopyFrom(message)
    return copy


def _cleared(message: Message, still_fails: Callable[[Message], bool], depth: int = 0) -> Message:
    """The message with each field cleared that it still fails without, nested fields too."""
    current = _copy(message)
    for field_descriptor, _ in message.ListFields():
        name = field_descriptor.name
        trial = _copy(current)
        trial.ClearField(name)
        if still_fails(trial):
            current = trial
        elif depth < 3 and field_descriptor.message_type and not field_descriptor.is_repeated:
            inner = _cleared(getattr(current, name), _inside(current, name, still_fails), depth + 1)
            getattr(current, name).CopyFrom(inner)
    return current


def _inside(
    whole: Message, name: str, still_fails: Callable[[Message], bool]
) -> Callable[[Message], bool]:
    """still_fails for the message in field `name` of `whole`."""
    frozen = _copy(whole)

    def check(candidate: Message) -> bool:
        trial = _copy(frozen)
        getattr(trial, name).SetInParent()
        getattr(trial, name).CopyFrom(candidate)
        return still_fails(trial)

    return check


def _in_stream(
    requests: Sequence[Message | bytes], index: int, same: Callable[[list[Message | bytes]], bool]
) -> Callable[[Message], bool]:
    """still_fails for the message at `index` of a stream."""
    frozen = list(requests)
    return lambda candidate: same([*frozen[:index], candidate, *frozen[index + 1 :]])


def report(fuzzer: Fuzzer, failures: Sequence[Failure]) -> str:
    """The failures grouped by method, then by cause, each with the smallest input that
    triggered it, minimized."""
    lines = [f"{len(failures)} calls answered INTERNAL or UNKNOWN:"]
    by_method: dict[str, dict[tuple[str, str], list[Failure]]] = {}
    for failure in failures:
        key = (failure.code, failure.kind)
        by_method.setdefault(failure.method, {}).setdefault(key, []).append(failure)
    for method in sorted(by_method):
        lines.append(f"{method}")
        for (code, _), group in sorted(by_method[method].items()):
            smallest = min(group, key=lambda f: (f.size, len(f.shown())))
            minimal = fuzzer.minimized(smallest)
            callers = ", ".join(sorted({f.caller for f in group}))
            lines.append(f"  {code} x{len(group)} [{callers}] {smallest.cause}")
            lines.append(f"    details: {smallest.details[:200]}")
            lines.append(f"    minimal input: {minimal.shown()}")
    return "\n".join(lines)


def assert_no_failures(fuzzer: Fuzzer, failures: Sequence[Failure]) -> None:
    """Fails with the report when any call answered INTERNAL or UNKNOWN."""
    if failures:
        pytest.fail(report(fuzzer, failures), pytrace=False)


def discover(channel: grpc.Channel) -> list[Target]:
    """Every method of every service the node lists through reflection."""
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    targets = []
    for name in sorted(database.get_services()):
        service = pool.FindServiceByName(name)
        for method in service.methods:
            targets.append(Target(
                path=f"/{name}/{method.name}", input=method.input_type,
                output=method.output_type,
                client_streaming=bool(method.client_streaming),
                server_streaming=bool(method.server_streaming),
            ))  # fmt: skip
    return targets


def _protected(node: RunningNode) -> dict[str, str]:
    """The right each method that needs one requires, by path: the node's map, from the
    contracts."""
    return {path: right for path, right in node.node.rights.items() if right is not None}


def _administrator(node: RunningNode, services: Sequence[str]) -> ChainCredentials:
    """A company's first administrator (active at once: registered by the operators' path, a
    registration by call waits for its letter), signed in."""
    HabilitationStore(node.node.engine).register_company(
        ADMIN_SIRET, ("Fuzz", "Alex"), "fuzzing password"
    )
    return node.sign_in(ADMIN_SIRET, "Fuzz", "Alex", "fuzzing password",
                        audience=list(services), lifetime_seconds=3600)  # fmt: skip


@pytest.fixture(scope="module")
def fuzzer(node: RunningNode) -> Iterator[Fuzzer]:
    """The node's methods, the three callers, and its error log."""
    sirets = [siret_of(COMPANY, n) for n in (1, 2, 3)] + [siret_of(siren_at(991), 1)]
    in_registry(node.node.engine, sirets)
    errors = ErrorLog()
    loggers = [logging.getLogger(name) for name in ("interops", "grpc")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(errors)
        if logger.getEffectiveLevel() > logging.ERROR:
            logger.setLevel(logging.ERROR)
    channel = grpc.insecure_channel(
        node.address, options=[("grpc.max_send_message_length", 16 * 1024 * 1024)]
    )
    try:
        targets = discover(channel)
        rights = _protected(node)
        protected = {path.split("/")[1] for path in rights}
        services = sorted({t.path.split("/")[1] for t in targets} & protected)
        everything = node.organism("FUZZER", rights=sorted(set(rights.values())))
        credentials = node.credentials(everything, services)
        administrator = _administrator(node, services)
        callers = {
            "organism with every right": Caller("organism with every right", credentials.metadata),
            "company administrator": Caller("company administrator", administrator.metadata),
            "anonymous": Caller("anonymous", lambda method: ()),
        }
        dictionary = [*sirets, COMPANY, "URSSAF", "FUZZER", "ATMP", "DUCS", "fuzz@example.org"]
        yield Fuzzer(node, channel, targets, callers, Strategies(dictionary), errors)
    finally:
        channel.close()
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(errors)
            logger.setLevel(level)


def test_reflection_lists_every_service_with_its_methods(fuzzer: Fuzzer) -> None:
    services = {t.path.split("/")[1] for t in fuzzer.targets}
    rights = _protected(fuzzer.node)
    assert {path.split("/")[1] for path in rights} <= services
    assert set(rights) <= {t.path for t in fuzzer.targets}
    assert "grpc.health.v1.Health" in services


def test_known_bad_requests_never_fail_internally(fuzzer: Fuzzer) -> None:
    for target in fuzzer.targets:
        requests: list[tuple[str, Message | bytes]] = list(RAW_CASES)
        requests += list(bad_requests(target.input))
        for caller in fuzzer.callers.values():
            for case, request in requests:
                fuzzer.check(target, caller, [request], case)
    failures = fuzzer.take_failures()
    fuzzer.assert_healthy()
    assert_no_failures(fuzzer, failures)


def test_fuzzed_requests_never_fail_internally(fuzzer: Fuzzer) -> None:
    passes = (("organism with every right", 60), ("company administrator", 20), ("anonymous", 5))
    fuzzer.codes.clear()
    for target in fuzzer.targets:
        for name, examples in passes:
            fuzzer.fuzz(target, fuzzer.callers[name], examples)
    print(fuzzer.coverage())
    print(fuzzer.other_errors())
    failures = fuzzer.take_failures()
    fuzzer.assert_healthy()
    assert_no_failures(fuzzer, failures)
