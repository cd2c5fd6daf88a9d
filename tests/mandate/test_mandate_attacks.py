"""The attacker review of issue 24, each finding replayed through a real node on each database:
a request id reused for another mandate, a firm with only a DSN declared link, references
squatted across companies, pending mandates shown to creditors, extraction floods, foreign or
mismatched bank details, references with "/", signature dates out of the SEPA era."""

from __future__ import annotations

import functools
import io
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from interops.mandate.v1 import mandate_pb2 as pb
from interops.operation.v1 import operation_pb2 as op
from pypdf import PdfReader
from sqlalchemy import insert, update

from clients.errors import InteropsError
from registry.habilitation.access_decision import decide
from registry.habilitation.declarant_rights import declarant_rights
from registry.habilitation.schema import habilitations
from registry.habilitation.store import HabilitationRefused, HabilitationStore
from registry.kernel.blob_store import PARTIAL_AFTER_SECONDS, FileBlobs
from registry.kernel.clock import now_ms
from registry.kernel.nir_keyring import NirKeyring
from registry.kernel.rights import MANDATE_MANAGE, SERVICE_ATMP
from registry.mandate.store import MandateStore, lapse_cutoff
from registry.operation.schema import operations as operations_table
from registry.operation.store import OperationState, OperationStore
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.relations.schema import declared_links
from registry.relations.store import RelationsStore
from server.mandate.extractions import EXTRACT_KIND, EXTRACT_WORKERS, RETENTION_DAYS, file_name
from tests.blob_layers import layers
from tests.mandate.test_mandates import (
    BIC,
    CLIENT_SIRET,
    IBAN,
    OTHER_IBAN,
    PASSWORD,
    SIGNED,
    STRANGER_CLIENT_SIRET,
    World,
    _create,
    _refusal,
    _sign_in,
)
from tests.registry_rows import in_registry

INTRUDER = siren_at(90)


def test_a_request_id_reused_for_another_mandate_is_refused(world: World) -> None:
    first = _create(world.payer, f"{CLIENT_SIRET[:9]}-RID-1", request_id="rid-same")
    assert _refusal(
        lambda: world.payer.create_mandate(
            creditor="CNAV",
            reference=f"{CLIENT_SIRET[:9]}-RID-2",
            debtor=CLIENT_SIRET,
            iban=OTHER_IBAN,
            bic=BIC,
            signed_on=SIGNED,
            request_id="rid-same",
        )
    ) == ("ALREADY_EXISTS", "REQUEST_ID_REUSED")
    # Only the IBAN differs: refused too (the earlier IBAN is not answered to a guess).
    assert _refusal(
        lambda: _create(world.payer, first.reference, iban=OTHER_IBAN, request_id="rid-same")
    ) == ("ALREADY_EXISTS", "REQUEST_ID_REUSED")
    # The very same request still answers the first mandate.
    again = _create(world.payer, first.reference, request_id="rid-same")
    assert (again.create_time, again.iban) == (first.create_time, IBAN)


