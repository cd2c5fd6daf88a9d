"""One exchange in one picture (issue 22, point 2), through a real node: a deposit goes through,
an organism handles its delivery and sends its spans to the node's OTLP collector with its own
credentials; the trace query then answers the node's spans and the organism's in one tree under
the deposit's trace id, the command line prints it as a waterfall, and only audit.read holders
may read it. Only organisms with trace.write may send spans, within limits, and nothing
personal in them is kept; the node keeps no span of its own storage writes."""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from interops.dsn.v1 import dsn_pb2
from interops.token.v1 import token_pb2, token_service_pb2, token_service_pb2_grpc
from interops.trace.v1 import trace_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from sqlalchemy import select, text

from clients import trace_cli
from clients.client import Client
from clients.credentials import SyncCredentialsInterceptor
from clients.errors import PermissionDenied
from clients.sample_organism import SampleOrganism
from clients.token_credentials import (
    ISSUE_METHOD,
    ChainCredentials,
    OrganismCredentials,
    proof_metadata,
)
from clients.tracing import COLLECTOR_SERVICE, InteropsSpanExporter, tracer_provider
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.trace.schema import trace_spans
from registry.trace.store import StoredSpan, TraceStore
from registry.trace.tree import tree_order
from registry.trust.declarant_store import DeclarantStore
from server.trace.attributes import organism_name, scrubbed
from server.trace.keeper import write_unseen
from server.trace.otlp_service import MAX_EXPORT_SPANS
from tests.running_node import RunningNode
from token_suite.chain import Signer, Terms, delegate

DEPOSIT = "interops.dsn.v1.DepositService"
DELIVERY = "interops.dsn.v1.DeliveryService"
AUDIT = "interops.audit.v1.AuditService"
TRACE = "interops.trace.v1.TraceService"
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
# What must never be kept: a person's name, NIR, e-mail, password and IBAN.
PERSONAL = ("Camille Martin", "1850578006084", "camille.martin@example.fr", "s3cret-pw",
            "FR7630006000011234567890189")  # fmt: skip
# The same, written past a pattern that knows only the plain spellings (attacker review).
EVADING = ("1-85-05-78-006-084-36", "285052A00608436", "nl91abna0417164300",
           "FR76-3000-6000-0112-3456-7890-189", "ana＠example.fr", "185057800608436")  # fmt: skip


@pytest.fixture(scope="module")
def node(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node that also traces its database statements (INTEROPS_TRACE_STATEMENTS=on)."""
    running = RunningNode(database_url, tmp_path_factory.mktemp("data"), trace_statements=True)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def auditor(node: RunningNode) -> Iterator[Client]:
    """An operator's system holding audit.read, for the trace queries and the journal."""
    signer = node.organism("AUDITOR", "OC", rights=("audit.read",))
    with Client(node.address, credentials=node.credentials(signer, (TRACE, AUDIT))) as client:
        yield client


@pytest.fixture(scope="module")
def urssaf(node: RunningNode) -> Signer:
    """URSSAF, which takes deliveries and may send its spans."""
    return node.organism("URSSAF", "URSSAF", rights=("dsn.deliveries", "trace.write"))


def _collector(node: RunningNode, credentials: Any = None) -> Any:
    channel = grpc.insecure_channel(node.address)
    if credentials is not None:
        channel = grpc.intercept_channel(channel, SyncCredentialsInterceptor(credentials))
    return otlp_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]


def _value(value: object) -> AnyValue:
    if isinstance(value, int):
        return AnyValue(int_value=value)
    return AnyValue(string_value=str(value))


