"""Every RegistryService read through a real channel, on each storage backend."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from interops.registry.v1 import registry_pb2 as pb

from clients.client import Client
from clients.errors import InvalidArgument, NotFound
from registry.rcd.sirene_synth import StockFiles
from tests.running_node import RunningNode


def test_get_establishment_returns_what_the_stock_file_says(
    client: Client, loaded: StockFiles
) -> None:
    siret = loaded.sirets[0]
    establishment = client.get_establishment(siret)
    assert establishment.siret == siret
    assert establishment.siren == siret[:9] and establishment.nic == siret[9:]
    assert establishment.head_office
    assert establishment.state == pb.ADMINISTRATIVE_STATE_ACTIVE
    assert establishment.address.postal_code and establishment.address.city
    assert establishment.creation_date.year >= 1950


def test_get_company_returns_the_firm(client: Client, loaded: StockFiles) -> None:
    company = client.get_company(loaded.sirens[0])
    assert company.name == "CABINET DUPONT EXPERTISE COMPTABLE"
    assert company.naf_code == "69.20Z"
    assert company.head_office_nic == loaded.sirets[0][9:]


def test_unknown_identifiers_are_not_found_with_a_reason(
    client: Client, loaded: StockFiles
) -> None:
    with pytest.raises(NotFound) as caught:
        client.get_establishment("73282932000074")
    assert caught.value.reason == "ESTABLISHMENT_NOT_FOUND"
    with pytest.raises(NotFound) as company:
        client.get_company("732829320")
    assert company.value.reason == "COMPANY_NOT_FOUND"


def test_batch_get_returns_found_in_order_and_lists_missing(
    client: Client, loaded: StockFiles
) -> None:
    asked = [loaded.sirets[5], "73282932000074", loaded.sirets[2], loaded.sirets[5]]
    answer = client.batch_get_establishments(asked)
    assert [e.siret for e in answer.establishments] == [loaded.sirets[5], loaded.sirets[2]]
    assert list(answer.missing_sirets) == ["73282932000074"]


def test_batch_get_takes_a_thousand(client: Client, loaded: StockFiles) -> None:
    asked = (loaded.sirets * 2)[:1000]
    answer = client.batch_get_establishments(asked)
    assert len(answer.establishments) == len(set(asked))


def test_list_establishments_pages_through_all_of_a_company(
    client: Client, loaded: StockFiles
) -> None:
    siren = max(set(loaded.sirens), key=lambda s: sum(x.startswith(s) for x in loaded.sirets))
    expected = sorted(s for s in loaded.sirets if s.startswith(siren))
    assert len(expected) >= 3
    listed = [e.siret for e in client.list_establishments(siren, page_size=2)]
    assert listed == expected
    active = [e for e in client.list_establishments(siren, active_only=True)]
    assert all(e.state == pb.ADMINISTRATIVE_STATE_ACTIVE for e in active)


def test_search_ignores_case_and_accents_and_pages(client: Client, loaded: StockFiles) -> None:
    found = list(client.search_companies("cabinet dupont expértise", page_size=1))
    assert [c.siren for c in found] == [loaded.sirens[0]]
    cabinets = list(client.search_companies("Cabinet", page_size=3))
    assert len(cabinets) > 3
    names = [c.name for c in cabinets]
    assert all(name.startswith("CABINET") for name in names)
    assert len({c.siren for c in cabinets}) == len(cabinets)


def test_la_poste_establishments_are_valid_by_their_own_rule(
    client: Client, loaded: StockFiles
) -> None:
    la_poste = [s for s in loaded.sirets if s.startswith("356000000")]
    assert la_poste
    answer = client.validate_siret(la_poste[0])
    assert answer.valid, answer.message
    assert answer.establishment.siret == la_poste[0]


@pytest.mark.parametrize(
    ("siret", "problem"),
    [
        ("1234", pb.SIRET_PROBLEM_WRONG_LENGTH),
        ("1000000090001A", pb.SIRET_PROBLEM_NOT_DIGITS),
        ("١٠٠٠٠٠٠٠٩٠٠٠١٧", pb.SIRET_PROBLEM_NOT_DIGITS),
        ("10000000900018", pb.SIRET_PROBLEM_BAD_CHECKSUM),
        ("35600000000011", pb.SIRET_PROBLEM_BAD_CHECKSUM),
        ("73282932000074", pb.SIRET_PROBLEM_UNKNOWN),
    ],
)
def test_validate_siret_says_precisely_why(
    client: Client, loaded: StockFiles, siret: str, problem: int
) -> None:
    answer = client.validate_siret(siret)
    assert not answer.valid
    assert answer.problem == problem
    assert answer.message


def test_validate_siret_reports_a_closed_establishment(client: Client, loaded: StockFiles) -> None:
    closed = [
        e.siret
        for e in client.batch_get_establishments(loaded.sirets[:1000]).establishments
        if e.state == pb.ADMINISTRATIVE_STATE_CEASED
    ]
    assert closed
    answer = client.validate_siret(closed[0])
    assert answer.problem == pb.SIRET_PROBLEM_CEASED and not answer.valid


BAD_INPUTS = [
    ("GetEstablishment", pb.GetEstablishmentRequest(siret=""), "siret"),
    ("GetEstablishment", pb.GetEstablishmentRequest(siret="123"), "siret"),
    ("GetEstablishment", pb.GetEstablishmentRequest(siret="1000000090001A"), "siret"),
    ("GetEstablishment", pb.GetEstablishmentRequest(siret="١٠٠٠٠٠٠٠٩٠٠٠١٧"), "siret"),
    ("GetEstablishment", pb.GetEstablishmentRequest(siret="10000000900018"), "siret"),
    ("GetEstablishment", pb.GetEstablishmentRequest(siret="1" * 10_000), "siret"),
    ("GetCompany", pb.GetCompanyRequest(siren="10000000A"), "siren"),
    ("GetCompany", pb.GetCompanyRequest(siren="100000008"), "siren"),
    ("BatchGetEstablishments", pb.BatchGetEstablishmentsRequest(), "sirets"),
    (
        "BatchGetEstablishments",
        pb.BatchGetEstablishmentsRequest(sirets=["10000000900017"] * 1001),
        "sirets",
    ),
    (
        "BatchGetEstablishments",
        pb.BatchGetEstablishmentsRequest(sirets=["10000000900017", "abc"]),
        "sirets[1]",
    ),
    (
        "BatchGetEstablishments",
        pb.BatchGetEstablishmentsRequest(sirets=["10000000900017", "10000000900018"]),
        "sirets[1]",
    ),
    (
        "ListEstablishments",
        pb.ListEstablishmentsRequest(siren="100000009", page_size=-1),
        "page_size",
    ),
    (
        "ListEstablishments",
        pb.ListEstablishmentsRequest(siren="100000009", page_size=1001),
        "page_size",
    ),
    (
        "ListEstablishments",
        pb.ListEstablishmentsRequest(siren="100000009", page_token="not-a-token"),
        "page_token",
    ),
    ("SearchCompanies", pb.SearchCompaniesRequest(name_prefix="C"), "name_prefix"),
    ("SearchCompanies", pb.SearchCompaniesRequest(name_prefix="--"), "name_prefix"),
    ("SearchCompanies", pb.SearchCompaniesRequest(name_prefix="x" * 101), "name_prefix"),
    ("ValidateSiret", pb.ValidateSiretRequest(siret=""), "siret"),
    ("ValidateSiret", pb.ValidateSiretRequest(siret="1" * 65), "siret"),
    ("WatchChanges", pb.WatchChangesRequest(after_position=-1), "after_position"),
]


@pytest.mark.parametrize(("method", "request_message", "field"), BAD_INPUTS)
def test_bad_input_is_invalid_argument_naming_the_field(
    client: Client, method: str, request_message: object, field: str
) -> None:
    call = getattr(client.registry, method)
    streaming = method == "WatchChanges"
    with pytest.raises(InvalidArgument) as caught:
        list(client._stream(call, request_message)) if streaming else client._unary(
            call, request_message
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [v.field for v in caught.value.violations]
    assert caught.value.domain == "interops"


def test_a_page_token_of_another_query_is_refused(client: Client, loaded: StockFiles) -> None:
    first = client.registry.SearchCompanies(
        pb.SearchCompaniesRequest(name_prefix="CA", page_size=1)
    )
    assert first.next_page_token
    with pytest.raises(InvalidArgument) as caught:
        client._unary(
            client.registry.SearchCompanies,
            pb.SearchCompaniesRequest(name_prefix="TR", page_token=first.next_page_token),
        )
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_the_change_feed_replays_everything_then_resumes(
    client: Client, loaded: StockFiles, node: RunningNode
) -> None:
    changes = list(client.watch_changes(0))
    sirets = {c.establishment.siret for c in changes if c.WhichOneof("entity") == "establishment"}
    sirens = {c.company.siren for c in changes if c.WhichOneof("entity") == "company"}
    assert sirets == set(loaded.sirets) and sirens == set(loaded.sirens)
    positions = [c.position for c in changes]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    middle = positions[len(positions) // 2]
    assert [c.position for c in client.watch_changes(middle)] == [
        p for p in positions if p > middle
    ]
    assert list(client.watch_changes(positions[-1])) == []


def test_a_cached_establishment_is_refreshed_once_the_feed_shows_its_change(
    client: Client, loaded: StockFiles, node: RunningNode, tmp_path: Path
) -> None:
    siret = loaded.sirets[0]
    before = client.get_establishment(siret)  # now in the node's cache
    assert client.get_establishment(siret) == before
    lines = loaded.establishments.read_text().splitlines()
    header, row = (
        lines[0].split(","),
        next(line.split(",") for line in lines[1:] if line.split(",")[2] == siret),
    )
    row[header.index("enseigne1Etablissement")] = "RENAMED"
    changed = tmp_path / "StockEtablissement.csv"
    changed.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    operation = client.import_stock(changed)
    assert list(client.watch_operation(operation.name))[-1].done
    deadline = time.monotonic() + 5
    while client.get_establishment(siret).name != "RENAMED":
        assert time.monotonic() < deadline, "the cache kept the old establishment"
        time.sleep(0.05)
