"""Habilitation rules on a real database: administrators (Primo AD, Candidat AD validated or
activated by key), declarants created by administrators only, struck off with transfer,
portfolios, habilitations, every act recorded with its author; the three cases of access; what
a declarant's token carries."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine

from registry.dsn.revealed_relations import Employment
from registry.habilitation.access_decision import (
    NOT_DECLARED,
    NOT_EMPLOYED,
    NOT_HABILITATED,
    decide,
)
from registry.habilitation.declarant_rights import declarant_rights
from registry.habilitation.store import HabilitationRefused, HabilitationStore
from registry.kernel.nir_keyring import NirKeyring
from registry.letters.store import Letter, LetterStore
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.relations.store import Link, RelationsStore
from registry.trust.declarant_store import DeclarantStore, SignInRefused, identity_digest
from tests.registry_rows import in_registry, recent_period

FIRM = siren_at(60)
CLIENT, STRANGER = siren_at(61), siren_at(62)
NIR = "1850575123456"


@pytest.fixture(scope="module")
def relations(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> RelationsStore:
    in_registry(engine, [siret_of(siren, n) for siren in (FIRM, CLIENT, STRANGER)
                         for n in (1, 2, 3)])  # fmt: skip
    in_registry(engine, [siret_of(siren_at(100 + n), 1) for n in range(101)])
    keyring = NirKeyring.load_or_create(Path(tmp_path_factory.mktemp("keys")) / "nir.keyring")
    found = RelationsStore(engine, keyring)
    # The firm declares three establishments of its client (one employee works in the first)
    # and one of each of 101 other companies.
    declared = [*(siret_of(CLIENT, n) for n in (1, 2, 3)),
                *(siret_of(siren_at(100 + n), 1) for n in range(101))]  # fmt: skip
    found.record_links([Link(siret_of(FIRM, 1), siret, recent_period(12), recent_period(1), "d1")
                        for siret in declared])  # fmt: skip
    found.record_employments([Employment(siret_of(CLIENT, 1), NIR, "20200101", "")])
    return found


@pytest.fixture(scope="module")
def store(engine: Engine, relations: RelationsStore) -> HabilitationStore:
    return HabilitationStore(engine, sealer=AESGCM(AESGCM.generate_key(256)))


@pytest.fixture(scope="module")
def primo(store: HabilitationStore) -> int:
    return store.register_company(siret_of(FIRM, 1), ("Moreau", "Lina"), "primo pw")


def _sign_in(engine: Engine, siret: str, names: tuple[str, str], password: str) -> int:
    return DeclarantStore(engine).sign_in(siret, *names, password, source="127.0.0.1")


def _letters(store: HabilitationStore) -> list[Letter]:
    """The letters waiting for the mail room, taken as its batch."""
    assert store.sealer is not None
    return LetterStore(store.engine, store.sealer).take_batch(f"b{time.monotonic_ns()}")


def _letter_key(store: HabilitationStore, siret: str) -> str:
    """The activation key of the latest letter posted to the establishment."""
    (letter,) = [letter for letter in _letters(store) if letter.siret == siret]
    found = re.search(r"activation[^:]*: (\S+)", letter.body)
    assert found is not None
    return found.group(1)


def _digest(siret: str, names: tuple[str, str]) -> bytes:
    return identity_digest(siret, *names)


def test_administrators_primo_then_candidates_proven_by_validation_or_letter_and_email(
    engine: Engine, store: HabilitationStore, primo: int
) -> None:
    assert _sign_in(engine, siret_of(FIRM, 1), ("Moreau", "Lina"), "primo pw") == primo
    first = store.register(siret_of(FIRM, 1), ("Garcia", "Ana"), "cand pw", "ana@firm.example")
    assert first is not None and not first.first  # the company has an administrator
    with pytest.raises(SignInRefused) as waiting:
        _sign_in(engine, siret_of(FIRM, 1), ("Garcia", "Ana"), "cand pw")
    assert waiting.value.reason == "ACCOUNT_INACTIVE"
    assert declarant_rights(engine, first.account) == {}  # no rights until active
    with pytest.raises(SignInRefused) as wrong:  # the state is told only with the password
        _sign_in(engine, siret_of(FIRM, 1), ("Garcia", "Ana"), "guess")
    assert wrong.value.reason == "INVALID_CREDENTIALS"
    with pytest.raises(HabilitationRefused) as not_admin:  # a candidate validates nobody
        store.validate_candidate(first.account, first.account)
    assert not_admin.value.reason == "NOT_AN_ADMINISTRATOR"
    store.validate_candidate(primo, first.account)
    with pytest.raises(SignInRefused):  # proven, but its e-mail is not confirmed yet
        _sign_in(engine, siret_of(FIRM, 1), ("Garcia", "Ana"), "cand pw")
    assert not store.confirm_email(first.email_code + "x")
    assert store.confirm_email(first.email_code)
    assert _sign_in(engine, siret_of(FIRM, 1), ("Garcia", "Ana"), "cand pw") == first.account
    assert store.email_of(first.account) == "ana@firm.example"
    # The same triplet again (an active account): a code for the address given, nothing more.
    again = store.register(siret_of(FIRM, 1), ("Garcia", "Ana"), "other pw", "x@y.example")
    assert again is not None and again.account == first.account
    assert store.confirm_email(again.email_code)  # confirms nothing new
    assert store.email_of(first.account) == "ana@firm.example"
    assert _sign_in(engine, siret_of(FIRM, 1), ("Garcia", "Ana"), "cand pw") == first.account
    names = ("Petit", "Jo")
    second = store.register(siret_of(FIRM, 2), names, "jo pw", "jo@firm.example")
    assert second is not None
    assert store.confirm_email(second.email_code)  # the confirmed address sends the letter
    key = _letter_key(store, siret_of(FIRM, 2))
    digest = _digest(siret_of(FIRM, 2), names)
    assert store.activate_with_key(digest, "jo pw", key + "x") is None
    assert store.activate_with_key(digest, "wrong pw", key) is None  # the key alone: nothing
    assert store.activate_with_key(digest, "jo pw", key) == second.account
    assert store.activate_with_key(digest, "jo pw", key) is None  # single use
    assert _sign_in(engine, siret_of(FIRM, 2), names, "jo pw") == second.account
    acts = [(a.author, a.act) for a in store.acts(FIRM)]
    assert acts == [
        ("registration", "REGISTER"), (f"account:{first.account}", "APPLY"),
        (f"declarant:{primo}", "VALIDATE_ADMIN"), (f"account:{first.account}", "CONFIRM_EMAIL"),
        (f"account:{first.account}", "CONFIRM_EMAIL"),
        (f"account:{second.account}", "APPLY"), (f"account:{second.account}", "CONFIRM_EMAIL"),
        ("activation-key", "ACTIVATE_ADMIN"),
    ]  # fmt: skip


def test_a_first_administrator_is_proven_by_the_letter_to_its_establishment(
    engine: Engine, store: HabilitationStore
) -> None:
    siret, names = siret_of(siren_at(150), 1), ("Primo", "Ad")
    made = store.register(siret, names, "primo pw", "p@s.example")
    assert made is not None and made.first
    assert _letters(store) == []  # no letter before the address is confirmed
    assert store.confirm_email(made.email_code)
    with pytest.raises(SignInRefused):  # the e-mail alone proves nothing
        _sign_in(engine, siret, names, "primo pw")
    key = _letter_key(store, siret)
    assert store.activate_with_key(_digest(siret, names), "primo pw", key) == made.account
    assert _sign_in(engine, siret, names, "primo pw") == made.account
    assert [p.name for p in store.portfolios_of(siren_at(150))] == ["Entreprise"]
    assert "habilitation.manage" in declarant_rights(engine, made.account)


def test_a_squatted_triplet_gives_its_squatter_nothing(
    engine: Engine, store: HabilitationStore
) -> None:
    """The attacker review: a stranger registers the company's legal representative first,
    with its own password and address, and waits for the company to use the letter's key."""
    siret, names = siret_of(siren_at(151), 1), ("Dirigeant", "Reel")
    squat = store.register(siret, names, "squatter pw", "squatter@evil.example")
    assert squat is not None and store.confirm_email(squat.email_code)
    squatters_letter = _letter_key(store, siret)
    # The real person registers: it replaces the unproven candidate (password, address).
    real = store.register(siret, names, "real pw", "real@company.example")
    assert real is not None and real.account == squat.account
    assert store.activate_with_key(_digest(siret, names), "real pw", squatters_letter) is None
    assert store.confirm_email(real.email_code)
    key = _letter_key(store, siret)
    assert store.activate_with_key(_digest(siret, names), "squatter pw", key) is None
    assert store.activate_with_key(_digest(siret, names), "real pw", key) == real.account
    assert store.email_of(real.account) == "real@company.example"
    with pytest.raises(SignInRefused):
        _sign_in(engine, siret, names, "squatter pw")