def _export(
    trace_id: str,
    name: str,
    attributes: Mapping[str, object],
    count: int = 1,
    service: str = "urssaf-system",
) -> Any:
    now = time.time_ns()
    spans = [
        OtlpSpan(trace_id=bytes.fromhex(trace_id), span_id=(i + 1).to_bytes(8, "big"), name=name,
                 kind=OtlpSpan.SPAN_KIND_INTERNAL, start_time_unix_nano=now - 1000,
                 end_time_unix_nano=now,
                 attributes=[KeyValue(key=k, value=_value(v)) for k, v in attributes.items()])
        for i in range(count)
    ]  # fmt: skip
    resource = Resource(attributes=[KeyValue(key="service.name", value=_value(service))])
    return otlp.ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )


def _deposit(node: RunningNode, tmp_path: Path) -> str:
    """A monthly DSN deposited by a declarant of the demo company, once routed: its id."""
    DeclarantStore(node.node.engine).create(
        FIRM, "Martin", "Camille", "trace pw", [("dsn.deposit", DEMO_COMPANY.siren)]
    )
    chain = node.sign_in(FIRM, "Martin", "Camille", "trace pw", audience=[DEPOSIT])
    path = tmp_path / "march.dsn"
    path.write_bytes(b"".join(generate(3, order=221)))
    with Client(node.address, credentials=chain, timeout=60) as declarant:
        deposit = declarant.submit_deposit(path)
        deadline = time.monotonic() + 60
        while declarant.get_deposit(deposit.id).state != dsn_pb2.DEPOSIT_STATE_ROUTED:
            assert time.monotonic() < deadline, "the deposit was not routed"
            time.sleep(0.05)
    return deposit.id


def _handled_by_organism(node: RunningNode, urssaf: Signer, key: bytes) -> None:
    """URSSAF's system handles its delivery, tracing itself, and sends its spans to the node
    with its own credentials."""
    exporter = InteropsSpanExporter(
        node.address, OrganismCredentials(node.address, urssaf, (COLLECTOR_SERVICE,))
    )
    provider = tracer_provider("urssaf-system", "interops", exporter)
    credentials = node.credentials(urssaf, (DELIVERY,))
    try:
        with Client(node.address, credentials=credentials, tracer_provider=provider) as client:
            system = SampleOrganism(client, urssaf, key, tracer=provider.get_tracer("t"))
            assert system.run_once() >= 1
        assert provider.force_flush(30_000)
    finally:
        provider.shutdown()


def _cli(client: Client, *argv: str) -> str:
    """`interops trace ...` as the command line runs it, with this client."""
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")

    def with_client(handler: Callable[[argparse.Namespace, Client], int]) -> Any:
        return lambda args: handler(args, client)

    trace_cli.register(commands, with_client)
    out = io.StringIO()
    args = parser.parse_args(["trace", *argv, "--width", "120"])
    args.trace_out = out
    assert args.handler(args) == 0
    return out.getvalue()


