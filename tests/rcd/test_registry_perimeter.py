"""Every RegistryService read applies the caller's registry.read perimeter, through a real node,
on gRPC and on its REST declination: a declarant whose chain reads its own companies reads them,
and nothing of the others (not even whether they exist); lists, searches and the change feed
hold only what is inside, in full pages; a grant over everything reads everything."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from interops.registry.v1 import registry_pb2 as pb

from clients.client import Client
from clients.errors import NotFound, PermissionDenied
from clients.token_credentials import ChainCredentials
from registry.rcd.sirene_synth import StockFiles, siret_of
from registry.trust.declarant_store import DeclarantStore
from tests.running_node import RunningNode
from tests.running_web import RunningWeb
from token_suite.chain import Terms, grant, issue_root, session_holder, session_signer, sign_proof
from token_suite.profiles import PORTAL
from token_suite.wire import service_of, to_text

REGISTRY = "interops.registry.v1.RegistryService"
UNKNOWN_SIREN = "732829320"  # well formed, in no stock file
UNKNOWN_SIRET = "73282932000074"


def _companies_by_size(loaded: StockFiles) -> list[str]:
    """The SIRENs of the stock, those with the most establishments first."""
    counts = {siren: sum(s.startswith(siren) for s in loaded.sirets) for siren in loaded.sirens}
    return sorted(counts, key=lambda siren: (-counts[siren], siren))


@pytest.fixture(scope="module")
def world(loaded: StockFiles) -> dict[str, Any]:
    """A, the declarant's company; B, another company (three establishments at least each)."""
    a, b = _companies_by_size(loaded)[:2]
    inside = sorted(s for s in loaded.sirets if s.startswith(a))
    outside = sorted(s for s in loaded.sirets if s.startswith(b))
    assert len(inside) >= 3 and len(outside) >= 3
    return {"a": a, "b": b, "inside": inside, "outside": outside}


@pytest.fixture(scope="module")
def declarant(node: RunningNode, world: dict[str, Any]) -> ChainCredentials:
    """A declarant of A's head office whose account holds registry.read over A, signed in."""
    firm = world["inside"][0]
    store = DeclarantStore(node.node.engine)
    if not store.exists(firm, "Perimetre", "Alex"):
        store.create(firm, "Perimetre", "Alex", "a long password", [("registry.read", world["a"])])
    return node.sign_in(firm, "Perimetre", "Alex", "a long password", audience=[REGISTRY])


def _scoped(node: RunningNode, **perimeter: Any) -> ChainCredentials:
    """A PORTAL chain of the node's identity provider with registry.read over a perimeter."""
    issuer = node.node.trust.issuer
    session = session_signer(issuer.organism)
    terms = Terms(holder=session_holder(session), profile=PORTAL, audience=(REGISTRY,),
                  grants=grant("registry.read", **perimeter))  # fmt: skip
    return ChainCredentials(issue_root(issuer, "organism:OPERATOR", terms), session)


@pytest.fixture(scope="module")
def scoped(node: RunningNode, declarant: ChainCredentials) -> Iterator[Client]:
    """The declarant's client."""
    with Client(node.address, credentials=declarant, timeout=30) as connected:
        yield connected


@pytest.fixture(scope="module")
def by_sirets(node: RunningNode, world: dict[str, Any]) -> Iterator[Client]:
    """A caller whose perimeter names two of B's establishments (the first and the last) only."""
    outside = world["outside"]
    chain = _scoped(node, sirets=[outside[0], outside[-1]])
    with Client(node.address, credentials=chain, timeout=30) as connected:
        yield connected


def _refused(call: Callable[[], object]) -> None:
    with pytest.raises(PermissionDenied) as caught:
        call()
    assert caught.value.reason == "NOT_IN_YOUR_PERIMETER"


def test_get_establishment_reads_inside_and_none_of_three_outside(
    scoped: Client, world: dict[str, Any]
) -> None:
    for siret in world["inside"]:
        assert scoped.get_establishment(siret).siret == siret
    for siret in world["outside"][:3]:  # none of the three is read
        _refused(functools.partial(scoped.get_establishment, siret))
    with pytest.raises(NotFound):  # inside, unknown: the truth
        scoped.get_establishment(siret_of(world["a"], 9999))
    _refused(lambda: scoped.get_establishment(UNKNOWN_SIRET))  # outside: the same refusal


