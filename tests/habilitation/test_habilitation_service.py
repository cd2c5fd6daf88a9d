"""interops.habilitation.v1 through a real node: registrations proven by a postal letter's key or
an administrator's validation, plus the e-mail's code, answering the same whether an account
exists; declarants, portfolios and habilitations managed by administrators only
and for their own company, bulk files applied in order with a per-line report, an export that
imports as no change, access decisions for the three cases, and the administrators' CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interops.habilitation.v1 import habilitation_pb2 as pb
from interops.notify.v1 import notify_pb2
from interops.operation.v1 import operation_pb2 as op
from sqlalchemy import select

from clients.client import Client
from clients.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from registry.dsn.revealed_relations import Employment
from registry.habilitation.store import HabilitationStore
from registry.letters.store import LetterStore
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.relations.store import Link
from registry.trust.schema import declarants
from server.notify.dispatch import MailSettings
from tests.mailbox import Mailbox, smtp_server
from tests.registry_rows import in_registry
from tests.running_node import RunningNode

HABILITATION = "interops.habilitation.v1.HabilitationService"
NOTIFY = "interops.notify.v1.NotificationService"
FIRM, CLIENT, OTHER = siren_at(70), siren_at(71), siren_at(72)
NOT_IN_REGISTRY = siret_of(siren_at(73), 1)
NIR = "1850575123456"


def _identity(
    siret: str, last: str, first: str = "Alex", password: str = "long password"
) -> pb.Identity:
    return pb.Identity(siret=siret, last_name=last, first_name=first, password=password,
                       email=f"{last.lower()}.{first.lower()}@{siret}.example")  # fmt: skip


@pytest.fixture(scope="module")
def mailbox(database_url: str) -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


@pytest.fixture(scope="module")
def node(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[Mailbox, int]
) -> Iterator[RunningNode]:
    """A node whose e-mail goes to the test's SMTP server."""
    running = RunningNode(database_url, tmp_path_factory.mktemp("data"),
                          mail=MailSettings(port=mailbox[1]))  # fmt: skip
    yield running
    running.stop()


def _letter_key(node: RunningNode, siret: str) -> str:
    """The activation key of the letter just posted to the establishment (the mail room's)."""
    store = node.node.habilitations
    assert store.sealer is not None
    taken = LetterStore(store.engine, store.sealer).take_batch(f"b{time.monotonic_ns()}")
    (letter,) = [letter for letter in taken if letter.siret == siret]
    found = re.search(r"activation[^:]*: (\S+)", letter.body)
    assert found is not None
    return found.group(1)


def _register_proven(
    node: RunningNode, anonymous: Client, box: Mailbox, identity: pb.Identity
) -> int:
    """Registers an administrator, then proves it: its e-mail's code (which sends the letter),
    then its letter's key with its password."""
    calls = anonymous.habilitations
    calls.RegisterCompany(pb.RegisterCompanyRequest(identity=identity))
    calls.ConfirmEmail(pb.ConfirmEmailRequest(code=box.code_sent_to(identity.email)))
    key = _letter_key(node, identity.siret)
    request = pb.ActivateAdministratorRequest(activation_key=key, identity=identity)
    return int(calls.ActivateAdministrator(request).account_id)


def _signed_in(node: RunningNode, siret: str, last: str, first: str = "Alex") -> Client:
    chain = node.sign_in(siret, last, first, "long password", audience=[HABILITATION, NOTIFY])
    return Client(node.address, credentials=chain, timeout=30)


