"""One trace follows a deposit across processes: the declarant's command line, the backbone
(deposit, validation, routing, hand-over to each organism) and two organism systems (download,
CRM, acknowledgement), all exporting over OTLP to a receiver in the test. No span carries
personal data."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from interops.dsn.v1 import dsn_pb2 as pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from clients.client import Client
from clients.token_cli import holder_signer
from clients.token_credentials import ChainCredentials
from registry.dsn.synth import _LAST_NAMES, nir
from server.cli.demo_trust import DECLARANT, DECLARANT_PASSWORD
from tests.dsn.test_dsn_end_to_end import DEPOSIT, Processes, _wait_for
from tests.web_timeouts import HTTP_TIMEOUT
from token_suite.wire import from_text


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver: keeps (service, span name, trace id, attributes) of each span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self.lock:
            for resource_spans in request.resource_spans:
                service = next((a.value.string_value for a in resource_spans.resource.attributes
                                if a.key == "service.name"), "")  # fmt: skip
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        attributes = {a.key: str(a.value).strip() for a in span.attributes}
                        self.spans.append((service, span.name, span.trace_id.hex(), attributes))
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(4))
    found = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(found, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield found, port
    server.stop(None)


def test_one_trace_joins_the_deposit_routing_and_both_organisms(
    database_url: str, tmp_path: Path, receiver: tuple[Receiver, int]
) -> None:
    found, port = receiver
    import os

    env = {**os.environ, "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
           "INTEROPS_HTTP_ADDRESS": "127.0.0.1:0",
           "INTEROPS_DATA_DIR": str(tmp_path / "node"), "INTEROPS_DATABASE_URL": database_url,
           "INTEROPS_TRACING_EXPORTER": "otlp", "INTEROPS_FEED_POLL_SECONDS": "0.1",
           "INTEROPS_TRACE_STATEMENTS": "on",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
           "OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_BSP_SCHEDULE_DELAY": "100"}  # fmt: skip
    processes = Processes(env, tmp_path)
    try:
        log = processes.start("backbone", "serve", "--demo-data")
        address = _wait_for(log, r"serving on (\S+)").group(1)
        processes.env["INTEROPS_GRPC_ADDRESS"] = address
        keys = tmp_path / "node" / "demo-keys"
        for organism in ("URSSAF", "DGFIP"):
            processes.env["OTEL_SERVICE_NAME"] = f"organism-{organism}"
            processes.start(organism, "--organism", organism, "--key",
                            str(keys / f"{organism}.pem"), "organism", "run")  # fmt: skip
        processes.env["OTEL_SERVICE_NAME"] = "payroll-software"
        processes.env["INTEROPS_PASSWORD"] = DECLARANT_PASSWORD
        holder_key = tmp_path / "declarant.key"  # the key the declarant's chain names
        processes.env["INTEROPS_HOLDER_KEY"] = str(holder_key)
        siret, last, first = DECLARANT
        issued = processes.run("token", "issue", "--declarant", siret, "--last-name", last,
                               "--first-name", first, "--audience", DEPOSIT)  # fmt: skip
        token = issued.stdout.strip()
        dsn = tmp_path / "march.dsn"
        assert (
            processes.run("dsn", "generate", "--out", str(dsn), "--employees", "6").returncode == 0
        )
        submitted = processes.run("--token", token, "dsn", "submit", str(dsn))
        assert submitted.returncode == 0, submitted.stderr
        deposit_id = submitted.stdout.split()[0]
        chain = ChainCredentials(from_text(token), holder_signer(holder_key))
        with Client(address, credentials=chain) as declarant:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                deposit = declarant.get_deposit(deposit_id)
                acknowledged = {d.organism for d in deposit.deliveries
                                if d.state == pb.DELIVERY_STATE_ACKNOWLEDGED}  # fmt: skip
                if {"URSSAF", "DGFIP"} <= acknowledged:
                    break
                time.sleep(0.2)
        trace_id = deposit.trace_id
        assert len(trace_id) == 32
        wanted = {
            ("payroll-software", "SubmitDeposit"),
            ("interops-backbone", "SubmitDeposit"),
            ("interops-backbone", "dsn.validate"),
            ("interops-backbone", "dsn.route"),
            ("interops-backbone", "dsn.deliver"),
            ("interops-backbone", "AcknowledgeDelivery"),
            ("interops-backbone", "PostReturn"),
            *((f"organism-{o}", m) for o in ("URSSAF", "DGFIP")
              for m in ("DownloadDelivery", "PostReturn", "AcknowledgeDelivery")),
        }  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with found.lock:
                in_trace = [s for s in found.spans if s[2] == trace_id]
            seen = {(service, name.rsplit("/", 1)[-1]) for service, name, _, _ in in_trace}
            if wanted <= seen:
                break
            time.sleep(0.2)
        assert wanted <= seen, sorted(wanted - seen)
    finally:
        processes.stop()
    # The spans say which deposit, which chain and organisms; the database's too.
    deliveries = [a for s, n, t, a in in_trace if n == "dsn.deliver"]
    assert {a["interops.organism"].split('"')[1] for a in deliveries} >= {"URSSAF", "DGFIP"}
    submit = next(a for s, n, t, a in in_trace
                  if s == "interops-backbone" and n.endswith("SubmitDeposit"))  # fmt: skip
    assert deposit_id in submit["interops.deposit_id"] and "interops.chain_id" in submit
    with found.lock:
        everything = list(found.spans)
    assert any("db.statement" in a or "db.query.text" in a for _, _, _, a in everything)
    # No personal data anywhere: no employee's name or NIR in any attribute of any span.
    personal = [*(nir(i) for i in range(6)), *_LAST_NAMES[:6], "Martin", "Camille"]
    leaked = [(s, n, k) for s, n, _, a in everything for k, v in a.items()
              if any(p in v for p in personal)]  # fmt: skip
    assert leaked == []


def test_a_web_request_is_one_trace_with_the_node_calls_it_makes(
    database_url: str, tmp_path: Path, receiver: tuple[Receiver, int]
) -> None:
    found, port = receiver
    import os

    env = {**os.environ, "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
           "INTEROPS_HTTP_ADDRESS": "127.0.0.1:0", "INTEROPS_DATA_DIR": str(tmp_path / "node"),
           "INTEROPS_DATABASE_URL": database_url, "INTEROPS_TRACING_EXPORTER": "otlp",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
           "OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_BSP_SCHEDULE_DELAY": "100"}  # fmt: skip
    processes = Processes(env, tmp_path)
    try:
        log = processes.start("backbone", "serve", "--demo-data")
        web = _wait_for(log, r"web adapter on (\S+)").group(1)
        answer = httpx.post(
            f"{web}/v1/interops.token.v1.TokenService/GetDirectory", json={}, timeout=HTTP_TIMEOUT
        )
        assert answer.status_code == 200
        signed_in = httpx.post(
            f"{web}/signin", data={"csrf": "x"}, timeout=HTTP_TIMEOUT
        )  # refused: no session
        assert signed_in.status_code == 403
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with found.lock:
                spans = list(found.spans)
            http = [t for s, n, t, a in spans if n.startswith("POST /v1/")]
            node = [t for s, n, t, a in spans
                    if n == "/interops.token.v1.TokenService/GetDirectory"]  # fmt: skip
            if http and set(http) & set(node):
                break
            time.sleep(0.2)
        assert http and set(http) & set(node), sorted({n for _, n, _, _ in spans})
    finally:
        processes.stop()