def test_a_dsn_link_alone_does_not_open_a_company_s_mandates(world: World, tmp_path: Path) -> None:
    """A firm that only declares the establishment in DSN (no mandate from the company) may not
    be habilitated into its bank data: neither its token nor CheckAccess carries MANDATS-SEPA."""
    _create(world.payer, f"{CLIENT_SIRET[:9]}-VICTIM")
    engine = world.node.node.engine
    in_registry(engine, [siret_of(INTRUDER, 1)])
    store = HabilitationStore(engine)
    admin = store.register_company(siret_of(INTRUDER, 1), ("Admin", "Intrus"), PASSWORD)
    with engine.begin() as connection:  # what the relations module records after one DSN
        connection.execute(insert(declared_links).values(
            declarant_siret=siret_of(INTRUDER, 1), declared_siret=CLIENT_SIRET,
            first_period="202611", last_period="202611", last_deposit="x", updated_at=1,
        ))  # fmt: skip
    store.create_portfolio(admin, "P")
    store.change_portfolio(admin, "P", add=True, sirets=(CLIENT_SIRET,),
                           services=("MANDATS-SEPA", "ATMP"))  # fmt: skip
    declarant = store.create_declarant(admin, siret_of(INTRUDER, 1), ("Intrus", "Alex"), PASSWORD)
    # The administrator may not even record the habilitation (the SPECIFIC service it may)...
    with pytest.raises(HabilitationRefused) as refused:
        store.grant(admin, declarant, CLIENT_SIRET, "MANDATS-SEPA")
    assert refused.value.reason == "NOT_MANAGED" and "explicit mandate" in str(refused.value)
    store.grant(admin, declarant, CLIENT_SIRET, "ATMP")
    # ...and a habilitation row recorded anyway (an older node let it be) still opens nothing.
    with engine.begin() as connection:
        connection.execute(insert(habilitations).values(
            declarant_id=declarant, siret=CLIENT_SIRET, service="MANDATS-SEPA", granted_by=admin,
            granted_at=now_ms(),
        ))  # fmt: skip
    rights = declarant_rights(engine, declarant)
    assert MANDATE_MANAGE not in rights  # ...while the DSN link still opens a SPECIFIC service
    assert rights[SERVICE_ATMP].includes_siret(CLIENT_SIRET)
    relations = RelationsStore(engine, NirKeyring.load_or_create(tmp_path / "nir.keyring"))
    assert not decide(relations, declarant, "MANDATS-SEPA", sirets=[CLIENT_SIRET]).allowed
    intruder = _sign_in(world.node, siret_of(INTRUDER, 1), ("Intrus", "Alex"))
    with intruder:
        assert _refusal(lambda: list(intruder.search_mandates(CLIENT_SIRET)))[0] == (
            "PERMISSION_DENIED"
        )
        # With the company's explicit mandate, the same firm may.
        client_admin = store.accounts_of(CLIENT_SIRET[:9])[0].id
        store.grant_mandate(client_admin, CLIENT_SIRET, INTRUDER)
        assert declarant_rights(engine, declarant)[MANDATE_MANAGE].includes_siret(CLIENT_SIRET)
        assert decide(relations, declarant, "MANDATS-SEPA", sirets=[CLIENT_SIRET]).allowed


def test_a_reference_outside_the_debtor_s_siren_is_refused(world: World) -> None:
    """References live in the debtor's SIREN space: another company's is neither squatted nor
    probed (MANDATE_REFERENCE_TAKEN would tell it exists)."""
    victim = _create(world.payer, f"{CLIENT_SIRET[:9]}-SECRET")
    for reference in (victim.reference, "RUM-FREE-FOR-ALL", f"X{CLIENT_SIRET[:9]}"):
        attempt = functools.partial(
            world.stranger.create_mandate, creditor="URSSAF", reference=reference,
            debtor=STRANGER_CLIENT_SIRET, iban=IBAN, bic=BIC, signed_on=SIGNED,
        )  # fmt: skip
        assert _refusal(attempt) == ("INVALID_ARGUMENT", "MANDATE_REFERENCE_NOT_DEBTORS")
    made = world.stranger.create_mandate(creditor="URSSAF", debtor=STRANGER_CLIENT_SIRET,
                                         iban=IBAN, bic=BIC, signed_on=SIGNED)  # fmt: skip
    assert made.reference.startswith(f"{STRANGER_CLIENT_SIRET[:9]}-IOPS-")


def _extracted(world: World, request_id: str) -> str:
    started = world.urssaf.extract_mandates(request_id=request_id)
    assert world.urssaf.wait_extraction(started.name, timeout=60).state == (
        op.OPERATION_STATE_SUCCEEDED
    )
    return b"".join(world.urssaf.download_extraction(started.name)).decode()


def test_creditors_see_a_mandate_only_once_acknowledged(world: World) -> None:
    """A pending mandate (never confirmed signed) reaches no creditor: not by get, search nor
    extraction; once acknowledged it does, and once revoked it still does, marked so."""
    reference = f"{CLIENT_SIRET[:9]}-NOT-YET"
    _create(world.payer, reference)
    assert _refusal(lambda: world.urssaf.get_creditor_mandate(reference)) == (
        "NOT_FOUND", "MANDATE_NOT_FOUND"
    )  # fmt: skip
    assert reference not in {m.reference for m in world.urssaf.search_creditor_mandates()}
    assert reference not in _extracted(world, "pending-1")
    world.payer.acknowledge_mandate("URSSAF", reference)
    assert world.urssaf.get_creditor_mandate(reference).state == pb.MANDATE_STATE_ACKNOWLEDGED
    world.payer.revoke_mandate("URSSAF", reference)
    assert world.urssaf.get_creditor_mandate(reference).state == pb.MANDATE_STATE_REVOKED
    assert f"{reference},{CLIENT_SIRET}," in _extracted(world, "pending-2")
    lines = [line for line in _extracted(world, "pending-3").splitlines()
             if line.startswith(reference)]  # fmt: skip
    assert len(lines) == 1 and ",REVOKED," in lines[0]


