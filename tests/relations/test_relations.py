"""Relations through a real node: a valid DSN records who declared which establishment and who
works where; every query runs as every kind of caller and nobody obtains what it does not
manage; NIRs are sealed at rest, found by keyed hash, and survive a key rotation."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from interops.dsn.v1 import dsn_pb2
from interops.relations.v1 import relations_pb2 as pb
from sqlalchemy import select

from clients.client import Client
from clients.errors import PermissionDenied, Unauthenticated
from clients.token_credentials import ChainCredentials
from registry.dsn.reader import read_rubrics
from registry.dsn.synth import DEMO_COMPANY, company, generate
from registry.kernel.nir_keyring import NirKeyring
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.relations.history import EMPLOYMENT_COLUMNS, LINK_COLUMNS, write_csv
from registry.relations.schema import employments
from registry.relations.store import RelationsStore
from registry.trust.declarant_store import DeclarantStore
from tests.running_node import RunningNode
from token_suite.chain import Terms, issue_root, session_holder, session_signer
from token_suite.grants import Scope
from token_suite.profiles import PORTAL

DEPOSIT = "interops.dsn.v1.DepositService"
RELATIONS = "interops.relations.v1.RelationsService"
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
OTHER = company(siret_of(siren_at(7), 1))
EMPLOYEES = 12


def _signed_in(node: RunningNode, siret: str, name: str, grants: list[Any]) -> ChainCredentials:
    store = DeclarantStore(node.node.engine)
    if not store.exists(siret, name, "Alex"):
        store.create(siret, name, "Alex", "pw", grants)
    return node.sign_in(siret, name, "Alex", "pw", audience=[DEPOSIT, RELATIONS])


@pytest.fixture(scope="module")
def declared(node: RunningNode, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The firm deposits a monthly DSN for its client; what it declares, read from the file."""
    data = b"".join(generate(EMPLOYEES, order=501))
    path = tmp_path_factory.mktemp("dsn") / "dsn.txt"
    path.write_bytes(data)
    chain = _signed_in(node, FIRM, "Martin", [("dsn.deposit", DEMO_COMPANY.siren)])
    node.encryption_keys()  # the organisms' keys the shares are sealed to: routing needs them
    with Client(node.address, credentials=chain, timeout=60) as firm:
        deposit = firm.submit_deposit(path)
        deadline = time.monotonic() + 60
        while firm.get_deposit(deposit.id).state != dsn_pb2.DEPOSIT_STATE_ROUTED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    values: dict[str, list[str]] = {}
    for item in read_rubrics(io.BytesIO(data)):
        values.setdefault(item.rubric, []).append(item.value)
    siret = DEMO_COMPANY.siren + values["S21.G00.11.001"][0]
    start, month = values["S21.G00.40.001"][0], values["S20.G00.05.005"][0]
    return {"deposit": deposit.id, "siret": siret, "nirs": values["S21.G00.30.001"],
            "first_start": start[4:] + start[2:4] + start[:2],
            "period": month[4:] + month[2:4]}  # fmt: skip


def _organism(node: RunningNode, code: str, siren: str | None, right: bool = True) -> Client:
    signer = node.organism(code, "URSSAF", rights=("registry.read",))
    if right:
        node.node.trust.directory.grant(code, "relations.read", siren)
    return Client(node.address, credentials=node.credentials(signer, (RELATIONS,)))


@pytest.fixture(scope="module")
def callers(node: RunningNode, declared: dict[str, Any]) -> Iterator[dict[str, Client]]:
    issuer = node.node.trust.issuer
    company_chain = _signed_in(node, siret_of(DEMO_COMPANY.siren, 1), "Leroy", [])
    session = session_signer(issuer.organism)
    terms = Terms(holder=session_holder(session), profile=PORTAL, audience=(RELATIONS,),
                  grants={"relations.read": Scope(everything=True)}, lifetime=60)  # fmt: skip
    expired = issue_root(issuer, "organism:OLD", terms, now=time.time() - 3600)
    revoked = _signed_in(node, FIRM, "Blanc", [])
    clients = {
        "firm": Client(node.address, credentials=_signed_in(node, FIRM, "Martin", [])),
        "other firm": Client(node.address, credentials=_signed_in(node, OTHER.siret, "Roux", [])),
        "company": Client(node.address, credentials=company_chain),
        "organism granted": _organism(node, "URSSAF-IDF", None),
        "organism granted elsewhere": _organism(node, "URSSAF-NORD", OTHER.siren),
        "organism without grant": _organism(node, "CNAV-X", None, right=False),
        "expired chain": Client(node.address, credentials=ChainCredentials(expired, session)),
    }  # fmt: skip
    revoked_client = Client(node.address, credentials=revoked)
    with Client(node.address) as anonymous:
        anonymous.revoke_token(revoked.token, 0, issuer)
    clients["revoked chain"] = revoked_client
    yield clients
    for client in clients.values():
        client.close()