def test_get_company_reads_its_own_and_refuses_others_whether_they_exist_or_not(
    scoped: Client, by_sirets: Client, world: dict[str, Any]
) -> None:
    assert scoped.get_company(world["a"]).siren == world["a"]
    _refused(lambda: scoped.get_company(world["b"]))
    _refused(lambda: scoped.get_company(UNKNOWN_SIREN))
    # A perimeter naming some of a company's SIRETs covers the company they belong to.
    assert by_sirets.get_company(world["b"]).siren == world["b"]
    _refused(lambda: by_sirets.get_company(world["a"]))


def test_batch_get_answers_inside_and_lists_outside_apart_without_reading_it(
    scoped: Client, client: Client, world: dict[str, Any]
) -> None:
    unknown_inside = siret_of(world["a"], 9999)
    outside = [*world["outside"][:3], UNKNOWN_SIRET]
    asked = [world["outside"][0], world["inside"][1], unknown_inside, *outside, world["inside"][0]]
    answer = scoped.batch_get_establishments(asked)
    assert [e.siret for e in answer.establishments] == [world["inside"][1], world["inside"][0]]
    assert list(answer.missing_sirets) == [unknown_inside]
    # An existing and an unknown SIRET outside are told apart by nothing.
    assert list(answer.outside_perimeter_sirets) == outside
    everything = client.batch_get_establishments(asked)
    assert len(everything.establishments) == 5 and not everything.outside_perimeter_sirets
    assert list(everything.missing_sirets) == [unknown_inside, UNKNOWN_SIRET]
    alone = scoped.batch_get_establishments(world["outside"][:3])
    assert not alone.establishments and not alone.missing_sirets
    assert list(alone.outside_perimeter_sirets) == world["outside"][:3]


def _pages(call: Callable[[str], Any], field: str) -> list[list[Any]]:
    """Every page of a listing, following its tokens."""
    pages, token = [], ""
    while True:
        answer = call(token)
        pages.append(list(getattr(answer, field)))
        token = answer.next_page_token
        if not token:
            return pages


def test_list_establishments_of_a_company_inside_pages_through_all_of_it(
    scoped: Client, world: dict[str, Any]
) -> None:
    listed = [e.siret for e in scoped.list_establishments(world["a"], page_size=2)]
    assert listed == world["inside"]
    _refused(lambda: list(scoped.list_establishments(world["b"])))
    _refused(lambda: list(scoped.list_establishments(UNKNOWN_SIREN)))


def test_list_establishments_named_by_siret_holds_only_them_in_full_pages(
    by_sirets: Client, client: Client, world: dict[str, Any]
) -> None:
    outside = world["outside"]
    pages = _pages(
        lambda token: by_sirets.registry.ListEstablishments(
            pb.ListEstablishmentsRequest(siren=world["b"], page_size=1, page_token=token)
        ),
        "establishments",
    )
    assert [[e.siret for e in page] for page in pages] == [[outside[0]], [outside[-1]]]
    # The token of a caller over everything, resuming after the first: still only the named.
    first = client.registry.ListEstablishments(
        pb.ListEstablishmentsRequest(siren=world["b"], page_size=1)
    )
    assert first.establishments[0].siret == outside[0] and first.next_page_token
    rest = by_sirets.registry.ListEstablishments(
        pb.ListEstablishmentsRequest(siren=world["b"], page_token=first.next_page_token)
    )
    assert [e.siret for e in rest.establishments] == [outside[-1]]
    _refused(lambda: list(by_sirets.list_establishments(world["a"])))


def test_search_holds_only_companies_inside_in_full_pages(
    node: RunningNode, client: Client, loaded: StockFiles
) -> None:
    cabinets = [c.siren for c in client.search_companies("Cabinet", page_size=50)]
    assert len(cabinets) > 9
    chosen = cabinets[1::3][:4]  # every third, so that others lie between them
    chain = _scoped(node, sirens=chosen[:3], sirets=[siret_of(chosen[3], 1)])
    with Client(node.address, credentials=chain, timeout=30) as caller:
        pages = _pages(
            lambda token: caller.registry.SearchCompanies(
                pb.SearchCompaniesRequest(name_prefix="Cabinet", page_size=3, page_token=token)
            ),
            "companies",
        )
        assert [len(page) for page in pages] == [3, 1]
        assert [c.siren for page in pages for c in page] == chosen
        # The token of a caller over everything, resuming among the others: still only inside.
        wide = client.registry.SearchCompanies(
            pb.SearchCompaniesRequest(name_prefix="Cabinet", page_size=3)
        )
        resumed = caller.registry.SearchCompanies(
            pb.SearchCompaniesRequest(name_prefix="Cabinet", page_token=wide.next_page_token)
        )
        assert [c.siren for c in resumed.companies] == chosen[1:]
        other = client.get_company(cabinets[0]).name
        assert cabinets[0] in [c.siren for c in client.search_companies(other)]
        assert not {c.siren for c in caller.search_companies(other)} - set(chosen)


