"""SEPA mandates through a real node, on each database: a firm's declarant habilitated for the
declarative service MANDATS-SEPA enters, acknowledges, reuses, prints and revokes a client's
mandate; creditors read and extract only theirs; the attack matrix (another company's
declarant, a declarant without the habilitation, another creditor, anonymous, a revoked
mandate's reuse, bad IBAN/BIC/ICS) is refused with named reasons; IBANs are sealed at rest and
never logged; the bank reference, once published, refuses unknown French bank codes."""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from interops.mandate.v1 import mandate_pb2 as pb
from interops.operation.v1 import operation_pb2 as op
from sqlalchemy import select
from stdnum import iban as stdnum_iban
from stdnum.eu import at_02

from clients.client import Client
from clients.errors import InteropsError
from registry.habilitation.store import HabilitationStore
from registry.kernel.sealing import load_or_create_key
from registry.mandate.bank_reference import TABLE, read_counters
from registry.mandate.schema import mandates
from registry.mandate.store import MandateRefused, MandateStore, NewMandate
from registry.nomenclature.store import NomenclatureStore
from registry.rcd.records import CompanyRecord
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.rcd.store import RcdStore
from tests.habilitation.firms import firm_with_clients
from tests.mandate.fgd_records import counter
from tests.registry_rows import in_registry
from tests.running_node import RunningNode

MANDATE = "interops.mandate.v1.MandateService"
FIRM, CLIENT, STRANGER, STRANGER_CLIENT = siren_at(60), siren_at(61), siren_at(62), siren_at(63)
CLIENT_SIRET, STRANGER_CLIENT_SIRET = siret_of(CLIENT, 1), siret_of(STRANGER_CLIENT, 1)
PASSWORD = "long password"
SIGNED = "2026-11-02"


def french_iban(bank: str, account: str = "00012345678") -> str:
    """A valid French IBAN of this bank code (mod-97 key computed by stdnum)."""
    bban = f"{bank}00001{account}06"
    return f"FR{stdnum_iban.calc_check_digits('FR00' + bban)}{bban}"


def creditor_identifier(national: str) -> str:
    """A valid French SEPA creditor identifier (ICS)."""
    return f"FR{at_02.calc_check_digits(f'FRXXZZZ{national}')}ZZZ{national}"


IBAN = french_iban("30006")
OTHER_IBAN = french_iban("20041", "00098765432")
BIC = "BNPAFRPPXXX"


@dataclass
class World:
    """The node, the callers, and a sealed-IBAN reader."""

    node: RunningNode
    payer: Client
    unhabilitated: Client
    stranger: Client
    urssaf: Client
    cnav: Client
    anonymous: Client


def _sign_in(node: RunningNode, siret: str, names: tuple[str, str]) -> Client:
    credentials = node.sign_in(siret, names[0], names[1], PASSWORD, audience=[MANDATE])
    return Client(node.address, credentials=credentials, timeout=30)


def _declarant(node: RunningNode, firm: str, client_siret: str, names: tuple[str, str],
               habilitated: bool) -> int:  # fmt: skip
    store = HabilitationStore(node.node.engine)
    admin = store.accounts_of(firm)[0].id
    declarant = store.create_declarant(admin, siret_of(firm, 1), names, PASSWORD)
    if habilitated:
        store.grant(admin, declarant, client_siret, "MANDATS-SEPA")
    return declarant