@pytest.fixture(scope="module")
def anonymous(node: RunningNode) -> Iterator[Client]:
    in_registry(node.node.engine, [siret_of(s, n) for s in (FIRM, CLIENT, OTHER)
                                   for n in (1, 2, 3)])  # fmt: skip
    # The client company gave the firm a mandate for its establishments: the firm may hold
    # them in its portfolios (registry/habilitation/managed.py).
    store = HabilitationStore(node.node.engine)
    client_admin = store.register_company(siret_of(CLIENT, 1), ("Client", "Admin"), "password")
    for n in (1, 2, 3):
        store.grant_mandate(client_admin, siret_of(CLIENT, n), FIRM)
    with Client(node.address, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin(node: RunningNode, anonymous: Client, mailbox: tuple[Mailbox, int]) -> Iterator[Client]:
    identity = _identity(siret_of(FIRM, 1), "Moreau", "Lina")
    request = pb.RegisterCompanyRequest(identity=identity, request_id="register-1")
    assert anonymous.habilitations.RegisterCompany(request) == pb.RegisterCompanyResponse()
    anonymous.habilitations.RegisterCompany(request)  # a retry: no second letter nor e-mail
    code = mailbox[0].code_sent_to(identity.email)
    assert len(mailbox[0].to(identity.email)) == 1
    with pytest.raises(Unauthenticated) as waiting:  # no rights until proven
        _signed_in(node, identity.siret, "Moreau", "Lina")
    assert waiting.value.reason == "ACCOUNT_INACTIVE"
    calls = anonymous.habilitations
    calls.ConfirmEmail(pb.ConfirmEmailRequest(code=code))
    key = _letter_key(node, identity.siret)
    calls.ActivateAdministrator(pb.ActivateAdministratorRequest(activation_key=key,
                                                                identity=identity))  # fmt: skip
    with _signed_in(node, siret_of(FIRM, 1), "Moreau", "Lina") as client:
        yield client


@pytest.fixture(scope="module")
def declarant(admin: Client) -> int:
    request = pb.CreateDeclarantRequest(identity=_identity(siret_of(FIRM, 1), "Roche", "Eva"),
                                        request_id="create-eva")  # fmt: skip
    created = admin.habilitations.CreateDeclarant(request).account_id
    assert admin.habilitations.CreateDeclarant(request).account_id == created  # a retry
    admin.habilitations.CreatePortfolio(pb.CreatePortfolioRequest(name="Clients"))
    admin.habilitations.UpdatePortfolio(pb.UpdatePortfolioRequest(
        name="Clients", add_sirets=[siret_of(CLIENT, 1), siret_of(CLIENT, 2)],
        add_services=["ATMP", "DUCS"]))  # fmt: skip
    return int(created)


def test_registration_is_proven_and_tells_nobody_whether_an_account_exists(
    node: RunningNode, anonymous: Client, admin: Client, mailbox: tuple[Mailbox, int]
) -> None:
    box = mailbox[0]
    calls = anonymous.habilitations
    with pytest.raises(InvalidArgument) as unknown:
        calls.RegisterCompany(pb.RegisterCompanyRequest(identity=_identity(NOT_IN_REGISTRY, "X")))
    assert unknown.value.reason == "UNKNOWN_SIRET"
    with pytest.raises(InvalidArgument):  # the contract: a password of 8 characters at least
        calls.RegisterCompany(pb.RegisterCompanyRequest(
            identity=_identity(siret_of(OTHER, 1), "Court", password="short")))  # fmt: skip
    with pytest.raises(InvalidArgument) as no_email:
        calls.RegisterCompany(pb.RegisterCompanyRequest(identity=pb.Identity(
            siret=siret_of(OTHER, 1), last_name="Sans", first_name="Mail",
            password="long password")))  # fmt: skip
    assert no_email.value.reason == "EMAIL_REQUIRED"
    # The attack of a plain declarant: its company's official letters through notifications.
    admin.notify.Subscribe(notify_pb2.SubscribeRequest(subscription=notify_pb2.Subscription(
        siren=FIRM, topic=notify_pb2.TOPIC_OFFICIAL_LETTER,
        channels=[notify_pb2.CHANNEL_API])))  # fmt: skip
    candidate = _identity(siret_of(FIRM, 2), "Garcia", "Ana")
    applied = calls.ApplyAsAdministrator(pb.ApplyAsAdministratorRequest(identity=candidate))
    # A triplet with an active account answers exactly the same, with an e-mail alike.
    moreau = _identity(siret_of(FIRM, 1), "Moreau", "Lina")
    existing = calls.ApplyAsAdministrator(pb.ApplyAsAdministratorRequest(identity=pb.Identity(
        siret=moreau.siret, last_name="Moreau", first_name="Lina", password="not my password",
        email=candidate.email.replace("garcia", "prober"))))  # fmt: skip
    assert applied == existing == pb.ApplyAsAdministratorResponse()
    code = box.code_sent_to(candidate.email)
    probe = box.code_sent_to(candidate.email.replace("garcia", "prober"))
    texts = [box.to(address)[-1].get_content() for address in
             (candidate.email, candidate.email.replace("garcia", "prober"))]  # fmt: skip
    assert texts[0].replace(code, "C") == texts[1].replace(probe, "C")
    assert calls.ConfirmEmail(pb.ConfirmEmailRequest(code=probe)) == pb.ConfirmEmailResponse()
    with _signed_in(node, siret_of(FIRM, 1), "Moreau", "Lina"):  # nothing changed for Moreau
        pass
    calls.ConfirmEmail(pb.ConfirmEmailRequest(code=code))  # the letter goes now
    key = _letter_key(node, siret_of(FIRM, 2))
    time.sleep(0.5)  # what a notification would have had time to bring
    fetched = admin.notify.FetchNotifications(notify_pb2.FetchNotificationsRequest())
    assert all(key not in n.body and code not in n.body for n in fetched.notifications)
    with pytest.raises(Unauthenticated) as waiting:
        _signed_in(node, siret_of(FIRM, 2), "Garcia", "Ana")
    assert waiting.value.reason == "ACCOUNT_INACTIVE"
    # The administrator sees whom it would validate.
    listed = {a.id: a.email for a in admin.list_accounts()}
    assert candidate.email in listed.values()

    def activate(activation_key: str, identity: pb.Identity) -> pb.ActivateAdministratorResponse:
        request = pb.ActivateAdministratorRequest(activation_key=activation_key, identity=identity)
        answer: pb.ActivateAdministratorResponse = calls.ActivateAdministrator(request)
        return answer

    for wrong_key, who in (
        (key + "x", candidate),
        (key, moreau),
        (key, _identity(candidate.siret, "Garcia", "Ana", "guessed pw")),
    ):
        with pytest.raises(PermissionDenied) as bad:  # fmt: skip
            activate(wrong_key, who)
        assert bad.value.reason == "BAD_ACTIVATION_KEY"
    activated = activate(key, candidate)
    assert listed[activated.account_id] == candidate.email
    with pytest.raises(PermissionDenied):  # single use
        activate(key, candidate)
    with _signed_in(node, siret_of(FIRM, 2), "Garcia", "Ana") as second_admin:
        accounts = list(second_admin.list_accounts())
    # Its company's administrators see each account's names, kept sealed at rest.
    assert ("Garcia", "Ana") in {(a.last_name, a.first_name) for a in accounts}
    with node.node.engine.connect() as connection:
        rows = connection.execute(select(declarants)).all()
    assert not any(b"Garcia" in value for row in rows for value in row
                   if isinstance(value, bytes))  # fmt: skip
    assert not any("Garcia" in value for row in rows for value in row if isinstance(value, str))
    assert [(a.role, a.status) for a in accounts[:2]] == [
        (pb.ROLE_ADMINISTRATOR, pb.ACCOUNT_STATUS_ACTIVE)
    ] * 2
    acts = [a.act for a in admin.habilitations.ListAdminActs(pb.ListAdminActsRequest()).acts]
    assert acts[:7] == ["REGISTER", "CONFIRM_EMAIL", "ACTIVATE_ADMIN", "APPLY",
                        "CONFIRM_EMAIL", "CONFIRM_EMAIL", "ACTIVATE_ADMIN"]  # fmt: skip


def test_only_an_administrator_manages_and_only_its_own_company(
    node: RunningNode,
    anonymous: Client,
    admin: Client,
    declarant: int,
    mailbox: tuple[Mailbox, int],
) -> None:
    with _signed_in(node, siret_of(FIRM, 1), "Roche", "Eva") as plain:
        with pytest.raises(PermissionDenied) as refused:  # its chain holds no manage right
            plain.habilitations.CreateDeclarant(pb.CreateDeclarantRequest(
                identity=_identity(siret_of(FIRM, 1), "Faure")))  # fmt: skip
        assert refused.value.reason == "MISSING_GRANT"
    _register_proven(node, anonymous, mailbox[0], _identity(siret_of(OTHER, 1), "Blanc", "Luc"))
    with _signed_in(node, siret_of(OTHER, 1), "Blanc", "Luc") as stranger:
        grant = pb.GrantHabilitationRequest(habilitation=pb.Habilitation(
            account_id=declarant, siret=siret_of(CLIENT, 1), service="ATMP"))  # fmt: skip
        with pytest.raises(NotFound) as elsewhere:
            stranger.habilitations.GrantHabilitation(grant)
        assert elsewhere.value.reason == "UNKNOWN_DECLARANT"
        with pytest.raises(PermissionDenied):  # a declarant of another company
            stranger.habilitations.CreateDeclarant(pb.CreateDeclarantRequest(
                identity=_identity(siret_of(FIRM, 1), "Intrus")))  # fmt: skip
        assert list(stranger.list_habilitations()) == []
        assert {a.siret[:9] for a in stranger.list_accounts()} == {OTHER}
    # An administrator struck off: its live chain ends at once (a cutoff for its subject).
    leaving_identity = _identity(siret_of(FIRM, 3), "Leaving", "Ada")
    anonymous.habilitations.ApplyAsAdministrator(
        pb.ApplyAsAdministratorRequest(identity=leaving_identity)
    )
    anonymous.habilitations.ConfirmEmail(
        pb.ConfirmEmailRequest(code=mailbox[0].code_sent_to(leaving_identity.email))
    )
    leaving = next(
        a.id
        for a in admin.list_accounts()
        if a.siret == siret_of(FIRM, 3) and a.status == pb.ACCOUNT_STATUS_CANDIDATE
    )
    admin.habilitations.ValidateCandidate(pb.ValidateCandidateRequest(account_id=leaving))
    with _signed_in(node, siret_of(FIRM, 3), "Leaving", "Ada") as gone:
        assert list(gone.list_accounts())
        admin.habilitations.StrikeOff(pb.StrikeOffRequest(account_id=leaving))
        with pytest.raises(Unauthenticated) as struck:
            list(gone.list_accounts())
        assert struck.value.reason == "REVOKED"


def test_portfolios_and_habilitations_feed_the_declarants_token(
    node: RunningNode, anonymous: Client, admin: Client, declarant: int
) -> None:
    calls = admin.habilitations
    with pytest.raises(InvalidArgument) as unknown:
        calls.UpdatePortfolio(
            pb.UpdatePortfolioRequest(name="Clients", add_sirets=[NOT_IN_REGISTRY])
        )
    assert unknown.value.reason == "UNKNOWN_SIRET"
    grant = pb.GrantHabilitationRequest(habilitation=pb.Habilitation(
        account_id=declarant, siret=siret_of(CLIENT, 1), service="ATMP"))  # fmt: skip
    assert calls.GrantHabilitation(grant).changed
    assert not calls.GrantHabilitation(grant).changed
    outside = pb.GrantHabilitationRequest(habilitation=pb.Habilitation(
        account_id=declarant, siret=siret_of(CLIENT, 3), service="ATMP"))  # fmt: skip
    with pytest.raises(FailedPrecondition) as not_offered:
        calls.GrantHabilitation(outside)
    assert not_offered.value.reason == "NOT_IN_A_PORTFOLIO"
    eva = node.sign_in(siret_of(FIRM, 1), "Roche", "Eva", "long password",
                       audience=[HABILITATION])  # fmt: skip
    with Client(node.address) as anon:
        principal = anon.verify_token(eva.token, HABILITATION, eva.holder)
    atmp = [g for g in principal.grants if g.right == "service.atmp"]
    assert [list(g.sirets) for g in atmp] == [[siret_of(CLIENT, 1)]]
    pages, request = [], pb.ListHabilitationsRequest(page_size=1)
    while True:
        page = calls.ListHabilitations(request)
        pages.append(list(page.habilitations))
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert [h.siret for page in pages for h in page] == [siret_of(CLIENT, 1)]


def _bulk(admin: Client, text: str, request_id: str = "") -> op.Operation:
    return admin.import_habilitations(text.encode(), request_id)


def _result(operation: op.Operation) -> pb.ImportHabilitationsResult:
    assert operation.state == op.OPERATION_STATE_SUCCEEDED, operation.error.message
    result = pb.ImportHabilitationsResult()
    operation.result.Unpack(result)
    return result


def test_bulk_files_apply_in_order_report_bad_lines_and_export_round_trips(
    node: RunningNode, admin: Client, declarant: int
) -> None:
    target = f"{declarant},{siret_of(CLIENT, 3)},DUCS,"
    first = _bulk(admin, "action,account,siret,service,portfolio\n"
                  "CREATE_PORTFOLIO,,,,Bulk\n"
                  f"ADD_ESTABLISHMENT,,{siret_of(CLIENT, 3)},,Bulk\n"
                  "ADD_SERVICE,,,DUCS,Bulk\n"
                  f"GRANT,{target}\n"
                  "ADD_ESTABLISHMENT,,12345678901234,,Bulk\n"  # bad check digit
                  f"ADD_ESTABLISHMENT,,{NOT_IN_REGISTRY},,Bulk\n"
                  f"GRANT,999999,{siret_of(CLIENT, 3)},DUCS,\n"
                  "GRANT,only two\n"
                  "PROMOTE,,,,Bulk\n", request_id="bulk-1")  # fmt: skip
    # Queued before the first is applied: applied after it, so the habilitation ends revoked.
    second = _bulk(admin, f"action,account,siret,service,portfolio\nREVOKE,{target}\n")
    assert (
        _bulk(admin, "action,account,siret,service,portfolio\n", request_id="bulk-1").name
        == first.name
    )  # a retry queues nothing
    done_first = admin.wait_bulk_operation(first.name, timeout=60)
    report = _result(done_first)
    assert (report.lines_read, report.lines_changed, report.lines_rejected) == (9, 4, 5)
    assert [(r.line_number, r.reason) for r in report.rejected_lines] == [
        (6, "UNKNOWN_SIRET"), (7, "UNKNOWN_SIRET"), (8, "UNKNOWN_DECLARANT"),
        (9, "MALFORMED_LINE"), (10, "UNKNOWN_ACTION")]  # fmt: skip
    assert _result(admin.wait_bulk_operation(second.name, timeout=60)).lines_changed == 1
    held = {(h.account_id, h.siret, h.service) for h in admin.list_habilitations()}
    assert (declarant, siret_of(CLIENT, 3), "DUCS") not in held
    assert (declarant, siret_of(CLIENT, 1), "ATMP") in held

    exported = admin.export_habilitations()
    assert exported.startswith(b"action,account,siret,service,portfolio\n")
    assert f"ADD_ESTABLISHMENT,,{siret_of(CLIENT, 3)},,Bulk".encode() in exported
    again = _result(admin.wait_bulk_operation(
        admin.import_habilitations(exported).name, timeout=60))  # fmt: skip
    assert again.lines_read == exported.count(b"\n") - 1
    assert (again.lines_changed, again.lines_rejected) == (0, 0)
    assert admin.export_habilitations() == exported

    with pytest.raises(InvalidArgument) as headless:
        _bulk(admin, f"GRANT,{target}\n")
    assert headless.value.reason == "MALFORMED_FILE"
    with _signed_in(node, siret_of(OTHER, 1), "Blanc", "Luc") as stranger, pytest.raises(NotFound):
        stranger.habilitations.GetBulkOperation(pb.GetBulkOperationRequest(name=first.name))


def test_check_access_decides_the_three_cases_and_never_names_a_nir(
    node: RunningNode, admin: Client, declarant: int
) -> None:
    relations = node.node.relations
    relations.record_links([Link(siret_of(FIRM, 1), siret_of(CLIENT, 1), "202501", "202510", "")])
    relations.record_employments([Employment(siret_of(CLIENT, 1), NIR, "20200101", "")])
    grant = pb.GrantHabilitationRequest(habilitation=pb.Habilitation(
        account_id=declarant, siret=siret_of(CLIENT, 1), service="ATMP"))  # fmt: skip
    admin.habilitations.GrantHabilitation(grant)

    def check(client: Client, service: str, sirets: list[str], **more: Any) -> Any:
        return client.habilitations.CheckAccess(
            pb.CheckAccessRequest(service=service, sirets=sirets, **more)
        )

    with _signed_in(node, siret_of(FIRM, 1), "Roche", "Eva") as eva:
        assert check(eva, "DSN", [siret_of(CLIENT, 1)]).allowed  # inherited from the DSN
        refused = check(eva, "DSN", [siret_of(OTHER, 2)])
        assert [(r.subject, r.reason) for r in refused.refusals] == [
            (siret_of(OTHER, 2), "NOT_DECLARED_BY_YOUR_COMPANY")
        ]
        employee = pb.Employee(siret=siret_of(CLIENT, 1), nir=NIR)
        assert check(eva, "ATMP", [siret_of(CLIENT, 1)], employees=[employee],
                     date="20250301").allowed  # fmt: skip
        stranger = pb.Employee(siret=siret_of(CLIENT, 1), nir="2850575123456")
        refused = check(eva, "ATMP", [siret_of(CLIENT, 1)], employees=[stranger],
                        date="20250301")  # fmt: skip
        assert [(r.subject, r.reason) for r in refused.refusals] == [
            ("employee #1", "EMPLOYEE_NOT_IN_ESTABLISHMENT")
        ]
        assert "2850575123456" not in str(refused)
        # BONUS-MALUS is operable by others: inherited where declared, else habilitation.
        assert check(eva, "BONUS-MALUS", [siret_of(CLIENT, 1)]).allowed
        assert not check(eva, "BONUS-MALUS", [siret_of(OTHER, 2)]).allowed
        with pytest.raises(InvalidArgument) as no_date:
            check(eva, "ATMP", [siret_of(CLIENT, 1)], employees=[employee])
        assert no_date.value.reason == "DATE_REQUIRED"
    organism = node.organism("URSSAF-HAB")
    credentials = node.credentials(organism, (HABILITATION,))
    with Client(node.address, credentials=credentials) as urssaf, pytest.raises(PermissionDenied):
        check(urssaf, "DSN", [siret_of(CLIENT, 1)])  # an organism's own chain names no declarant


def _cli(node: RunningNode, token_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", "--address", node.address,
         "--token", f"@{token_file}", "--holder-key", str(token_file.with_suffix(".key")),
         "habilitation", *args],
        check=False, capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip


def test_the_administrators_command_line(
    node: RunningNode, admin: Client, declarant: int, tmp_path: Path
) -> None:
    token_file = tmp_path / "admin.token"
    issued = subprocess.run(
        [sys.executable, "-m", "clients.cli", "--address", node.address,
         "--holder-key", str(token_file.with_suffix(".key")), "token", "issue",
         "--declarant", siret_of(FIRM, 1), "--last-name", "Moreau", "--first-name", "Lina",
         "--audience", HABILITATION],
        check=False, capture_output=True, text=True, timeout=60,
        env={**os.environ, "INTEROPS_PASSWORD": "long password"},
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    token_file.write_text(issued.stdout.strip())
    granted = _cli(node, token_file, "grant", str(declarant), siret_of(CLIENT, 2), "ducs")
    assert (granted.returncode, granted.stdout.strip()) == (0, "granted"), granted.stderr
    listed = _cli(node, token_file, "list", "--account", str(declarant))
    assert f"{declarant}\t{siret_of(CLIENT, 2)}\tDUCS" in listed.stdout.splitlines()
    revoked = _cli(node, token_file, "revoke", str(declarant), siret_of(CLIENT, 2), "DUCS")
    assert revoked.stdout.strip() == "revoked"
    assert _cli(node, token_file, "revoke", str(declarant), siret_of(CLIENT, 2),
                "DUCS").stdout.strip() == "not held"  # fmt: skip
    export = tmp_path / "habilitations.csv"
    assert _cli(node, token_file, "export", "--out", str(export)).returncode == 0
    imported = _cli(node, token_file, "import", str(export))
    assert imported.returncode == 0, imported.stderr
    assert " 0 changed, 0 rejected" in imported.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(f"action,account,siret,service,portfolio\nGRANT,{declarant},1,DUCS,\n")
    refused = _cli(node, token_file, "import", str(bad))
    assert refused.returncode == 1
    assert "line 2: UNKNOWN_SIRET" in refused.stdout
    denied = _cli(node, tmp_path / "admin.token", "grant", str(declarant), NOT_IN_REGISTRY, "X")
    assert denied.returncode == 1 and "error:" in denied.stderr
    # Mandates: those the firm received from its client, one it gives and ends.
    received = _cli(node, token_file, "mandates").stdout.splitlines()
    assert [line.split("\t")[:2] for line in received] == [
        [siret_of(CLIENT, n), FIRM] for n in (1, 2, 3)
    ]
    given = ("mandate", "grant", siret_of(FIRM, 2), OTHER)
    assert _cli(node, token_file, *given).stdout.strip() == "granted"
    ended = _cli(node, token_file, "mandate", "end", siret_of(FIRM, 2), OTHER)
    assert ended.stdout.strip() == "ended"


def test_a_file_interrupted_by_a_stop_is_applied_by_the_next_start(
    node: RunningNode, admin: Client, declarant: int, database_url: str, tmp_path: Path
) -> None:
    from registry.habilitation.bulk import BulkQueue

    grant = f"GRANT,{declarant},{siret_of(CLIENT, 2)},DUCS,"
    operation = _bulk(admin, f"action,account,siret,service,portfolio\n{grant}\n")
    node.run(node.node.bulk_worker.stop())  # the worker stops before (or while) applying it
    queue = BulkQueue(node.node.engine)
    claimed = queue.take_next()  # as a process that died mid-file leaves it: claimed, not done
    assert claimed is None or claimed.operation_id == operation.name.removeprefix("operations/")
    held = {(h.account_id, h.siret, h.service) for h in admin.list_habilitations()}
    if claimed is not None:
        assert (declarant, siret_of(CLIENT, 2), "DUCS") not in held
    restarted = RunningNode(database_url, tmp_path / "second")
    try:
        admin_again = restarted.sign_in(siret_of(FIRM, 1), "Moreau", "Lina", "long password",
                                        audience=[HABILITATION])  # fmt: skip
        with Client(restarted.address, credentials=admin_again) as again:
            done = again.wait_bulk_operation(operation.name, timeout=60)
            assert _result(done).lines_rejected == 0
            held = {(h.account_id, h.siret, h.service) for h in again.list_habilitations()}
        assert (declarant, siret_of(CLIENT, 2), "DUCS") in held
    finally:
        restarted.stop()
        node.run(node.node.bulk_worker.start())


# Last: its guesses use up this address's sign-in attempts for a minute.
def test_guessing_activation_keys_is_limited_per_address(anonymous: Client) -> None:
    calls = anonymous.habilitations
    reasons = set()
    for guess in range(30):
        try:
            calls.ActivateAdministrator(pb.ActivateAdministratorRequest(
                activation_key=f"guess-{guess:04d}-xxxx",
                identity=_identity(siret_of(FIRM, 2), f"Guess{guess}")))  # fmt: skip
        except (PermissionDenied, ResourceExhausted) as refused:
            reasons.add(refused.reason)
    assert reasons == {"BAD_ACTIVATION_KEY", "TOO_MANY_ATTEMPTS"}