def _queries(declared: dict[str, Any]) -> dict[str, Callable[[Client], Any]]:
    siret, nir = declared["siret"], declared["nirs"][0]
    return {
        "declared establishments": lambda c: c.relations.ListDeclaredEstablishments(
            pb.ListDeclaredEstablishmentsRequest(declarant_siret=FIRM)).links,
        "link check": lambda c: c.relations.CheckDeclarationLink(pb.CheckDeclarationLinkRequest(
            declarant_siret=FIRM, declared_siret=siret, period=declared["period"])).linked,
        "employees": lambda c: c.relations.ListEmployees(pb.ListEmployeesRequest(
            siret=siret, period_start="19000101", period_end="29991231")).employments,
        "employment check": lambda c: c.relations.CheckEmployment(pb.CheckEmploymentRequest(
            siret=siret, nir=nir, date="29991231")).employed,
    }  # fmt: skip


# Who may ask what: the firm declared the establishment (implicit mandate), the company is its
# employer, one organism's grant covers everything; nobody else obtains anything.
ALLOWED = {
    "firm": {"declared establishments", "link check", "employees", "employment check"},
    "company": {"link check", "employees", "employment check"},
    "organism granted": {"declared establishments", "link check", "employees", "employment check"},
}
UNAUTHENTICATED = {"expired chain", "revoked chain"}


def test_every_query_as_every_caller_leaks_nothing(
    declared: dict[str, Any], callers: dict[str, Client]
) -> None:
    queries = _queries(declared)
    for who, client in callers.items():
        for what, query in queries.items():
            if what in ALLOWED.get(who, set()):
                answer = query(client)
                assert answer, (who, what)
                continue
            expected = Unauthenticated if who in UNAUTHENTICATED else PermissionDenied
            with pytest.raises(expected) as refused:
                query(client)
            # The refusal says nothing of the data: no NIR, no link, whatever exists.
            assert declared["nirs"][0] not in refused.value.message, (who, what)


def test_a_valid_dsn_records_links_and_employments(
    declared: dict[str, Any], callers: dict[str, Client]
) -> None:
    firm = callers["firm"]
    links = firm.relations.ListDeclaredEstablishments(
        pb.ListDeclaredEstablishmentsRequest(declarant_siret=FIRM)).links  # fmt: skip
    (link,) = [l for l in links if l.declared_siret == declared["siret"]]  # noqa: E741
    assert link.first_period == link.last_period == declared["period"]
    assert link.last_deposit_id == declared["deposit"]
    assert link.live and link.ended_period == ""
    before = firm.relations.CheckDeclarationLink(pb.CheckDeclarationLinkRequest(
        declarant_siret=FIRM, declared_siret=declared["siret"], period="200001"))  # fmt: skip
    assert not before.linked and before.link.declared_siret == declared["siret"]
    # Every employee, over pages, each NIR once.
    seen, token = [], ""
    while True:
        page = firm.relations.ListEmployees(pb.ListEmployeesRequest(
            siret=declared["siret"], period_start="19000101", period_end="29991231",
            page_size=5, page_token=token))  # fmt: skip
        seen += [e.nir for e in page.employments]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(declared["nirs"]) and len(seen) == EMPLOYEES
    # Employed from the contract's start, not before.
    ask = pb.CheckEmploymentRequest(siret=declared["siret"], nir=declared["nirs"][0])
    ask.date = declared["first_start"]
    assert firm.relations.CheckEmployment(ask).employed
    ask.date = "19000101"
    assert not firm.relations.CheckEmployment(ask).employed
    ask.nir, ask.date = "1010101010101", "29991231"
    assert not firm.relations.CheckEmployment(ask).employed


