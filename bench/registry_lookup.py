"""Benchmark: GetEstablishment throughput as a ratio of an empty unary handler hosted by the same
node (same interceptors: tracing, validation, errors), and p50/p99 latency, at 64 concurrent
callers. Target: ratio >= 0.6.

Two workloads: SIRETs drawn uniformly from the whole registry (mostly misses of the node's
establishment cache: a database read each), and a hot set of 1,000 SIRETs (served from the cache).

Every call is authenticated as an organism's system would be: an APPLICATION token chain
(verified from the node's prefix cache) and a per-call proof of possession (one signature
verification, and the proof's nonce recorded as spent), on both the empty handler and
GetEstablishment.

The node runs in its own process (a core of its own); the callers run here with grpc.aio.

    python -m bench.registry_lookup [--seconds 5] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2
from interops.registry.v1 import registry_pb2 as pb
from interops.registry.v1 import registry_pb2_grpc
from sqlalchemy import Engine

from bench.child_node import child_node
from clients.credentials import aio_credentials_interceptors
from clients.token_credentials import OrganismCredentials
from registry.kernel.database import open_engine, upgrade
from registry.rcd.sirene_import import import_stock
from registry.rcd.sirene_synth import write_stock
from registry.trust.directory_store import DirectoryStore
from token_suite.chain import Signer
from token_suite.keys import generate, key_id_of, public_bytes

EMPTY_METHOD = "/interops.bench.v1.BenchService/Empty"


def empty_service() -> grpc.GenericRpcHandler:  # type: ignore[type-arg]
    """A service with one unary method that does nothing: the floor of a call's cost."""

    async def empty(request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    return grpc.method_handlers_generic_handler(
        "interops.bench.v1.BenchService",
        {
            "Empty": grpc.unary_unary_rpc_method_handler(
                empty,
                request_deserializer=empty_pb2.Empty.FromString,
                response_serializer=empty_pb2.Empty.SerializeToString,
            )
        },
    )


async def _serve(data_dir: Path) -> None:
    from server.config import Settings
    from server.node import Node

    settings = Settings(
        grpc_address="127.0.0.1:0",
        data_dir=data_dir,
        tracing_exporter="none",
        log_level="WARNING",
    )
    bench_rights = {"interops.bench.v1.BenchService": "registry.read"}
    node = Node(settings, extra_handlers=[empty_service()], extra_rights=bench_rights)
    port = await node.start()
    print(f"port {port}", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    await node.stop(grace=0)


async def _load(
    call: Callable[[], Awaitable[Any]], seconds: float, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while (start := time.perf_counter()) < deadline:
            await call()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - start), latencies


def _summary(name: str, rate: float, latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    p50, p99 = cuts[49] * 1e3, cuts[98] * 1e3
    return f"{name:>17}: {rate:8,.0f} calls/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"


async def _measure(
    port: int, signer: Signer, sirets: list[str], seconds: float, concurrency: int
) -> None:
    address = f"127.0.0.1:{port}"
    credentials = OrganismCredentials(
        address, signer, ["interops.bench.v1.BenchService", "interops.registry.v1.RegistryService"]
    )
    interceptors = aio_credentials_interceptors(credentials)
    async with grpc.aio.insecure_channel(address, interceptors=interceptors) as channel:
        empty = channel.unary_unary(
            EMPTY_METHOD,
            request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=empty_pb2.Empty.FromString,
        )
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        rng = random.Random(1)

        hot = sirets[:1000]

        async def lookup() -> Any:
            return await stub.GetEstablishment(pb.GetEstablishmentRequest(siret=rng.choice(sirets)))

        async def hot_lookup() -> Any:
            return await stub.GetEstablishment(pb.GetEstablishmentRequest(siret=rng.choice(hot)))

        async def nothing() -> Any:
            return await empty(empty_pb2.Empty())

        await _load(nothing, 1.0, concurrency)  # warm-up
        await _load(lookup, 1.0, concurrency)
        floor, floor_latencies = await _load(nothing, seconds, concurrency)
        rate, latencies = await _load(lookup, seconds, concurrency)
        await _load(hot_lookup, 1.0, concurrency)  # fills the cache with the hot set
        hot_rate, hot_latencies = await _load(hot_lookup, seconds, concurrency)
    print(_summary("empty handler", floor, floor_latencies))
    print(_summary("GetEstablishment", rate, latencies) + "  (uniform over the registry)")
    print(_summary("GetEstablishment", hot_rate, hot_latencies) + "  (hot set of 1,000)")
    print(f"ratio GetEstablishment / empty handler, uniform: {rate / floor:.2f} (target >= 0.6)")
    print(
        f"ratio GetEstablishment / empty handler, hot set: {hot_rate / floor:.2f} (target >= 0.6)"
    )


def _organism(engine: Engine) -> Signer:
    """The calling organism, with a key and the read right, in the node's directory."""
    store = DirectoryStore(engine)
    store.add_organism("BENCH", "Benchmark organism", "URSSAF")
    store.grant("BENCH", "registry.read")
    key = generate()
    store.add_key("BENCH", public_bytes(key), valid_from=0)
    return Signer("BENCH", key_id_of(public_bytes(key)), key)


def main() -> None:
    """Loads a registry, starts the node in a child process, measures both calls."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--establishments", type=int, default=50_000)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        files = write_stock(data_dir / "stock", args.establishments, seed=1)
        engine = open_engine(f"sqlite:///{data_dir.resolve() / 'interops.db'}")
        upgrade(engine)
        import_stock(engine, files.establishments)
        signer = _organism(engine)
        engine.dispose()
        with child_node("bench.registry_lookup", str(data_dir)) as (port,):
            asyncio.run(_measure(port, signer, files.sirets, args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
