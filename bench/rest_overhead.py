"""Benchmark: what the REST declination costs. GetEstablishment through the web adapter (HTTP,
JSON, then the same gRPC call to the node) as a ratio of the gRPC call made directly, on the
same node, with the same PORTAL chain held by a session key that proves every call (a fresh
proof each, as any caller must), at 64 concurrent callers; p50/p99 of both.

The node and its adapter run in their own process; the callers run here (grpc.aio and aiohttp:
httpx's async client does not hold 64 concurrent connections well), so client costs count
too, as they do for a caller of either door.

    python -m bench.rest_overhead [--seconds 5] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from interops.registry.v1 import registry_pb2 as pb
from interops.registry.v1 import registry_pb2_grpc

from bench.child_node import child_node
from bench.registry_lookup import _load, _summary
from registry.kernel.database import open_engine, upgrade
from registry.rcd.sirene_import import import_stock
from registry.rcd.sirene_synth import write_stock
from server.token.trust import node_key
from token_suite.chain import (
    Signer,
    Terms,
    grant,
    issue_root,
    session_holder,
    session_signer,
    sign_proof,
)
from token_suite.keys import key_id_of, public_bytes
from token_suite.profiles import PORTAL
from token_suite.wire import PROOF_METADATA, TOKEN_METADATA, to_text

REGISTRY = "interops.registry.v1.RegistryService"


async def _serve(data_dir: Path) -> None:
    from server.config import Settings
    from server.node import Node
    from server.web.app import WebServer

    settings = Settings(
        grpc_address="127.0.0.1:0", http_address="127.0.0.1:0", data_dir=data_dir,
        tracing_exporter="none", log_level="WARNING",
    )  # fmt: skip
    node = Node(settings)
    port = await node.start()
    web = WebServer(settings, port, node.rights, door_secret=node.door_secret)
    web_port = await web.start()
    print(f"ports {port} {web_port}", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    await web.stop()
    await node.stop(grace=0)


def _chain(data_dir: Path) -> tuple[bytes, Signer]:
    """A PORTAL chain with registry.read, signed with the node's issuer key and held by a new
    session key, with that key (which proves every call)."""
    key = node_key(data_dir / "keys" / "issuer.pem")  # the node uses the same file
    issuer = Signer("NET-ENTREPRISES", key_id_of(public_bytes(key)), key)
    session = session_signer(issuer.organism)
    terms = Terms(holder=session_holder(session), profile=PORTAL, audience=(REGISTRY,),
                  grants=grant("registry.read"), lifetime=3600)  # fmt: skip
    return issue_root(issuer, "organism:BENCH", terms), session


async def _measure(
    ports: list[int], held: tuple[bytes, Signer], sirets: list[str], args: Any
) -> None:
    rng = random.Random(1)
    hot = sirets[:1000]  # served from the node's cache: the doors' costs show
    token, session = held
    method = f"/{REGISTRY}/GetEstablishment"

    def proof() -> bytes:  # single use: a fresh one per call, on either door
        return sign_proof(session, method, REGISTRY, token)

    bearer = f"Bearer {to_text(token)}"
    url = f"http://127.0.0.1:{ports[1]}/v1/{REGISTRY}/GetEstablishment"
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{ports[0]}") as channel,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        stub = registry_pb2_grpc.RegistryServiceStub(channel)

        async def direct() -> Any:
            request = pb.GetEstablishmentRequest(siret=rng.choice(hot))
            metadata = [(TOKEN_METADATA, token), (PROOF_METADATA, proof())]
            return await stub.GetEstablishment(request, metadata=metadata)

        async def rest() -> Any:
            body = {"siret": rng.choice(hot)}
            headers = {"Authorization": bearer, "interops-proof": to_text(proof())}
            async with http.post(url, json=body, headers=headers) as answer:
                assert answer.status == 200, await answer.text()
                return await answer.json()

        for call in (direct, rest):  # warm-up: the cache and the connections
            await _load(call, 1.0, args.concurrency)
        direct_rate, direct_latencies = await _load(direct, args.seconds, args.concurrency)
        rest_rate, rest_latencies = await _load(rest, args.seconds, args.concurrency)
    print(_summary("gRPC", direct_rate, direct_latencies))
    print(_summary("REST", rest_rate, rest_latencies))
    print(f"ratio REST / gRPC throughput: {rest_rate / direct_rate:.2f}")


def main() -> None:
    """Loads a registry, starts the node and its adapter in a child process, measures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        files = write_stock(data_dir / "stock", 5_000, seed=1)
        engine = open_engine(f"sqlite:///{data_dir.resolve() / 'interops.db'}")
        upgrade(engine)
        import_stock(engine, files.establishments)
        engine.dispose()
        token = _chain(data_dir)
        with child_node("bench.rest_overhead", str(data_dir)) as ports:
            asyncio.run(_measure(ports, token, files.sirets, args))


if __name__ == "__main__":
    main()