def test_confirmed_addresses_cannot_make_the_mail_room_post_at_will(
    store: HabilitationStore,
) -> None:
    siret = siret_of(siren_at(152), 1)
    for n in range(6):
        made = store.register(siret, (f"Spam{n}", "X"), "spam pw 1", f"s{n}@evil.example")
        assert made is not None and store.confirm_email(made.email_code)
    assert len([letter for letter in _letters(store) if letter.siret == siret]) == 3


def test_declarants_are_created_by_an_administrator_of_their_company_only(
    store: HabilitationStore, primo: int
) -> None:
    declarant = store.create_declarant(primo, siret_of(FIRM, 1), ("Roche", "Eva"), "pw")
    with pytest.raises(HabilitationRefused) as by_declarant:
        store.create_declarant(declarant, siret_of(FIRM, 1), ("Faure", "Max"), "pw")
    assert by_declarant.value.reason == "NOT_AN_ADMINISTRATOR"
    with pytest.raises(HabilitationRefused) as elsewhere:
        store.create_declarant(primo, siret_of(STRANGER, 1), ("Faure", "Max"), "pw")
    assert elsewhere.value.reason == "NOT_YOUR_COMPANY"
    stranger_admin = store.register_company(siret_of(STRANGER, 1), ("Blanc", "Luc"), "pw")
    with pytest.raises(HabilitationRefused) as not_mine:  # no acts on another company's people
        store.grant(stranger_admin, declarant, siret_of(CLIENT, 1), "ATMP")
    assert not_mine.value.reason == "UNKNOWN_DECLARANT"


