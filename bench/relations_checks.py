"""Benchmark: CheckDeclarationLink and CheckEmployment at national scale, p50/p99 under 64
concurrent callers, as a ratio of GetEstablishment measured in the same run on the same node.

The scale is the country's: 2 million establishments in the RCD, each declared by one of 20,000
firms (2 million declared links), and 20 million employment relations (ten per establishment),
every NIR sealed under the node's keyring and found by its keyed hash, on PostgreSQL. The data
is generated straight into the tables with COPY (secondary indexes built afterwards), in a
database of its own that is kept for the next run (--database names it; --drop removes it).

Calls are authenticated as an organism's system: an APPLICATION chain and a proof of possession
per call, on the three methods alike. The node runs in its own process.

    python -m bench.relations_checks [--establishments 2000000] [--per-establishment 10]
        [--seconds 10] [--concurrency 64] [--database interops_bench_relations]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
from interops.registry.v1 import registry_pb2 as pb
from interops.registry.v1 import registry_pb2_grpc
from interops.relations.v1 import relations_pb2 as rpb
from interops.relations.v1 import relations_pb2_grpc
from sqlalchemy import create_engine, make_url, text

from bench.child_node import child_node
from bench.registry_lookup import _load, _summary
from clients.credentials import aio_credentials_interceptors
from clients.token_credentials import OrganismCredentials
from registry.kernel.database import open_engine, upgrade
from registry.kernel.nir_keyring import NirKeyring
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.directory_store import DirectoryStore
from token_suite.chain import Signer
from token_suite.keys import generate, key_id_of, public_bytes

FIRMS = 20_000
SERVER = os.environ.get("INTEROPS_BENCH_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")  # fmt: skip
# Secondary indexes dropped while the rows are copied and built afterwards.
INDEXES = {
    "ix_employments_nir": "CREATE INDEX ix_employments_nir ON employments (nir_hash, siret)",
    "ix_employments_siret": "CREATE INDEX ix_employments_siret ON employments (siret, id)",
    "ix_declared_links_declared": "CREATE INDEX ix_declared_links_declared "
    "ON declared_links (declared_siret, declarant_siret)",
    "ix_establishments_position": "CREATE INDEX ix_establishments_position "
    "ON establishments (position)",
}


def establishment_siret(index: int) -> str:
    """The index-th establishment: four per company."""
    return siret_of(siren_at(index // 4), index % 4 + 1)


def firm_siret(index: int) -> str:
    """The firm that declares the index-th establishment."""
    return siret_of(siren_at(600_000 + index % FIRMS), 1)


def nir(index: int) -> str:
    """The index-th employee's NIR (13 characters, unique)."""
    return f"{1 + index % 2}{10 + index % 90:02d}{1 + index % 12:02d}{index:08d}"