def test_a_deposit_and_an_organisms_handling_make_one_trace(
    node: RunningNode, auditor: Client, urssaf: Signer, tmp_path: Path
) -> None:
    keys = node.encryption_keys()
    deposit_id = _deposit(node, tmp_path)
    _handled_by_organism(node, urssaf, keys["URSSAF"])
    # The deposit's own trace first; the declarant's later looks at it follow.
    found, *_ = auditor.search_traces(deposit_id=deposit_id)
    assert found.record_count >= 1 and found.span_count > 0
    spans = auditor.get_trace(found.trace_id)
    assert {s.trace_id for s in spans} == {found.trace_id}
    by_id = {s.span_id: s for s in spans if s.reported_by == "node"}
    names = {(s.reported_by, s.name) for s in spans}
    assert ("node", "/interops.dsn.v1.DepositService/SubmitDeposit") in names
    assert {("node", "dsn.validate"), ("node", "dsn.route"), ("node", "dsn.deliver")} <= names
    handled = next(s for s in spans if s.name == "organism.handle_delivery")
    assert handled.reported_by == "URSSAF" and handled.service == "urssaf-system"
    assert by_id[handled.parent_span_id].name == "dsn.deliver"  # under the node's span
    assert handled.attributes["interops.deposit_id"] == deposit_id
    # The organism's calls, as its client saw them and as the node served them.
    assert any(s.reported_by == "URSSAF" and s.kind == trace_pb2.SPAN_KIND_CLIENT for s in spans)
    served = [s for s in spans if s.reported_by == "node" and s.name.endswith("/PostReturn")]
    assert served and served[0].depth > handled.depth
    # Tree order: every span comes after its parent, one level deeper.
    seen: dict[str, int] = {}
    for span in spans:
        if span.parent_span_id in seen:
            assert span.depth == seen[span.parent_span_id] + 1
        seen.setdefault(span.span_id, span.depth)
    # No background polling as root spans: every root is a call served or the pipeline's.
    assert all(s.kind == trace_pb2.SPAN_KIND_SERVER or s.name.startswith("dsn.")
               for s in spans if s.depth == 0 and s.reported_by == "node")  # fmt: skip

    printed = _cli(auditor, "--deposit", deposit_id, "--max", "1")
    lines = printed.splitlines()
    assert lines[0].startswith(f"trace {found.trace_id}: {len(spans)} spans")
    assert any("organism.handle_delivery" in line and "█" in line and line.endswith(" ms")
               for line in lines)  # fmt: skip
    assert any(line.startswith("URSSAF") for line in lines)
    assert any(f"deposit:{deposit_id}" in line for line in lines)
    assert max(len(line) for line in lines[1 : len(spans) + 1]) <= 120
    assert _cli(auditor, found.trace_id).splitlines()[0] == lines[0]


def test_only_audit_readers_read_traces(node: RunningNode, urssaf: Signer) -> None:
    with Client(node.address, credentials=node.credentials(urssaf, (TRACE,))) as organism:
        with pytest.raises(PermissionDenied) as refused:
            organism.get_trace("0" * 31 + "1")
        assert refused.value.reason == "MISSING_GRANT"
        with pytest.raises(PermissionDenied):
            organism.search_traces(siret=DEMO_COMPANY.siret)