def test_validate_siret_checks_the_format_of_any_and_reads_only_inside(
    scoped: Client, world: dict[str, Any]
) -> None:
    answer = scoped.validate_siret(world["inside"][0])
    assert answer.establishment.siret == world["inside"][0]
    assert scoped.validate_siret("10000000900018").problem == pb.SIRET_PROBLEM_BAD_CHECKSUM
    for siret in [*world["outside"][:3], UNKNOWN_SIRET]:
        _refused(functools.partial(scoped.validate_siret, siret))


def test_the_change_feed_holds_only_what_is_inside(
    scoped: Client, by_sirets: Client, client: Client, world: dict[str, Any]
) -> None:
    def seen(caller: Client) -> tuple[set[str], list[str]]:
        changes = list(caller.watch_changes(0))
        return (
            {c.company.siren for c in changes if c.WhichOneof("entity") == "company"},
            sorted(c.establishment.siret for c in changes
                   if c.WhichOneof("entity") == "establishment"),
        )  # fmt: skip

    assert seen(scoped) == ({world["a"]}, world["inside"])
    assert seen(by_sirets) == ({world["b"]}, [world["outside"][0], world["outside"][-1]])
    companies, establishments = seen(client)
    assert {world["a"], world["b"]} < companies
    assert set(world["inside"] + world["outside"]) < set(establishments)


def test_a_grant_over_everything_reads_everything(
    client: Client, loaded: StockFiles, world: dict[str, Any]
) -> None:
    for siret in world["outside"][:3]:
        assert client.get_establishment(siret).siret == siret
    assert client.get_company(world["b"]).siren == world["b"]
    assert [e.siret for e in client.list_establishments(world["b"])] == world["outside"]
    assert client.validate_siret(world["outside"][0]).establishment.siret == world["outside"][0]


@pytest.fixture(scope="module")
def web(node: RunningNode, loaded: StockFiles) -> Iterator[RunningWeb]:
    running = RunningWeb(node)
    yield running
    running.stop()


def _rest(web: RunningWeb, chain: ChainCredentials, method: str, body: dict[str, Any]) -> Any:
    path = f"/v1/{REGISTRY}/{method}"
    grpc_method = f"/{REGISTRY}/{method}"
    assert chain.holder is not None
    proof = sign_proof(chain.holder, grpc_method, service_of(grpc_method), chain.token)
    headers = {"Authorization": f"Bearer {to_text(chain.token)}",
               "interops-proof": to_text(proof)}  # fmt: skip
    return httpx.post(web.url + path, json=body, headers=headers, timeout=30)


def test_the_rest_declination_refuses_the_same_way(
    web: RunningWeb, declarant: ChainCredentials, client: Client, world: dict[str, Any]
) -> None:
    inside, outside = world["inside"][0], world["outside"][0]
    answer = _rest(web, declarant, "GetEstablishment", {"siret": inside})
    assert answer.status_code == 200 and answer.json()["establishment"]["siret"] == inside
    refusals = [
        ("GetEstablishment", {"siret": outside}),
        ("GetEstablishment", {"siret": UNKNOWN_SIRET}),
        ("GetCompany", {"siren": world["b"]}),
        ("ListEstablishments", {"siren": world["b"]}),
        ("ValidateSiret", {"siret": outside}),
    ]
    for method, body in refusals:
        refused = _rest(web, declarant, method, body)
        assert refused.status_code == 403, (method, refused.text)
        reasons = [d.get("reason") for d in refused.json()["details"]]
        assert "NOT_IN_YOUR_PERIMETER" in reasons, (method, reasons)
    batch = _rest(web, declarant, "BatchGetEstablishments", {"sirets": [inside, *world["outside"]]})
    assert batch.status_code == 200, batch.text
    assert [e["siret"] for e in batch.json()["establishments"]] == [inside]
    assert batch.json()["outsidePerimeterSirets"] == world["outside"]
    for siren, found in ((world["a"], [world["a"]]), (world["b"], [])):
        name = client.get_company(siren).name
        search = _rest(web, declarant, "SearchCompanies", {"namePrefix": name, "pageSize": 1000})
        assert search.status_code == 200, search.text
        assert [c["siren"] for c in search.json().get("companies", [])] == found