def test_a_pending_mandate_is_cancelled_by_its_debtor_and_never_reaches_a_creditor(
    world: World,
) -> None:
    reference = f"{CLIENT_SIRET[:9]}-CANCELLED"
    _create(world.payer, reference)
    cancelled = world.payer.revoke_mandate("URSSAF", reference)
    assert cancelled.state == pb.MANDATE_STATE_REVOKED and not cancelled.acknowledge_time.seconds
    assert _refusal(lambda: world.payer.acknowledge_mandate("URSSAF", reference)) == (
        "FAILED_PRECONDITION", "MANDATE_REVOKED"
    )  # fmt: skip
    assert _refusal(lambda: world.urssaf.get_creditor_mandate(reference)) == (
        "NOT_FOUND", "MANDATE_NOT_FOUND"
    )  # fmt: skip
    assert reference not in _extracted(world, "cancelled-1")


def test_extractions_run_one_per_creditor_are_purged_and_recovered(world: World) -> None:
    """A creditor flooding ExtractMandates gets its running extraction back, not a new one; the
    extractions run on their own bounded executor; a file is deleted after the retention; an
    extraction a dead node left unfinished is failed at the next start, freeing the turn."""
    node = world.node.node
    jobs = node.mandates.extractions
    assert jobs.executor._max_workers == EXTRACT_WORKERS  # not asyncio's default pool
    # A running extraction (as a busy or dead node leaves it): every request answers it.
    stuck, _ = OperationStore(node.engine).create(EXTRACT_KIND, "mandates", 0)
    assert jobs.store.claim_extraction(stuck.id, "URSSAF") == stuck.id
    names = {world.urssaf.extract_mandates(request_id=f"flood-{n}").name for n in range(5)}
    assert names == {f"operations/{stuck.id}"}
    # Found unfinished at a start: failed with a named reason, and the creditor's turn freed.
    assert jobs.interrupted_by_restart(stale_seconds=0) >= 1
    failed = world.urssaf.get_extraction(f"operations/{stuck.id}")
    assert failed.state == op.OPERATION_STATE_FAILED and "restart" in failed.error.message
    started = world.urssaf.extract_mandates(request_id="after-restart")
    assert started.name != f"operations/{stuck.id}"
    world.urssaf.wait_extraction(started.name, timeout=60)
    assert b"".join(world.urssaf.download_extraction(started.name))
    # What a writer killed mid-write left on disk goes at the purge, once old enough.
    left = [
        store.root / f"extractions/{age}.csv.sealed.1a2b.part"
        for store in layers(jobs.blobs) if isinstance(store, FileBlobs)
        for age in ("old", "new")
    ]  # fmt: skip
    for partial in left:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"cut short")
        if partial.name.startswith("old"):
            os.utime(partial, (time.time() - PARTIAL_AFTER_SECONDS - 60,) * 2)
    # Past the retention, the file is deleted and the download says so.
    later = now_ms() + (RETENTION_DAYS * 86_400 + 60) * 1000
    assert jobs.purge(now=later) >= 1
    assert [partial.name for partial in left if partial.exists()] == [
        partial.name for partial in left if partial.name.startswith("new")
    ]
    assert not jobs.blobs.exists(file_name(started.name.removeprefix("operations/")))
    assert _refusal(lambda: list(world.urssaf.download_extraction(started.name))) == (
        "FAILED_PRECONDITION",
        "EXPIRED",
    )


# IBAN, BIC -> the refusal (None: accepted).
BANK_DETAILS: dict[tuple[str, str], str | None] = {
    ("BR1800360305000010009795493C1", "BRASBRRJ"): "IBAN_NOT_SEPA",  # valid, not SEPA
    ("SA0380000000608010167519", "RJHISARI"): "IBAN_NOT_SEPA",
    ("DE89370400440532013000", "BNPAFRPP"): "BIC_COUNTRY_MISMATCH",
    (IBAN, "COBADEFF"): "BIC_COUNTRY_MISMATCH",
    ("DE89370400440532013000", "COBADEFF"): None,
    (IBAN, "BDAFGPGP"): None,  # a bank of Guadeloupe, under a FR IBAN
}


def test_only_sepa_ibans_with_a_bic_of_their_country_are_taken(world: World) -> None:
    outcomes: dict[tuple[str, str], str | None] = {}
    for number, (iban, bic) in enumerate(BANK_DETAILS):
        reference = f"{CLIENT_SIRET[:9]}-BANK-{number}"
        try:
            _create(world.payer, reference, iban=iban, bic=bic)
            outcomes[iban, bic] = None
        except InteropsError as error:
            outcomes[iban, bic] = error.reason
    assert outcomes == BANK_DETAILS