@pytest.fixture(scope="module")
def world(node: RunningNode) -> Iterator[World]:
    engine = node.node.engine
    in_registry(engine, [siret_of(s, n) for s in (FIRM, CLIENT, STRANGER, STRANGER_CLIENT)
                         for n in (1, 2)])  # fmt: skip
    RcdStore(engine).upsert([CompanyRecord(CLIENT, "CLIENT SA", "6920Z", "5710", 1, None, None,
                                           CLIENT_SIRET[9:], False)])  # fmt: skip
    admins = HabilitationStore(engine)
    for firm, client in ((FIRM, CLIENT_SIRET), (STRANGER, STRANGER_CLIENT_SIRET)):
        admin = firm_with_clients(engine, siret_of(firm, 1), ("Admin", "Firm"), PASSWORD, [client])
        admins.create_portfolio(admin, "Clients")
        admins.change_portfolio(admin, "Clients", add=True, sirets=(client,),
                                services=("MANDATS-SEPA",))  # fmt: skip
    _declarant(node, FIRM, CLIENT_SIRET, ("Payeur", "Alex"), habilitated=True)
    _declarant(node, FIRM, CLIENT_SIRET, ("Sans", "Droit"), habilitated=False)
    _declarant(node, STRANGER, STRANGER_CLIENT_SIRET, ("Etranger", "Alex"), habilitated=True)
    creditors = MandateStore(engine, bytes(32))
    creditors.register_creditor("URSSAF", creditor_identifier("123456"), "Urssaf Ile-de-France")
    creditors.register_creditor("CNAV", creditor_identifier("654321"), "Cnav")
    callers = World(
        node,
        payer=_sign_in(node, siret_of(FIRM, 1), ("Payeur", "Alex")),
        unhabilitated=_sign_in(node, siret_of(FIRM, 1), ("Sans", "Droit")),
        stranger=_sign_in(node, siret_of(STRANGER, 1), ("Etranger", "Alex")),
        urssaf=Client(node.address, credentials=node.credentials(
            node.organism("URSSAF", rights=("mandate.read",)), [MANDATE]), timeout=30),
        cnav=Client(node.address, credentials=node.credentials(
            node.organism("CNAV", rights=("mandate.read",)), [MANDATE]), timeout=30),
        anonymous=Client(node.address, timeout=30),
    )  # fmt: skip
    yield callers
    for caller in (callers.payer, callers.unhabilitated, callers.stranger, callers.urssaf,
                   callers.cnav, callers.anonymous):  # fmt: skip
        caller.close()


