"""The node itself: health, reflection, the interceptor chain (tracing, validation, errors),
and draining of in-flight calls on SIGTERM."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from interops.registry.v1 import registry_pb2 as pb
from sqlalchemy import text

from clients.client import Client, upload_requests
from clients.errors import Internal, from_rpc_error
from clients.token_credentials import OrganismCredentials
from registry.kernel.database import open_engine, upgrade
from registry.rcd.sirene_synth import StockFiles
from tests.running_node import SERVICES, RunningNode, provision_organism
from token_suite.chain import Signer


def test_health_says_serving_for_the_node_and_each_service(client: Client) -> None:
    assert client.check_health()
    assert client.check_health("interops.registry.v1.RegistryService")
    assert client.check_health("interops.operation.v1.OperationService")


def test_reflection_lets_any_client_discover_the_contracts(node: RunningNode) -> None:
    with grpc.insecure_channel(node.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {
            "interops.registry.v1.RegistryService",
            "interops.operation.v1.OperationService",
            "grpc.health.v1.Health",
        } <= services
        pool = descriptor_pool.DescriptorPool(database)
        service = pool.FindServiceByName("interops.registry.v1.RegistryService")
        method = service.methods_by_name["GetEstablishment"]
        assert method.input_type.full_name == "interops.registry.v1.GetEstablishmentRequest"
        assert "siret" in method.input_type.fields_by_name


def test_an_unexpected_failure_is_internal_with_the_trace_id_and_no_internals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = RunningNode(f"sqlite:///{tmp_path / 'broken.db'}", tmp_path)
    try:
        with running.node.engine.begin() as connection:
            connection.execute(text("DROP TABLE establishments"))
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
        caplog.set_level(logging.ERROR, logger="interops.errors")
        with grpc.insecure_channel(running.address) as channel:
            call = channel.unary_unary(
                "/interops.registry.v1.RegistryService/GetEstablishment",
                request_serializer=pb.GetEstablishmentRequest.SerializeToString,
                response_deserializer=pb.GetEstablishmentResponse.FromString,
            )
            method = "/interops.registry.v1.RegistryService/GetEstablishment"
            credentials = running.credentials().metadata(method)
            with pytest.raises(grpc.RpcError) as caught:
                call(
                    pb.GetEstablishmentRequest(siret="73282932000074"),
                    metadata=(("traceparent", traceparent), *credentials),
                )
        error = from_rpc_error(caught.value)
        assert isinstance(error, Internal)
        assert error.reason == "INTERNAL"
        # The W3C context from the metadata reached the handler: same trace id.
        assert error.metadata["trace_id"] == trace_id and trace_id in error.message
        assert "establishments" not in error.message and "sqlite" not in error.message.lower()
        logged = [r for r in caplog.records if r.name == "interops.errors"]
        assert logged and trace_id in logged[0].getMessage()
        assert logged[0].exc_info is not None
    finally:
        running.stop()


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[str], str, Signer]:
    engine = open_engine(f"sqlite:///{tmp_path / 'interops.db'}")
    upgrade(engine)
    operator = provision_organism(engine, "OPERATOR", rights=("registry.read", "registry.import"))
    engine.dispose()
    env = {
        **os.environ,
        "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
        "INTEROPS_HTTP_ADDRESS": "127.0.0.1:0",
        "INTEROPS_DATA_DIR": str(tmp_path),
        "INTEROPS_TRACING_EXPORTER": "none",
        "INTEROPS_SHUTDOWN_GRACE_SECONDS": "20",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "clients.cli", "serve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"serving on (\S+)", line)
        if found:
            return process, found.group(1), operator
    raise AssertionError("the node did not start")


def test_sigterm_lets_an_in_flight_upload_finish_then_stops(
    tmp_path: Path, stock: StockFiles
) -> None:
    process, address, operator = _serve(tmp_path)
    try:
        sent_header = False

        def slow_upload() -> Iterator[pb.ImportStockRequest]:
            nonlocal sent_header
            for number, message in enumerate(upload_requests(stock.companies)):
                yield message
                if number == 0:
                    sent_header = True
                    time.sleep(0.5)
                    process.send_signal(signal.SIGTERM)
                    time.sleep(1.0)

        credentials = OrganismCredentials(address, operator, SERVICES)
        with Client(address, credentials=credentials) as client:
            response = client.registry.ImportStock(slow_upload(), timeout=30)
            assert response.operation.name.startswith("operations/")
            assert sent_header
            with pytest.raises(grpc.RpcError):
                client.registry.GetCompany(pb.GetCompanyRequest(siren="732829320"), timeout=5)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_undecodable_requests_are_invalid_argument_with_one_quiet_log_line(
    node: RunningNode, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage bytes for a request, even from an anonymous caller, many times: each call ends
    INVALID_ARGUMENT (not INTERNAL), and the log gets one warning line, no traceback."""
    caplog.set_level(logging.DEBUG)
    with grpc.insecure_channel(node.address) as channel:
        for method, authenticated in (
            ("/interops.token.v1.TokenService/VerifyToken", False),  # public
            ("/interops.registry.v1.RegistryService/GetEstablishment", True),
        ):
            call = channel.unary_unary(method, None, None)  # bytes in, bytes out
            for _ in range(20):
                # (A proof of possession is single-use: a new one each call.)
                metadata = tuple(node.credentials().metadata(method)) if authenticated else ()
                with pytest.raises(grpc.RpcError) as caught:
                    call(b"\xff\xff\xff\xff", metadata=metadata, timeout=10)
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "does not decode" in (caught.value.details() or "")
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]
    warned = [r for r in caplog.records if r.name == "interops.validation"]
    assert len(warned) <= 1 and all(r.levelno == logging.WARNING for r in warned)


def test_health_lists_the_node_and_each_service(client: Client) -> None:
    from grpc_health.v1 import health_pb2

    listed = client.health.List(health_pb2.HealthListRequest(), timeout=10)
    assert listed.statuses[""].status == health_pb2.HealthCheckResponse.SERVING
    assert "interops.registry.v1.RegistryService" in listed.statuses