def test_signature_dates_are_of_the_sepa_era_and_unused_mandates_lapse(world: World) -> None:
    siren = CLIENT_SIRET[:9]
    assert _refusal(lambda: _create(world.payer, f"{siren}-OLD", signed_on="2009-10-31")) == (
        "INVALID_ARGUMENT", "BAD_SIGNATURE_DATE"
    )  # fmt: skip
    first_day = _create(world.payer, f"{siren}-SEPA-DAY-1", signed_on="2009-11-01")
    world.payer.acknowledge_mandate("URSSAF", first_day.reference)
    # Signed more than 36 months ago and never used: lapsed, and the extraction says so.
    assert world.urssaf.get_creditor_mandate(first_day.reference).lapsed
    assert f"{first_day.reference},{CLIENT_SIRET}," in _extracted(world, "lapse-1")
    line = next(line for line in _extracted(world, "lapse-2").splitlines()
                if line.startswith(first_day.reference))  # fmt: skip
    assert ",LAPSED," in line
    # A lapsed mandate pays nothing more: a use does not bring it back to life.
    assert _refusal(lambda: world.payer.use_mandate("URSSAF", first_day.reference, "DSN-LATE")) == (
        "FAILED_PRECONDITION", "MANDATE_LAPSED"
    )  # fmt: skip
    assert world.urssaf.get_creditor_mandate(first_day.reference).lapsed
    # Signed 35 months ago: alive; its last use, not its signature, counts once used.
    today = datetime.now(UTC).date()
    recent = today.replace(year=today.year - 3, day=min(today.day, 28)) + timedelta(days=31)
    alive = _create(world.payer, f"{siren}-ALIVE", signed_on=recent.isoformat())
    assert not world.payer.acknowledge_mandate("URSSAF", alive.reference).lapsed
    assert not world.urssaf.get_creditor_mandate(alive.reference).lapsed
    assert lapse_cutoff(date(2026, 12, 6)) == "2023-12-06"
    assert lapse_cutoff(date(2028, 2, 29)) == "2025-02-28"


def test_the_printed_mandate_has_both_addresses(world: World) -> None:
    """The rulebook's data set DS-01 names the creditor's and the debtor's addresses."""
    store = MandateStore(world.node.node.engine, bytes(32))
    creditor = store.creditor("URSSAF")
    assert creditor is not None
    store.register_creditor("URSSAF", creditor.identifier, creditor.name,
                            "3 rue Franklin\n93100 MONTREUIL")  # fmt: skip
    reference = f"{CLIENT_SIRET[:9]}-PRINTED"
    _create(world.payer, reference)
    pdf = world.payer.print_mandate("URSSAF", reference)
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "3 rue Franklin, 93100 MONTREUIL" in text
    assert "1 RUE DE LA PAIX, 75002 PARIS" in text  # the RCD's address of the debtor SIRET


def test_an_extraction_queued_on_a_live_node_is_not_failed_by_another_node_s_start(
    world: World,
) -> None:
    """An extraction waiting for one of its node's workers records no progress; the node marks
    it as looked after, so another node starting does not take it for a dead node's."""
    node = world.node.node
    jobs = node.mandates.extractions
    operations = OperationStore(node.engine)
    queued, _ = operations.create(EXTRACT_KIND, "mandates", 0)
    abandoned, _ = operations.create(EXTRACT_KIND, "mandates", 0)
    with node.engine.begin() as connection:  # both idle for ten minutes
        connection.execute(
            update(operations_table)
            .where(operations_table.c.id.in_([queued.id, abandoned.id]))
            .values(updated_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    jobs._queued.add(queued.id)  # as submit() leaves it while the workers are busy
    try:
        jobs.touch_queued()
        assert jobs.interrupted_by_restart(stale_seconds=300) >= 1
    finally:
        jobs._queued.discard(queued.id)
    still, failed = operations.get(queued.id), operations.get(abandoned.id)
    assert still is not None and still.state == OperationState.PENDING
    assert failed is not None and failed.state == OperationState.FAILED
    # A failed extraction stays failed: its worker, coming late, neither runs it...
    jobs.extract(abandoned.id, "URSSAF")
    assert not jobs.blobs.exists(file_name(abandoned.id))
    # ...nor does a late success overwrite the failure.
    operations.succeed(abandoned.id, pb.ExtractMandatesResult(creditor="URSSAF"), 1)
    late = operations.get(abandoned.id)
    assert late is not None and late.state == OperationState.FAILED
