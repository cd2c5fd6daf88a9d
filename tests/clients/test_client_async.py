"""The asyncio client: the same calls, awaited, raising the same typed errors; and the
credentials slot adding metadata to every call."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import event

from clients.client import AsyncClient, Client
from clients.credentials import Metadata
from clients.errors import InvalidArgument, NotFound
from clients.token_credentials import OrganismCredentials
from registry.rcd.sirene_synth import StockFiles
from tests.running_node import RunningNode


def test_async_calls_and_errors(node: RunningNode, loaded: StockFiles) -> None:
    async def scenario() -> None:
        async with AsyncClient(node.address, credentials=node.credentials()) as client:
            establishment = await client.get_establishment(loaded.sirets[0])
            assert establishment.siret == loaded.sirets[0]
            company = await client.get_company(loaded.sirens[0])
            assert company.siren == loaded.sirens[0]
            batch = await client.batch_get_establishments(loaded.sirets[:3])
            assert len(batch.establishments) == 3
            assert (await client.validate_siret(loaded.sirets[0])).valid
            changes = [c async for c in client.watch_changes(0)]
            assert len(changes) == len(loaded.sirets) + len(loaded.sirens)
            siren = loaded.sirets[0][:9]
            listed = [e.siret async for e in client.list_establishments(siren, page_size=1)]
            assert listed == sorted(s for s in loaded.sirets if s.startswith(siren))
            found = [c.siren async for c in client.search_companies("cabinet dupont", page_size=1)]
            assert found == [loaded.sirens[0]]
            started = await client.import_stock(loaded.companies, request_id="async-retry")
            final = [o async for o in client.watch_operation(started.name)][-1]
            assert final.done and not final.error.message
            assert (await client.get_operation(started.name)).name == started.name
            with pytest.raises(NotFound):
                await client.get_establishment("73282932000074")
            with pytest.raises(InvalidArgument) as caught:
                await client.get_establishment("7328293200007")
            assert caught.value.violations[0].field == "siret"

    asyncio.run(scenario())


class _Recorded:
    """Credentials that remember the methods they were asked for, around real ones."""

    def __init__(self, inner: OrganismCredentials) -> None:
        self.inner = inner
        self.methods: list[str] = []

    def metadata(self, method: str) -> Metadata:
        self.methods.append(method)
        return self.inner.metadata(method)


def test_the_credentials_slot_is_called_for_every_call(node: RunningNode) -> None:
    recorded = _Recorded(node.credentials())
    with Client(node.address, credentials=recorded) as client:
        assert client.check_health()
        list(client.watch_changes(0))
    assert recorded.methods == [
        "/grpc.health.v1.Health/Check",
        "/interops.registry.v1.RegistryService/WatchChanges",
    ]

    async def scenario() -> list[str]:
        async_recorded = _Recorded(node.credentials())
        async with AsyncClient(node.address, credentials=async_recorded) as client:
            with pytest.raises(NotFound):
                await client.get_company("732829320")
        return async_recorded.methods

    assert asyncio.run(scenario()) == ["/interops.registry.v1.RegistryService/GetCompany"]


def test_concurrent_misses_are_read_together_and_each_gets_its_answer(
    node: RunningNode, loaded: StockFiles
) -> None:
    unknown = "73282932000074"  # well formed, not in the registry
    wanted = [*loaded.sirets[-60:], unknown]
    reads: list[str] = []

    def count_reads(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM establishments" in statement:
            reads.append(statement)
            # A slow disk: calls that miss meanwhile must wait for the next read, not each
            # start one (without this, how many coalesce depends on the machine's speed).
            time.sleep(0.02)

    event.listen(node.node.engine, "before_cursor_execute", count_reads)

    async def scenario() -> list[str | None]:
        async with AsyncClient(node.address, credentials=node.credentials()) as client:

            async def one(siret: str) -> str | None:
                try:
                    return (await client.get_establishment(siret)).siret
                except NotFound:
                    return None

            return await asyncio.gather(*(one(siret) for siret in wanted))

    try:
        answers = asyncio.run(scenario())
    finally:
        event.remove(node.node.engine, "before_cursor_execute", count_reads)
    assert answers == [*loaded.sirets[-60:], None]
    assert 1 <= len(reads) < len(wanted) // 2  # misses of concurrent calls share reads