def _refusal(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(InteropsError) as raised:
        call()
    return raised.value.code.name, raised.value.reason


def _create(client: Client, reference: str, creditor: str = "URSSAF", **changes: str) -> pb.Mandate:
    fields = {"debtor": CLIENT_SIRET, "iban": IBAN, "bic": BIC, "signed_on": SIGNED, **changes}
    return client.create_mandate(creditor=creditor, reference=reference, **fields)  # type: ignore[arg-type]


def test_a_mandate_is_entered_acknowledged_reused_printed_and_revoked(world: World) -> None:
    payer = world.payer
    created = _create(payer, f"{CLIENT}-RUM-LIFE-1", request_id="life-1")
    assert created.state == pb.MANDATE_STATE_PENDING
    assert created.iban == IBAN and created.creditor_identifier.startswith("FR")
    again = _create(payer, f"{CLIENT}-RUM-LIFE-1", request_id="life-1")
    assert again.create_time == created.create_time  # the retry answers the first mandate
    # Not acknowledged: not used, and not shown to its creditor.
    assert _refusal(lambda: payer.use_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1", "DSN-2026-11")) == (
        "FAILED_PRECONDITION",
        "MANDATE_NOT_ACKNOWLEDGED",
    )
    acknowledged = payer.acknowledge_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1")
    assert acknowledged.state == pb.MANDATE_STATE_ACKNOWLEDGED
    assert acknowledged.acknowledge_time.seconds > 0
    # One mandate for every declaration of the creditor; each declaration counted once.
    assert payer.use_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1", "DSN-2026-11").uses == 1
    assert payer.use_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1", "DSN-2026-11").uses == 1
    used = payer.use_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1", "DSN-2026-12")
    assert (used.uses, used.last_declaration) == (2, "DSN-2026-12")
    pdf = payer.print_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1")
    assert pdf.startswith(b"%PDF-") and b"/Count 1" in pdf
    found = list(payer.search_mandates(CLIENT_SIRET, reference=f"{CLIENT}-RUM-LIFE-1"))
    assert [m.reference for m in found] == [f"{CLIENT}-RUM-LIFE-1"]
    assert world.urssaf.get_creditor_mandate(f"{CLIENT}-RUM-LIFE-1").uses == 2
    revoked = payer.revoke_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1")
    assert revoked.state == pb.MANDATE_STATE_REVOKED
    assert payer.revoke_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1").revoke_time == revoked.revoke_time
    # A revoked mandate is not reused, nor acknowledged again.
    assert _refusal(lambda: payer.use_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1", "DSN-2027-01")) == (
        "FAILED_PRECONDITION",
        "MANDATE_REVOKED",
    )
    assert _refusal(lambda: payer.acknowledge_mandate("URSSAF", f"{CLIENT}-RUM-LIFE-1")) == (
        "FAILED_PRECONDITION",
        "MANDATE_REVOKED",
    )
    assert (
        world.urssaf.get_creditor_mandate(f"{CLIENT}-RUM-LIFE-1").state == pb.MANDATE_STATE_REVOKED
    )


def test_references_are_unique_per_creditor_and_made_when_absent(world: World) -> None:
    _create(world.payer, f"{CLIENT}-RUM-UNIQUE")
    assert _refusal(lambda: _create(world.payer, f"{CLIENT}-RUM-UNIQUE")) == (
        "ALREADY_EXISTS",
        "MANDATE_REFERENCE_TAKEN",
    )
    assert _create(world.payer, f"{CLIENT}-RUM-UNIQUE", creditor="CNAV").creditor == "CNAV"
    made = _create(world.payer, "")
    assert made.reference.startswith(f"{CLIENT}-IOPS-")


def test_a_company_mandate_needs_its_head_office_in_the_perimeter(world: World) -> None:
    # The payer is habilitated on the client's head office: the company's mandates are its.
    company = _create(world.payer, f"{CLIENT}-RUM-COMPANY", debtor=CLIENT)
    assert company.debtor == CLIENT
    listed = {m.reference for m in world.payer.search_mandates(CLIENT)}
    assert {f"{CLIENT}-RUM-COMPANY", f"{CLIENT}-RUM-UNIQUE"} <= listed
    # Another establishment's mandate (entered by someone habilitated for it) is not shown.
    store = MandateStore(
        world.node.node.engine,
        load_or_create_key(world.node.settings.data_dir / "keys" / "data.key"),
    )
    other = f"{CLIENT}-RUM-OTHER-ESTABLISHMENT"
    store.create(NewMandate(siret_of(CLIENT, 2), "URSSAF", other, IBAN, BIC, pb.SCHEME_CORE,
                            SIGNED))  # fmt: skip
    assert f"{CLIENT}-RUM-OTHER-ESTABLISHMENT" not in {
        m.reference for m in world.payer.search_mandates(CLIENT)
    }
    assert _refusal(
        lambda: _create(world.payer, f"{CLIENT}-RUM-X", debtor=siret_of(CLIENT, 2))
    ) == (
        "PERMISSION_DENIED",
        "NOT_IN_YOUR_PERIMETER",
    )


# (who, what) -> the refusal: (gRPC code, reason).
ATTACKS = {
    ("stranger", "create for another company"): ("PERMISSION_DENIED", "NOT_IN_YOUR_PERIMETER"),
    ("stranger", "read another company's"): ("NOT_FOUND", "MANDATE_NOT_FOUND"),
    ("stranger", "revoke another company's"): ("NOT_FOUND", "MANDATE_NOT_FOUND"),
    ("stranger", "search another company's"): ("PERMISSION_DENIED", "NOT_IN_YOUR_PERIMETER"),
    ("stranger", "print another company's"): ("NOT_FOUND", "MANDATE_NOT_FOUND"),
    ("unhabilitated", "create"): ("PERMISSION_DENIED", "MISSING_GRANT"),
    ("unhabilitated", "read"): ("PERMISSION_DENIED", "MISSING_GRANT"),
    ("cnav", "read URSSAF's"): ("NOT_FOUND", "MANDATE_NOT_FOUND"),
    ("cnav", "manage"): ("PERMISSION_DENIED", "MISSING_GRANT"),
    ("payer", "read as a creditor"): ("PERMISSION_DENIED", "MISSING_GRANT"),
    ("anonymous", "create"): ("UNAUTHENTICATED", "TOKEN_MISSING"),
    ("anonymous", "extract"): ("UNAUTHENTICATED", "TOKEN_MISSING"),
    ("payer", "bad IBAN key"): ("INVALID_ARGUMENT", "BAD_IBAN"),
    ("payer", "bad BIC"): ("INVALID_ARGUMENT", "BAD_BIC"),
    ("payer", "unknown creditor"): ("INVALID_ARGUMENT", "UNKNOWN_CREDITOR"),
    ("payer", "signature in the future"): ("INVALID_ARGUMENT", "BAD_SIGNATURE_DATE"),
    ("payer", "malformed IBAN"): ("INVALID_ARGUMENT", "INVALID_ARGUMENT"),
}


def _attack(world: World, who: str, what: str) -> None:
    caller: Client = getattr(world, who)
    key = ("URSSAF", f"{CLIENT}-RUM-TARGET")
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    bad_key = IBAN[:2] + ("00" if IBAN[2:4] != "00" else "01") + IBAN[4:]
    calls: dict[str, Callable[[], object]] = {
        "create for another company": lambda: _create(caller, f"{CLIENT}-RUM-ATTACK"),
        "read another company's": lambda: caller.get_mandate(*key),
        "revoke another company's": lambda: caller.revoke_mandate(*key),
        "search another company's": lambda: list(caller.search_mandates(CLIENT_SIRET)),
        "print another company's": lambda: caller.print_mandate(*key),
        "create": lambda: _create(caller, f"{CLIENT}-RUM-ATTACK"),
        "read": lambda: caller.get_mandate(*key),
        "read URSSAF's": lambda: caller.get_creditor_mandate(f"{CLIENT}-RUM-TARGET"),
        "manage": lambda: caller.acknowledge_mandate(*key),
        "read as a creditor": lambda: caller.get_creditor_mandate(f"{CLIENT}-RUM-TARGET"),
        "extract": caller.extract_mandates,
        "bad IBAN key": lambda: _create(caller, f"{CLIENT}-RUM-BAD", iban=bad_key),
        "bad BIC": lambda: _create(caller, f"{CLIENT}-RUM-BAD", bic="1234FRPP"),
        "unknown creditor": lambda: _create(caller, f"{CLIENT}-RUM-BAD", creditor="DGFIP"),
        "signature in the future": lambda: _create(caller, f"{CLIENT}-RUM-BAD", signed_on=tomorrow),
        "malformed IBAN": lambda: _create(caller, f"{CLIENT}-RUM-BAD", iban="FR76\x00"),
    }
    calls[what]()


def test_the_attack_matrix_is_refused_with_named_reasons(world: World) -> None:
    _create(world.payer, f"{CLIENT}-RUM-TARGET")
    world.payer.acknowledge_mandate("URSSAF", f"{CLIENT}-RUM-TARGET")
    outcomes = {cell: _refusal(functools.partial(_attack, world, *cell)) for cell in ATTACKS}
    assert outcomes == ATTACKS
    # Nothing was entered, changed or leaked by the attempts.
    target = world.payer.get_mandate("URSSAF", f"{CLIENT}-RUM-TARGET")
    assert target.state == pb.MANDATE_STATE_ACKNOWLEDGED
    assert not [
        m for m in world.payer.search_mandates(CLIENT) if m.reference == f"{CLIENT}-RUM-ATTACK"
    ]
    assert [m.reference for m in world.cnav.search_creditor_mandates()] == sorted(
        m.reference
        for m in world.payer.search_mandates(CLIENT, creditor="CNAV")
        if m.acknowledge_time.seconds
    )


def test_a_bad_creditor_identifier_is_refused_at_registration(world: World) -> None:
    store = MandateStore(world.node.node.engine, bytes(32))
    good = creditor_identifier("111111")
    bad = good[:2] + ("00" if good[2:4] != "00" else "01") + good[4:]
    for refused in (bad, "FR12ZZZ1234567", "not an ics"):
        with pytest.raises(MandateRefused) as raised:
            store.register_creditor("MSA", refused)
        assert raised.value.reason == "BAD_CREDITOR_IDENTIFIER"
    assert store.register_creditor("MSA", good).identifier == good


def test_each_creditor_extracts_exactly_its_mandates(world: World) -> None:
    payer = world.payer
    for number in range(7):
        _create(payer, f"{CLIENT}-RUM-EXTRACT-{number}", iban=OTHER_IBAN if number % 2 else IBAN)
        payer.acknowledge_mandate("URSSAF", f"{CLIENT}-RUM-EXTRACT-{number}")
    _create(payer, f"{CLIENT}-RUM-EXTRACT-CNAV", creditor="CNAV")
    started = world.urssaf.extract_mandates(request_id="x-1")
    assert world.urssaf.extract_mandates(request_id="x-1").name == started.name
    done = world.urssaf.wait_extraction(started.name, timeout=60)
    result = pb.ExtractMandatesResult()
    assert done.state == op.OPERATION_STATE_SUCCEEDED
    assert done.result.Unpack(result)
    text = b"".join(world.urssaf.download_extraction(started.name)).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = {m.reference: m for m in world.urssaf.search_creditor_mandates()}
    assert {row["reference"] for row in rows} == set(expected)
    assert result.mandates == len(rows) == done.done_units and result.creditor == "URSSAF"
    assert f"{CLIENT}-RUM-EXTRACT-CNAV" not in text
    assert {
        row["iban"] for row in rows if row["reference"].startswith(f"{CLIENT}-RUM-EXTRACT")
    } == {
        IBAN,
        OTHER_IBAN,
    }
    assert all(row["state"] in ("ACKNOWLEDGED", "REVOKED") for row in rows)
    # Another creditor neither follows nor downloads it.
    assert _refusal(lambda: world.cnav.get_extraction(started.name)) == (
        "NOT_FOUND",
        "OPERATION_NOT_FOUND",
    )
    assert _refusal(lambda: list(world.cnav.download_extraction(started.name))) == (
        "NOT_FOUND",
        "OPERATION_NOT_FOUND",
    )


def test_ibans_are_sealed_at_rest_and_never_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _create(world.payer, f"{CLIENT}-RUM-SEALED", iban=OTHER_IBAN, request_id="sealed-1")
    with pytest.raises(InteropsError):
        _create(world.payer, f"{CLIENT}-RUM-SEALED", iban=OTHER_IBAN)
    with world.node.node.engine.connect() as connection:
        stored = connection.execute(select(mandates.c.iban_sealed)).scalars().all()
    assert stored and all(IBAN.encode() not in s and OTHER_IBAN.encode() not in s for s in stored)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"{CLIENT}-RUM-SEALED" in logged  # the creation was logged...
    assert OTHER_IBAN not in logged and OTHER_IBAN[4:] not in logged  # ...without the IBAN


def test_the_bank_reference_once_published_refuses_unknown_banks(world: World) -> None:
    assert _create(world.payer, f"{CLIENT}-RUM-BANK-BEFORE", iban=french_iban("10278")).iban
    fgd = [  # the Banque de France's fixed-width records
        counter("30006", "00001", "CREDIT AGRICOLE", "AGRIFRPPXXX"),
        counter("20041", "00001", "LA BANQUE POSTALE", "PSSTFRPPXXX"),
    ]
    counters = list(read_counters(fgd))
    assert counters[0] == ("3000600001", "CREDIT AGRICOLE AGRIFRPPXXX")
    NomenclatureStore(world.node.node.engine).publish(TABLE, counters)
    assert _refusal(
        lambda: _create(world.payer, f"{CLIENT}-RUM-BANK-AFTER", iban=french_iban("10278"))
    ) == (
        "INVALID_ARGUMENT",
        "UNKNOWN_BANK",
    )
    assert _create(world.payer, f"{CLIENT}-RUM-BANK-KNOWN", iban=french_iban("20041")).iban
    # A foreign IBAN is not looked up in the French reference.
    assert _create(
        world.payer, f"{CLIENT}-RUM-BANK-DE", iban="DE89370400440532013000", bic="COBADEFFXXX"
    ).iban