def test_nirs_are_sealed_at_rest_and_survive_a_key_rotation(
    node: RunningNode, declared: dict[str, Any], tmp_path: Path
) -> None:
    engine = node.node.engine
    with engine.connect() as connection:
        rows = connection.execute(select(employments)).all()
    stored = b"".join(bytes(r.nir_sealed) + bytes(r.nir_hash) + r.nir_key.encode() for r in rows)
    assert all(nir.encode() not in stored for nir in declared["nirs"])
    old = node.node.relations.keyring
    keyring_file = tmp_path / "nir.keyring"
    secret = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # 32 bytes of "A", a test key
    old_lines = node.settings.nir_keyring_path.read_text()
    keyring_file.write_text(old_lines + f"k2 {secret}\n")
    rotated = RelationsStore(engine, NirKeyring.load_or_create(keyring_file))
    nir = declared["nirs"][1]
    assert rotated.employed(declared["siret"], nir, "29991231") is not None  # old key still read
    assert rotated.rekey(batch=5) >= EMPLOYEES
    with engine.connect() as connection:
        assert set(connection.execute(select(employments.c.nir_key)).scalars()) == {"k2"}
    assert rotated.employed(declared["siret"], nir, "29991231") is not None
    assert rotated.rekey() == 0
    # Once the old key is retired, a store holding only it finds nothing any more.
    assert RelationsStore(engine, old).employed(declared["siret"], nir, "29991231") is None
    # Back to the node's key for the other tests.
    back = RelationsStore(engine, NirKeyring.parse(f"k2 {secret}\n" + old_lines))
    assert back.rekey() >= EMPLOYEES


def test_history_files_load_in_bulk_bad_lines_reported_and_a_second_load_changes_nothing(
    node: RunningNode, callers: dict[str, Client], tmp_path: Path
) -> None:
    declarant, client = siret_of(siren_at(40), 1), siret_of(siren_at(41), 2)
    links, jobs = tmp_path / "links.csv", tmp_path / "employments.csv"
    with links.open("w") as out:
        write_csv(out, LINK_COLUMNS, [
            (declarant, client, "202301", "202412"),
            (declarant, "12345678901234", "202301", "202312"),  # bad key
            (declarant, client, "202413", "202501"),  # bad month
        ])  # fmt: skip
    secret_nir = "2850575123456"
    with jobs.open("w") as out:
        write_csv(out, EMPLOYMENT_COLUMNS, [
            (client, "1850575123456", "20230101", ""),
            (client, secret_nir[:-1] + "X", "20230101", ""),  # malformed NIR
            (client, "1850575123457", "20240101", "20231231"),  # ends before it starts
            ("only,three", "columns"),
        ])  # fmt: skip
    env = {**os.environ, "INTEROPS_DATABASE_URL": node.node.engine.url.render_as_string(False),
           "INTEROPS_NIR_KEYRING": str(node.settings.nir_keyring_path)}  # fmt: skip
    command = [sys.executable, "-m", "clients.cli", "relations", "load", "--links", str(links),
               "--employments", str(jobs)]  # fmt: skip
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                           check=False)  # fmt: skip
    assert first.returncode == 1, first.stderr
    assert "links: 3 lines, 1 rows added or changed, 2 refused" in first.stdout
    assert "employments: 4 lines, 1 rows added or changed, 3 refused" in first.stdout
    assert "line 3: declared_siret is not a valid SIRET" in first.stdout
    assert "line 3: nir is not a 13-character NIR" in first.stdout
    assert secret_nir[:-1] not in first.stdout + first.stderr
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                           check=False)  # fmt: skip
    assert "links: 3 lines, 0 rows added" in again.stdout
    assert "employments: 4 lines, 0 rows added" in again.stdout
    organism = callers["organism granted"]
    checked = organism.relations.CheckDeclarationLink(pb.CheckDeclarationLinkRequest(
        declarant_siret=declarant, declared_siret=client, period="202406"))  # fmt: skip
    assert checked.linked and checked.link.last_deposit_id == ""
    assert organism.relations.CheckEmployment(pb.CheckEmploymentRequest(
        siret=client, nir="1850575123456", date="20250101")).employed  # fmt: skip