def test_only_organisms_with_trace_write_send_spans_within_limits(
    node: RunningNode, urssaf: Signer
) -> None:
    request = _export("2" * 32, "work", {})
    with pytest.raises(grpc.RpcError) as anonymous:
        _collector(node).Export(request, timeout=10)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reader = node.organism("READER", "OC", rights=("registry.read",))
    without = OrganismCredentials(node.address, reader, (COLLECTOR_SERVICE,))
    with pytest.raises(grpc.RpcError) as ungranted:
        _collector(node, without).Export(request, timeout=10)
    assert ungranted.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A declarant (a person's chain) is no organism, whatever it holds.
    DeclarantStore(node.node.engine).create(FIRM, "Durand", "Lea", "pw trace", [])
    person = node.sign_in(FIRM, "Durand", "Lea", "pw trace", audience=[COLLECTOR_SERVICE])
    with pytest.raises(grpc.RpcError) as declarant:
        _collector(node, person).Export(request, timeout=10)
    assert declarant.value.code() == grpc.StatusCode.PERMISSION_DENIED
    granted = OrganismCredentials(node.address, urssaf, (COLLECTOR_SERVICE,))
    too_many = _export("3" * 32, "work", {}, count=MAX_EXPORT_SPANS + 1)
    with pytest.raises(grpc.RpcError) as large:
        _collector(node, granted).Export(too_many, timeout=30)
    assert large.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "at most" in str(large.value.details())
    assert TraceStore(node.node.engine).spans_of("3" * 32) == []
    _collector(node, granted).Export(request, timeout=10)
    (kept,) = TraceStore(node.node.engine).spans_of("2" * 32)
    assert kept.reported_by == "URSSAF"


def test_personal_data_in_spans_is_never_kept(node: RunningNode, urssaf: Signer) -> None:
    trace_id = "4" * 32
    name, nir, email, password, iban = PERSONAL
    deposit_id = "d" * 32
    attributes = {"enduser.id": name, "interops.nir": nir, "user.email": email,
                  "db.user.password": password, "interops.iban": iban,
                  "interops.organism": email, "interops.deposit_id": deposit_id,
                  "interops.siret": DEMO_COMPANY.siret, "rpc.method": "Handle",
                  # allowlisted keys holding what is not theirs
                  "interops.return_code": name, "interops.chain_id": EVADING[0],
                  "interops.delivery_id": iban, "rpc.service": name, "interops.nature": nir,
                  "server.address": EVADING[4]}  # fmt: skip
    request = _export(trace_id, f"pay {iban} for {nir} to {email}", attributes,
                      service=f"{name} {EVADING[0]}")  # fmt: skip
    for number, evading in enumerate((*EVADING, name), start=2):  # one span each, as its name
        evasion = _export(trace_id, f"x-{evading}", {}).resource_spans[0]
        evasion.scope_spans[0].spans[0].span_id = number.to_bytes(8, "big")
        request.resource_spans.append(evasion)
    credentials = OrganismCredentials(node.address, urssaf, (COLLECTOR_SERVICE,))
    _collector(node, credentials).Export(request, timeout=10)
    kept, *others = TraceStore(node.node.engine).spans_of(trace_id)
    allowed = {"interops.deposit_id": deposit_id, "interops.siret": DEMO_COMPANY.siret,
               "rpc.method": "Handle"}  # fmt: skip
    assert kept.attributes == allowed
    assert len(others) == len(EVADING) + 1
    with node.node.engine.connect() as connection:
        stored = " ".join(str(v) for row in connection.execute(select(trace_spans)) for v in row)
    for value in (*PERSONAL, *EVADING, "example.fr", "Martin"):
        assert value.lower() not in stored.lower(), value


def test_scrubbing_reads_no_more_than_it_keeps() -> None:
    """A name of ten million characters is cut before it is read (a pattern over the whole of
    it would hold the node's event loop for hours)."""
    assert len(scrubbed("a" * 10_000_000)) == 200
    assert organism_name("b" * 10_000_000) == "b" * 100


def test_an_organism_neither_hides_nor_takes_over_anothers_spans(
    node: RunningNode, urssaf: Signer
) -> None:
    trace_id = "7" * 32
    cnam = node.organism("CNAM", "CNAM", rights=("trace.write",))
    honest = _export(trace_id, "cnam-root", {})
    child = _export(trace_id, "cnam-child", {}).resource_spans[0].scope_spans[0].spans[0]
    child.span_id, child.parent_span_id = (9).to_bytes(8, "big"), (1).to_bytes(8, "big")
    honest.resource_spans[0].scope_spans[0].spans.append(child)
    _collector(node, OrganismCredentials(node.address, cnam, (COLLECTOR_SERVICE,))).Export(
        honest, timeout=10
    )
    attacker = _collector(node, OrganismCredentials(node.address, urssaf, (COLLECTOR_SERVICE,)))
    flood = _export(trace_id, "flood", {}, count=2000)
    early = time.time_ns() - 10**12  # starting before CNAM's, with CNAM's root span id
    for span in flood.resource_spans[0].scope_spans[0].spans:
        span.span_id = (int.from_bytes(span.span_id, "big") + 100).to_bytes(8, "big")
        span.start_time_unix_nano = early
    flood.resource_spans[0].scope_spans[0].spans[0].span_id = (1).to_bytes(8, "big")
    for _ in range(3):
        attacker.Export(flood, timeout=30)
    ancient = _export(trace_id, "ancient", {})
    ancient.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = 1
    assert attacker.Export(ancient, timeout=10).partial_success.rejected_spans == 1
    spans = TraceStore(node.node.engine).spans_of(trace_id, limit=1000)
    assert {"cnam-root", "cnam-child"} <= {s.name for s in spans}  # not pushed out
    ordered = tree_order(spans)
    depth = {(s.reported_by, s.name): d for s, d in ordered}
    position = {(s.reported_by, s.name): i for i, (s, _) in enumerate(ordered)}
    assert depth[("CNAM", "cnam-child")] == depth[("CNAM", "cnam-root")] + 1
    assert position[("CNAM", "cnam-child")] == position[("CNAM", "cnam-root")] + 1


def test_the_node_keeps_no_span_of_its_own_storage_writes(node: RunningNode) -> None:
    tracer = node.node.tracer_provider.get_tracer("interops.test")
    store = TraceStore(node.node.engine)
    written = StoredSpan(trace_id="6" * 32, span_id="6" * 16, parent_id="", name="written",
                         kind=1, service="s", reported_by="node", start_ns=time.time_ns(),
                         end_ns=time.time_ns())  # fmt: skip
    with tracer.start_as_current_span("interops.test.work") as span:
        trace_id = f"{span.get_span_context().trace_id:032x}"
        with node.node.engine.connect() as connection:  # a statement of the work: traced
            connection.execute(text("SELECT 1"))
        write_unseen(store, [written])  # as the keeper and the collector write
    keeper = node.node.trace_keeper
    assert keeper is not None
    node.run(keeper.flush())
    assert [s.name for s in store.spans_of("6" * 32)] == ["written"]
    names = [s.name for s in store.spans_of(trace_id)]
    if len(names) == 1:
        pytest.skip("the process's SQLAlchemy instrumentation is bound to another node's engine")
    assert names[0] == "interops.test.work"
    assert any(name.startswith("SELECT") for name in names)  # the work's statement is kept
    assert not any(name.startswith("INSERT") for name in names)  # the write is not


def test_retention_purges_old_spans_only(node: RunningNode, urssaf: Signer) -> None:
    credentials = OrganismCredentials(node.address, urssaf, (COLLECTOR_SERVICE,))
    _collector(node, credentials).Export(_export("5" * 32, "recent", {}), timeout=10)
    keeper = node.node.trace_keeper
    assert keeper is not None and keeper.retention_ns == 72 * 3600 * 10**9
    store = TraceStore(node.node.engine)
    assert node.run(keeper.purge()) == 0 or store.spans_of("5" * 32)
    assert store.spans_of("5" * 32)
    later = time.time_ns() + keeper.retention_ns + 10**9
    assert node.run(keeper.purge(now_ns=later)) >= 1
    assert store.spans_of("5" * 32) == []


def test_spans_sent_through_a_chain_handed_on_are_refused(
    node: RunningNode, urssaf: Signer
) -> None:
    """URSSAF's application chain handed to CNAM's key: CNAM's spans would carry URSSAF's
    name (the chain's subject), so the collector takes only a chain its organism holds."""
    cnam = node.organism("CNAM", "CNAM", rights=("registry.read",))
    stub = token_service_pb2_grpc.TokenServiceStub(grpc.insecure_channel(node.address))
    issued = stub.IssueToken(
        token_service_pb2.IssueTokenRequest(
            organism=token_service_pb2.OrganismSignIn(organism="URSSAF"),
            profile=token_pb2.PROFILE_APPLICATION, audience=[COLLECTOR_SERVICE],
            lifetime_seconds=300, max_hops=1,
        ),
        metadata=(proof_metadata(urssaf, ISSUE_METHOD, b""),), timeout=30,
    )  # fmt: skip
    handed = delegate(issued.token, urssaf, Terms(holder=cnam.as_holder(), purpose="spans"))
    with pytest.raises(grpc.RpcError) as refused:
        _collector(node, ChainCredentials(handed, cnam)).Export(
            _export("8" * 32, "by-cnam", {}), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert TraceStore(node.node.engine).spans_of("8" * 32) == []