def test_habilitations_need_the_establishment_in_a_portfolio_with_the_service(
    store: HabilitationStore, primo: int
) -> None:
    declarant = store.create_declarant(primo, siret_of(FIRM, 1), ("Noel", "Ines"), "pw")
    store.create_portfolio(primo, "Clients Nord")
    with pytest.raises(HabilitationRefused) as outside:
        store.grant(primo, declarant, siret_of(CLIENT, 1), "ATMP")
    assert outside.value.reason == "NOT_IN_A_PORTFOLIO"
    changed, warning = store.change_portfolio(
        primo, "Clients Nord", add=True, sirets=(siret_of(CLIENT, 1), siret_of(CLIENT, 3)),
        services=("ATMP",),
    )  # fmt: skip
    assert changed == 3 and warning == ""
    assert store.grant(primo, declarant, siret_of(CLIENT, 1), "ATMP")
    assert not store.grant(primo, declarant, siret_of(CLIENT, 1), "ATMP")  # already held
    many = tuple(siret_of(siren_at(100 + n), 1) for n in range(101))
    _, warning = store.change_portfolio(primo, "Clients Nord", add=True, sirets=many)
    assert "above 100" in warning
    store.change_portfolio(primo, "Clients Nord", add=False, sirets=many)
    assert store.revoke(primo, declarant, siret_of(CLIENT, 1), "ATMP")
    assert not store.revoke(primo, declarant, siret_of(CLIENT, 1), "ATMP")


def test_struck_off_with_a_successor_who_receives_the_habilitations(
    engine: Engine, store: HabilitationStore, primo: int
) -> None:
    leaving = store.create_declarant(primo, siret_of(FIRM, 1), ("Dupuis", "Leo"), "pw")
    successor = store.create_declarant(primo, siret_of(FIRM, 1), ("Lemoine", "Zoe"), "pw")
    store.change_portfolio(primo, "Entreprise", add=True, sirets=(siret_of(CLIENT, 2),),
                           services=("DUCS",))  # fmt: skip
    store.grant(primo, leaving, siret_of(CLIENT, 2), "DUCS")
    assert store.strike_off(primo, leaving, successor) == 1
    assert [(h.siret, h.service) for h in store.habilitations_of(successor)] == [
        (siret_of(CLIENT, 2), "DUCS")
    ]
    assert store.habilitations_of(leaving) == []
    with pytest.raises(SignInRefused):
        _sign_in(engine, siret_of(FIRM, 1), ("Dupuis", "Leo"), "pw")
    with pytest.raises(HabilitationRefused):
        store.grant(primo, leaving, siret_of(CLIENT, 2), "DUCS")
    last = store.acts(FIRM)[-1]
    assert (last.author, last.act, last.target) == (
        f"declarant:{primo}",
        "STRIKE_OFF",
        f"account:{leaving}",
    )
    assert f"successor account:{successor}" in last.detail