def _generate(url: str, keyring: NirKeyring, establishments: int, per: int) -> None:
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        for name in INDEXES:
            connection.execute(f"DROP INDEX IF EXISTS {name}")
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY establishments (siret, name, naf_code, street_number, street_number_suffix, "
                "street_type, street_name, complement, postal_code, city, city_code, country, "
                "head_office, state, diffusion_restricted, row_hash, position) FROM STDIN"
            ) as copy,
        ):
            for index in range(establishments):
                copy.write_row((establishment_siret(index), "ETABLISSEMENT", "6201Z", "1", "",
                                "RUE", "DE LA PAIX", "", "75002", "PARIS", "75102", "",
                                index % 4 == 0, 1, False, index, index + 1))  # fmt: skip
        print(f"  {establishments:,} establishments in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY declared_links (declarant_siret, declared_siret, first_period, last_period, "
                "last_deposit, updated_at) FROM STDIN"
            ) as copy,
        ):
            for index in range(establishments):
                copy.write_row((firm_siret(index), establishment_siret(index), "202501",
                                "202512", "", 0))  # fmt: skip
        print(f"  {establishments:,} declared links in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY employments (siret, nir_hash, nir_key, nir_sealed, contract_start, "
                "contract_end, updated_at) FROM STDIN"
            ) as copy,
        ):
            for index in range(establishments):
                siret = establishment_siret(index)
                context = siret.encode()
                for number in range(index * per, (index + 1) * per):
                    key_id, sealed, digest = keyring.seal(nir(number), context)
                    copy.write_row((siret, digest, key_id, sealed, "20200101", "", 0))
        total = establishments * per
        print(f"  {total:,} employments sealed in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        for statement in INDEXES.values():
            connection.execute(statement)
        connection.execute("ANALYZE")
        print(f"  indexes and statistics in {time.perf_counter() - started:.0f} s")


def _database(name: str, drop: bool) -> tuple[str, bool]:
    """The bench database's URL, and whether it must be filled."""
    admin = create_engine(make_url(SERVER), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).scalar()
        if exists and drop:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            exists = None
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    if not exists:
        return url, True
    engine = create_engine(url)
    with engine.connect() as connection:
        filled = connection.execute(text("SELECT count(*) FROM employments")).scalar()
    engine.dispose()
    return url, not filled


async def _serve(url: str, data_dir: Path) -> None:
    from server.config import Settings
    from server.node import Node

    settings = Settings(grpc_address="127.0.0.1:0", data_dir=data_dir, database_url=url,
                        tracing_exporter="none", log_level="WARNING")  # fmt: skip
    node = Node(settings)
    port = await node.start()
    print(f"port {port}", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    await node.stop(grace=0)


async def _measure(port: int, signer: Signer, args: argparse.Namespace) -> None:
    address = f"127.0.0.1:{port}"
    audience = ["interops.registry.v1.RegistryService", "interops.relations.v1.RelationsService"]
    interceptors = aio_credentials_interceptors(OrganismCredentials(address, signer, audience))
    rng = random.Random(1)
    count, per = args.establishments, args.per_establishment
    async with grpc.aio.insecure_channel(address, interceptors=interceptors) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        relations = relations_pb2_grpc.RelationsServiceStub(channel)

        async def lookup() -> Any:
            siret = establishment_siret(rng.randrange(count))
            return await registry.GetEstablishment(pb.GetEstablishmentRequest(siret=siret))

        async def link() -> Any:
            index = rng.randrange(count)
            answer = await relations.CheckDeclarationLink(rpb.CheckDeclarationLinkRequest(
                declarant_siret=firm_siret(index), declared_siret=establishment_siret(index),
                period="202506"))  # fmt: skip
            assert answer.linked
            return answer

        async def employment() -> Any:
            number = rng.randrange(count * per)
            siret = establishment_siret(number // per)
            answer = await relations.CheckEmployment(
                rpb.CheckEmploymentRequest(siret=siret, nir=nir(number), date="20250601")
            )
            assert answer.employed
            return answer

        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "GetEstablishment": lookup, "CheckDeclarationLink": link,
            "CheckEmployment": employment,
        }  # fmt: skip
        for call in calls.values():  # warm-up
            await _load(call, 1.0, args.concurrency)
        results = {name: await _load(call, args.seconds, args.concurrency)
                   for name, call in calls.items()}  # fmt: skip
    base_rate, base = results["GetEstablishment"]
    for name, (rate, latencies) in results.items():
        print(_summary(name, rate, latencies))
    base_cuts = _cuts(base)
    for name in ("CheckDeclarationLink", "CheckEmployment"):
        rate, latencies = results[name]
        cuts = _cuts(latencies)
        print(f"ratio {name} / GetEstablishment: p50 {cuts[0] / base_cuts[0]:.2f}, "
              f"p99 {cuts[1] / base_cuts[1]:.2f}, throughput {rate / base_rate:.2f}")  # fmt: skip


def _caller(engine: Any) -> Signer:
    """The calling organism (kept from a previous run, with a new key), reading everywhere."""
    directory = DirectoryStore(engine)
    if "BENCH" not in {o.code for o in directory.snapshot(60).organisms}:
        directory.add_organism("BENCH", "Benchmark organism", "URSSAF")
        directory.grant("BENCH", "registry.read")
        directory.grant("BENCH", "relations.read")
    key = generate()
    directory.add_key("BENCH", public_bytes(key), valid_from=0)
    return Signer("BENCH", key_id_of(public_bytes(key)), key)


def _cuts(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]


def main() -> None:
    """Fills the database if needed, starts the node in a child process, measures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--establishments", type=int, default=2_000_000)
    parser.add_argument("--per-establishment", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database", default="interops_bench_relations")
    parser.add_argument("--drop", action="store_true", help="generate the data again")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve[0], Path(args.serve[1])))
        return
    database = f"{args.database}_{args.establishments}_{args.per_establishment}"
    url, fill = _database(database, args.drop)
    data_dir = Path(tempfile.gettempdir()) / database
    keyring = NirKeyring.load_or_create(data_dir / "keys" / "nir.keyring")
    if fill:
        total = args.establishments * args.per_establishment
        print(f"generating {args.establishments:,} establishments and {total:,} employments "
              f"in {database}")  # fmt: skip
        _generate(url, keyring, args.establishments, args.per_establishment)
    engine = open_engine(url)
    upgrade(engine)
    signer = _caller(engine)
    engine.dispose()
    with child_node("bench.relations_checks", url, str(data_dir)) as (port,):
        asyncio.run(_measure(port, signer, args))


if __name__ == "__main__":
    main()
