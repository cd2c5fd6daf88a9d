"""Links with periods on a real database: a firm's link to an establishment starts with the first
period it declares and ends when another firm declares it for a later period, or after
`idle_months` without a DSN; a firm reads only the employments it declared, only while its link
lasts; the takeover cuts the old firm's live chains; the old firm's later deposit is refused
unless the establishment's company gave it a mandate; portfolios hold only what a company may
hold; a declarant's token carries exactly what CheckAccess allows, in every state."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count, product
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from registry.dsn.revealed_relations import Employment
from registry.habilitation.access_decision import decide
from registry.habilitation.declarant_rights import declarant_rights
from registry.habilitation.declarative_services import MANDATED, SERVICES
from registry.habilitation.managed import taken_over
from registry.habilitation.store import HabilitationRefused, HabilitationStore
from registry.kernel.nir_keyring import NirKeyring
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.relations.store import Link, RelationsStore
from registry.trust.revocation_store import RevocationStore
from registry.trust.schema import revocations
from tests.registry_rows import in_registry, recent_period

NIR_OLD, NIR_NEW = "1850575123456", "2900175123457"
_COMPANIES = count(70, 4)


@dataclass(frozen=True)
class World:
    """Companies of one test: an old firm, a new firm, their client and another company."""

    old: str
    new: str
    client: str
    other: str


@pytest.fixture
def world(engine: Engine) -> World:
    first = next(_COMPANIES)
    found = World(*(siren_at(first + n) for n in range(4)))
    companies = (found.old, found.new, found.client, found.other)
    in_registry(engine, [siret_of(siren, n) for siren in companies for n in (1, 2)])
    return found


@pytest.fixture
def relations(engine: Engine, tmp_path: Path) -> RelationsStore:
    return RelationsStore(engine, NirKeyring.load_or_create(tmp_path / "nir.keyring"))


def _declare(store: RelationsStore, firm: str, client: str, months_ago: int, nir: str) -> None:
    """The firm's DSN for the client's first establishment, `months_ago` months back."""
    period = recent_period(months_ago)
    store.record_links([Link(siret_of(firm, 1), siret_of(client, 1), period, period, "d")])
    store.record_employments([Employment(siret_of(client, 1), nir, "20200101", "")],
                             (siret_of(firm, 1), period))  # fmt: skip


def _nirs(store: RelationsStore, client: str, declared_by: list[str] | None) -> set[str]:
    rows = store.employees(siret_of(client, 1), "19000101", "29991231", 100,
                           declared_by=declared_by)  # fmt: skip
    return {row.nir for row in rows}


def test_the_new_firms_first_dsn_ends_the_old_link(
    engine: Engine, world: World, relations: RelationsStore
) -> None:
    old, new, client = world.old, world.new, world.client
    for months_ago in (3, 2):
        _declare(relations, old, client, months_ago, NIR_OLD)
    assert relations.live_declarants(siret_of(client, 1)) == [siret_of(old, 1)]
    _declare(relations, new, client, 1, NIR_NEW)
    ended = relations.link(siret_of(old, 1), siret_of(client, 1))
    assert ended is not None and ended.ended_period == recent_period(1)
    assert not ended.live(relations.since())
    assert relations.live_declarants(siret_of(client, 1)) == [siret_of(new, 1)]
    assert relations.declared_by_company(old) == set()
    assert relations.declared_by_company(new) == {siret_of(client, 1)}
    # Each firm reads only the employments it declared; the organisms read all of them.
    assert _nirs(relations, client, [siret_of(new, 1)]) == {NIR_NEW}
    assert _nirs(relations, client, [siret_of(old, 1)]) == {NIR_OLD}
    assert _nirs(relations, client, None) == {NIR_OLD, NIR_NEW}
    assert relations.employed(siret_of(client, 1), NIR_OLD, "20250101",
                              [siret_of(new, 1)]) is None  # fmt: skip
    # A correction of an old month by the old firm does not revive its link.
    _declare(relations, old, client, 2, NIR_OLD)
    assert relations.live_declarants(siret_of(client, 1)) == [siret_of(new, 1)]


def test_the_takeover_cuts_the_old_firms_live_chains(
    engine: Engine, world: World, relations: RelationsStore
) -> None:
    old, new, client = world.old, world.new, world.client

    admins = HabilitationStore(engine)
    old_admin = admins.register_company(siret_of(old, 1), ("Old", "Admin"), "password 1")
    new_admin = admins.register_company(siret_of(new, 1), ("New", "Admin"), "password 2")
    cutoffs = RevocationStore(engine)
    before = (cutoffs.cutoff_of(f"declarant:{old_admin}"),
              cutoffs.cutoff_of(f"declarant:{new_admin}"))  # fmt: skip
    _declare(relations, old, client, 2, NIR_OLD)
    _declare(relations, new, client, 1, NIR_NEW)
    assert cutoffs.cutoff_of(f"declarant:{old_admin}") > before[0]
    assert cutoffs.cutoff_of(f"declarant:{new_admin}") == before[1]
    with engine.connect() as connection:  # once: a later DSN of the new firm cuts nothing more
        count = len(connection.execute(select(revocations.c.subject)).all())
    _declare(relations, new, client, 0, NIR_NEW)
    with engine.connect() as connection:
        assert len(connection.execute(select(revocations.c.subject)).all()) == count


def test_a_link_without_a_dsn_for_longer_than_the_idle_limit_ends(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    old, client = world.old, world.client
    keyring = NirKeyring.load_or_create(tmp_path / "nir.keyring")
    store = RelationsStore(engine, keyring, idle_months=3)
    _declare(store, old, client, 4, NIR_OLD)
    assert store.live_declarants(siret_of(client, 1)) == []
    assert store.declared_by_company(old) == set()
    assert RelationsStore(engine, keyring, idle_months=4).declared_by_company(old) == {
        siret_of(client, 1)
    }
    _declare(store, old, client, 3, NIR_OLD)  # a DSN within the limit: live again
    assert store.declared_by_company(old) == {siret_of(client, 1)}


def test_the_old_firms_later_deposit_is_refused_unless_mandated(
    engine: Engine, world: World, relations: RelationsStore
) -> None:
    old, new, client, other = world.old, world.new, world.client, world.other
    _declare(relations, old, client, 3, NIR_OLD)
    _declare(relations, new, client, 2, NIR_NEW)
    declared = [siret_of(client, 1)]
    with engine.connect() as connection:
        assert taken_over(connection, old, declared, recent_period(1)) == {
            siret_of(client, 1): recent_period(2)
        }
        assert taken_over(connection, old, declared, recent_period(2)) == {
            siret_of(client, 1): recent_period(2)
        }
        assert taken_over(connection, old, declared, recent_period(3)) == {}  # a correction
        assert taken_over(connection, new, declared, recent_period(1)) == {}
        assert taken_over(connection, other, declared, recent_period(1)) == {}  # a third firm
    admins = HabilitationStore(engine)
    client_admin = admins.register_company(siret_of(client, 1), ("Client", "Admin"), "password")
    with pytest.raises(HabilitationRefused) as foreign:
        admins.grant_mandate(client_admin, siret_of(other, 1), old)
    assert foreign.value.reason == "NOT_YOUR_COMPANY"
    with pytest.raises(HabilitationRefused) as unknown:  # a firm the registry does not know
        admins.grant_mandate(client_admin, siret_of(client, 1), "999999999")
    assert unknown.value.reason == "BAD_FIRM"
    assert admins.grant_mandate(client_admin, siret_of(client, 1), old)
    assert not admins.grant_mandate(client_admin, siret_of(client, 1), old)
    with engine.connect() as connection:
        assert taken_over(connection, old, declared, recent_period(1)) == {}
    # The old firm declares it again under the mandate: the new firm's link ends in turn.
    _declare(relations, old, client, 1, NIR_OLD)
    assert relations.live_declarants(siret_of(client, 1)) == [siret_of(old, 1)]
    assert admins.end_mandate(client_admin, siret_of(client, 1), old)
    assert not admins.end_mandate(client_admin, siret_of(client, 1), old)
    assert [(m.firm_siren, m.ended_at > 0) for m in admins.mandates_of(client)] == [(old, True)]


def test_portfolios_hold_own_declared_or_mandated_establishments_only(
    engine: Engine, world: World, relations: RelationsStore
) -> None:
    new, client, other = world.new, world.client, world.other
    admins = HabilitationStore(engine)
    firm = admins.register_company(siret_of(new, 1), ("Firm", "Admin"), "password")
    admins.create_portfolio(firm, "Clients")

    def add(siret: str) -> str:
        try:
            admins.change_portfolio(firm, "Clients", add=True, sirets=(siret,))
        except HabilitationRefused as refused:
            return refused.reason
        return "added"

    assert add(siret_of(new, 2)) == "added"  # its own
    assert add(siret_of(client, 1)) == "NOT_MANAGED"  # any SIRET of the registry: no
    _declare(relations, new, client, 1, NIR_NEW)
    assert add(siret_of(client, 1)) == "added"  # declared in DSN
    assert add(siret_of(other, 1)) == "NOT_MANAGED"
    other_admin = admins.register_company(siret_of(other, 1), ("Other", "Admin"), "password")
    admins.grant_mandate(other_admin, siret_of(other, 1), new)
    assert add(siret_of(other, 1)) == "added"  # the company's own explicit grant
    # A habilitation on what the company no longer manages is refused.
    admins.change_portfolio(firm, "Clients", add=True, services=("ATMP",))
    declarant = admins.create_declarant(firm, siret_of(new, 1), ("Decl", "Arant"), "password")
    admins.end_mandate(other_admin, siret_of(other, 1), new)
    with pytest.raises(HabilitationRefused) as ended:
        admins.grant(firm, declarant, siret_of(other, 1), "ATMP")
    assert ended.value.reason == "NOT_MANAGED"


def test_the_token_carries_exactly_what_check_access_allows_in_every_state(
    engine: Engine, world: World, relations: RelationsStore
) -> None:
    old, new, client, other = world.old, world.new, world.client, world.other
    admins = HabilitationStore(engine)
    firm = admins.register_company(siret_of(old, 1), ("Firm", "Admin"), "password")
    client_admin = admins.register_company(siret_of(other, 1), ("Other", "Admin"), "password")
    declarant = admins.create_declarant(firm, siret_of(old, 1), ("Decl", "Arant"), "password")
    sirets = [siret_of(old, 2), siret_of(client, 1), siret_of(other, 1)]
    admins.create_portfolio(firm, "Clients")
    admins.change_portfolio(firm, "Clients", add=True, services=tuple(SERVICES))
    admins.change_portfolio(firm, "Entreprise", add=True, sirets=(siret_of(old, 2),),
                            services=tuple(SERVICES))  # fmt: skip
    _declare(relations, old, client, 2, NIR_OLD)
    admins.grant_mandate(client_admin, siret_of(other, 1), old)
    admins.change_portfolio(firm, "Clients", add=True, sirets=(siret_of(client, 1),
                                                               siret_of(other, 1)))  # fmt: skip
    for code, siret in product(SERVICES, sirets):
        if SERVICES[code].case == MANDATED and siret == siret_of(client, 1):
            with pytest.raises(HabilitationRefused):  # bank data: a DSN link is not enough
                admins.grant(firm, declarant, siret, code)
            continue
        admins.grant(firm, declarant, siret, code)
    states = [
        "declared, mandated, habilitated everywhere",
        "the client taken over by another firm",
        "the mandate ended",
        "the declarant struck off",
    ]
    for state in states:
        if state == "the client taken over by another firm":
            _declare(relations, new, client, 1, NIR_NEW)
        elif state == "the mandate ended":
            admins.end_mandate(client_admin, siret_of(other, 1), old)
        elif state == "the declarant struck off":
            admins.strike_off(firm, declarant)
        grants = declarant_rights(engine, declarant)
        for code, service in SERVICES.items():
            carried = grants.get(service.right)
            for siret in sirets:
                in_token = carried is not None and carried.includes_siret(siret)
                allowed = decide(relations, declarant, code, sirets=[siret]).allowed
                assert in_token == allowed, (state, code, siret, in_token)
    assert declarant_rights(engine, declarant) == {}


def test_ending_a_mandate_ends_what_the_mandate_gave(
    engine: Engine, world: World, relations: RelationsStore
) -> None:
    """The attacker review's case: the old firm, mandated "for a correction", declares the
    current month and takes the establishment back; the mandate's end must give it back."""
    old, new, client = world.old, world.new, world.client
    _declare(relations, old, client, 3, NIR_OLD)
    _declare(relations, new, client, 2, NIR_NEW)
    admins = HabilitationStore(engine)
    client_admin = admins.register_company(siret_of(client, 1), ("Client", "Admin"), "password")
    admins.grant_mandate(client_admin, siret_of(client, 1), old)
    _declare(relations, old, client, 1, NIR_OLD)  # under the mandate: the new firm's link ends
    assert relations.live_declarants(siret_of(client, 1)) == [siret_of(old, 1)]
    admins.end_mandate(client_admin, siret_of(client, 1), old)
    assert relations.live_declarants(siret_of(client, 1)) == [siret_of(new, 1)]
    assert relations.declared_by_company(old) == set()
    with engine.connect() as connection:  # and it may not declare it again
        assert siret_of(client, 1) in taken_over(
            connection, old, [siret_of(client, 1)], recent_period(0)
        )
    _declare(relations, old, client, 2, NIR_OLD)  # a correction changes nothing of that
    assert relations.live_declarants(siret_of(client, 1)) == [siret_of(new, 1)]
    # A new mandate and a DSN for this month: the old firm declares it again.
    admins.grant_mandate(client_admin, siret_of(client, 1), old)
    _declare(relations, old, client, 0, NIR_OLD)
    assert relations.live_declarants(siret_of(client, 1)) == [siret_of(old, 1)]