def test_the_three_cases_of_access_and_the_token_grants(
    engine: Engine, store: HabilitationStore, relations: RelationsStore, primo: int
) -> None:
    declarant = store.create_declarant(primo, siret_of(FIRM, 1), ("Perrin", "Ada"), "pw")
    with pytest.raises(HabilitationRefused) as not_managed:  # neither its own nor declared
        store.change_portfolio(primo, "Entreprise", add=True, sirets=(siret_of(STRANGER, 1),))
    assert not_managed.value.reason == "NOT_MANAGED"
    # Its own establishment (not declared by it in DSN) and one it declares.
    store.change_portfolio(primo, "Entreprise", add=True, sirets=(siret_of(CLIENT, 1),
                           siret_of(FIRM, 2)), services=("ATMP", "BONUS-MALUS"))  # fmt: skip
    declared, other = siret_of(CLIENT, 1), siret_of(FIRM, 2)

    def refusals(service: str, *sirets: str, **extra: Any) -> list[tuple[str, str]]:
        return decide(relations, declarant, service, sirets=sirets, **extra).refusals

    # 1. Tied to the payroll: exactly what the company declared, no habilitation.
    assert refusals("DSN", declared) == []
    assert refusals("DSN", other) == [(other, NOT_DECLARED)]
    # 2. Operable by others: declared ones inherited, others need a habilitation.
    assert refusals("BONUS-MALUS", declared) == []
    assert refusals("BONUS-MALUS", other) == [(other, NOT_HABILITATED)]
    store.grant(primo, declarant, other, "BONUS-MALUS")
    assert refusals("BONUS-MALUS", other) == []
    # 3. Specific: a habilitation, the establishment declared, the employees working there.
    assert refusals("ATMP", declared) == [(declared, NOT_HABILITATED)]
    store.grant(primo, declarant, declared, "ATMP")
    store.grant(primo, declarant, other, "ATMP")
    assert refusals("ATMP", declared, other) == [(other, NOT_DECLARED)]
    assert refusals("ATMP", declared, employees=[(declared, NIR)], date="20250601") == []
    late = refusals("ATMP", declared, employees=[(declared, NIR[:-1] + "9")], date="20250601")
    assert late == [("employee #1", NOT_EMPLOYED)] and NIR[:-1] not in repr(late)
    # The token: exactly what CheckAccess allows (not ATMP on the undeclared establishment,
    # although habilitated), relations over its own company.
    grants = declarant_rights(engine, declarant)
    assert grants["service.atmp"].sirets == {declared}
    assert grants["dsn.deposit"].sirets >= {siret_of(CLIENT, 1), siret_of(CLIENT, 2)}
    assert not grants["dsn.deposit"].includes_siret(siret_of(STRANGER, 1))
    assert grants["service.bonus-malus"].sirets >= {declared, other}
    assert grants["relations.read"].sirens == {FIRM}


def test_a_request_id_used_for_another_act_is_refused_and_changes_nothing(
    store: HabilitationStore, primo: int
) -> None:
    """The same request id for a portfolio, then for a declarant (it answered INTERNAL)."""
    store.create_portfolio(primo, "Reused id", request_id="shared-1")
    before = store.accounts_of(FIRM)
    with pytest.raises(HabilitationRefused) as reused:
        store.create_declarant(primo, siret_of(FIRM, 1), ("Reuse", "Ida"), "pw",
                               request_id="shared-1")  # fmt: skip
    assert reused.value.reason == "REQUEST_ID_REUSED"
    assert store.accounts_of(FIRM) == before  # the declarant was not created
