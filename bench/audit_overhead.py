"""Benchmark: the audit journal's cost on the call path, as the ratio of an audited call's
throughput to the same call's without the journal, on the same node in the same run. Target:
ratio >= 0.9.

The call is the cheapest there is (an empty handler), authenticated like every organism's call
(APPLICATION chain, proof of possession), so the journal's share is the largest it can be. The
two twins are measured in alternating bursts and the best burst of each is kept.

    python -m bench.audit_overhead [--seconds 2] [--rounds 5] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2

from bench.child_node import child_node
from bench.registry_lookup import _load, _organism
from clients.credentials import aio_credentials_interceptors
from clients.token_credentials import OrganismCredentials
from registry.kernel.database import open_engine, upgrade

AUDITED = "interops.bench.v1.BenchService"
UNAUDITED = "interops.bench.v1.UnauditedBenchService"


def _empty(service: str) -> grpc.GenericRpcHandler:  # type: ignore[type-arg]
    async def empty(request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    handler = grpc.unary_unary_rpc_method_handler(
        empty, request_deserializer=empty_pb2.Empty.FromString,
        response_serializer=empty_pb2.Empty.SerializeToString,
    )  # fmt: skip
    return grpc.method_handlers_generic_handler(service, {"Empty": handler})


async def _serve(data_dir: Path) -> None:
    from server.config import Settings
    from server.node import Node

    settings = Settings(grpc_address="127.0.0.1:0", data_dir=data_dir, tracing_exporter="none",
                        log_level="WARNING")  # fmt: skip
    node = Node(
        settings, extra_handlers=[_empty(AUDITED), _empty(UNAUDITED)],
        extra_rights={AUDITED: "registry.read", UNAUDITED: "registry.read"},
        extra_unaudited=[UNAUDITED],
    )  # fmt: skip
    port = await node.start()
    print(f"port {port}", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await node.stop(grace=0)


async def _measure(port: int, signer: Any, seconds: float, rounds: int, concurrency: int) -> None:
    address = f"127.0.0.1:{port}"
    credentials = OrganismCredentials(address, signer, [AUDITED, UNAUDITED])
    interceptors = aio_credentials_interceptors(credentials)
    async with grpc.aio.insecure_channel(address, interceptors=interceptors) as channel:
        calls = {
            name: channel.unary_unary(
                f"/{name}/Empty", request_serializer=empty_pb2.Empty.SerializeToString,
                response_deserializer=empty_pb2.Empty.FromString,
            )
            for name in (AUDITED, UNAUDITED)
        }  # fmt: skip
        best = {AUDITED: 0.0, UNAUDITED: 0.0}
        for call in calls.values():  # warm-up
            await _load(functools.partial(call, empty_pb2.Empty()), 1.0, concurrency)
        for _ in range(rounds):
            for name, call in calls.items():
                rate, _ = await _load(functools.partial(call, empty_pb2.Empty()), seconds,
                                      concurrency)  # fmt: skip
                best[name] = max(best[name], rate)
    print(f"without the journal: {best[UNAUDITED]:8,.0f} calls/s")
    print(f"audited:             {best[AUDITED]:8,.0f} calls/s")
    print(f"ratio audited / without: {best[AUDITED] / best[UNAUDITED]:.2f} (target >= 0.9)")


def main() -> None:
    """Starts a node in a child process and measures both twins."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        engine = open_engine(f"sqlite:///{data_dir.resolve() / 'interops.db'}")
        upgrade(engine)
        signer = _organism(engine)
        engine.dispose()
        with child_node("bench.audit_overhead", str(data_dir)) as (port,):
            asyncio.run(_measure(port, signer, args.seconds, args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
