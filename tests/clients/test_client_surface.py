"""One client surface: every RPC of the contracts is a call of both `Client` and `AsyncClient`,
under its snake_case name, built from the same definition; and calls answer the same through
both against a real node."""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any

import pytest
from interops.token.v1 import token_pb2, token_service_pb2

from clients.call_table import CallTable
from clients.calls import Call, ItemsCall, interops_services
from clients.client import AsyncClient, Client
from clients.errors import InteropsError, Unauthenticated
from registry.rcd.sirene_synth import StockFiles
from tests.running_node import RunningNode

UNKNOWN_SIRET = "73282932000074"  # well formed, not in the registry


def snake_case(name: str) -> str:
    """GetCompany -> get_company."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


RPCS = [
    (service.full_name, method) for service in interops_services() for method in service.methods
]
TABLE = {name: entry for name, entry in vars(CallTable).items() if not name.startswith("_")}


def test_the_contracts_are_found() -> None:
    services = {service for service, _ in RPCS}
    assert "interops.registry.v1.RegistryService" in services
    assert "interops.habilitation.v1.HabilitationService" in services
    assert len(RPCS) >= 60


@pytest.mark.parametrize(("service", "method"), RPCS, ids=[m.full_name for _, m in RPCS])
def test_every_rpc_is_a_call_of_both_clients(service: str, method: Any) -> None:
    name = snake_case(method.name)
    entry = TABLE.get(name)
    assert isinstance(entry, Call | ItemsCall), f"{service}/{method.name} has no call {name}"
    assert getattr(Client, name) is entry and getattr(AsyncClient, name) is entry
    if "next_page_token" in method.output_type.fields_by_name:
        assert isinstance(entry, ItemsCall), f"{name} pages: it answers item after item"


def test_both_clients_offer_each_call_with_the_same_signature() -> None:
    async def compare() -> None:
        with Client("127.0.0.1:1") as client:
            async with AsyncClient("127.0.0.1:1") as async_client:
                for name, entry in TABLE.items():
                    sync_call, async_call = getattr(client, name), getattr(async_client, name)
                    assert inspect.signature(sync_call) == inspect.signature(async_call), name
                    assert inspect.iscoroutinefunction(async_call) == isinstance(entry, Call)

    asyncio.run(compare())


def _outcome(call: Any) -> Any:
    """What a sync call gives: its answer, or the error's kind and reason."""
    try:
        return call()
    except InteropsError as error:
        return type(error), error.code, error.reason


async def _async_outcome(call: Any) -> Any:
    try:
        return await call()
    except InteropsError as error:
        return type(error), error.code, error.reason


def test_calls_answer_the_same_through_both_clients(node: RunningNode, loaded: StockFiles) -> None:
    siren = loaded.sirets[0][:9]
    proofless = token_service_pb2.IssueTokenRequest(  # a plain call of the table
        organism=token_service_pb2.OrganismSignIn(organism="OPERATOR"),
        profile=token_pb2.PROFILE_APPLICATION, audience=["interops.registry.v1.RegistryService"],
    )  # fmt: skip
    with Client(node.address, credentials=node.credentials()) as client:
        expected = [
            _outcome(lambda: client.get_company(loaded.sirens[0])),
            _outcome(lambda: client.get_establishment(UNKNOWN_SIRET)),
            _outcome(lambda: client.batch_get_establishments(loaded.sirets[:3])),
            _outcome(lambda: client.validate_siret(loaded.sirets[0][:13])),
            _outcome(lambda: list(client.list_establishments(siren, page_size=1))),
            _outcome(lambda: list(client.search_companies("cabinet dupont", page_size=1))),
            _outcome(lambda: len(list(client.watch_changes(0)))),
            _outcome(lambda: client.get_operation("operations/unknown")),
            _outcome(client.check_health),
            _outcome(lambda: client.issue_token(proofless)),
        ]

    async def through_async() -> list[Any]:
        async with AsyncClient(node.address, credentials=node.credentials()) as client:
            return [
                await _async_outcome(lambda: client.get_company(loaded.sirens[0])),
                await _async_outcome(lambda: client.get_establishment(UNKNOWN_SIRET)),
                await _async_outcome(lambda: client.batch_get_establishments(loaded.sirets[:3])),
                await _async_outcome(lambda: client.validate_siret(loaded.sirets[0][:13])),
                [e async for e in client.list_establishments(siren, page_size=1)],
                [c async for c in client.search_companies("cabinet dupont", page_size=1)],
                len([c async for c in client.watch_changes(0)]),
                await _async_outcome(lambda: client.get_operation("operations/unknown")),
                await _async_outcome(client.check_health),
                await _async_outcome(lambda: client.issue_token(proofless)),
            ]

    answers = asyncio.run(through_async())
    assert answers == expected
    assert expected[1][2] == "ESTABLISHMENT_NOT_FOUND"
    assert expected[-1][0] is Unauthenticated  # the organism's proof is not for IssueToken
    assert expected[4] and expected[5] and expected[6] and expected[8] is True
    # An error says its reason once, though the node's message starts with it too.
    with (
        Client(node.address, credentials=node.credentials()) as client,
        pytest.raises(Unauthenticated) as refused,
    ):
        client.issue_token(proofless)
    assert refused.value.reason and str(refused.value).count(refused.value.reason) == 1


def test_an_upload_and_its_operation_through_both_clients(
    node: RunningNode, loaded: StockFiles
) -> None:
    with Client(node.address, credentials=node.credentials()) as client:
        started = client.import_stock(loaded.companies, request_id="surface-sync")
        final = list(client.watch_operation(started.name))[-1]

    async def through_async() -> tuple[Any, Any]:
        async with AsyncClient(node.address, credentials=node.credentials()) as client:
            started = await client.import_stock(loaded.companies, request_id="surface-async")
            final = [o async for o in client.watch_operation(started.name)][-1]
            return final, await client.get_operation(started.name)

    async_final, async_state = asyncio.run(through_async())
    assert final.done and async_final.done and async_state.done
    assert not final.error.message and not async_final.error.message
    assert async_final.name != final.name
