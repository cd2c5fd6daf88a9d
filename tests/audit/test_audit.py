"""The audit journal: what each call leaves in it, suspicious behaviour flagged, operators' queries
(and nobody else's), and offline verification that names the first record altered, removed,
inserted or reordered."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from interops.audit.v1 import audit_pb2 as pb
from interops.registry.v1 import registry_pb2
from sqlalchemy import Connection, Engine, delete, insert, select, update

from clients.client import Client
from clients.errors import NotFound, PermissionDenied, Unauthenticated
from registry.audit.chain import record_hash, verify_journal
from registry.audit.schema import audit_checkpoints, audit_records
from registry.audit.store import AuditStore
from registry.kernel.database import open_engine
from registry.kernel.sealing import load_or_create_key
from server.audit.journal import digest_key, message_digest
from tests.running_node import SERVICES, RunningNode
from token_suite.chain import Signer

AUDIT = "interops.audit.v1.AuditService"
SIREN = "552100554"


@pytest.fixture(scope="module")
def audited(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    data_dir = tmp_path_factory.mktemp("audited")
    running = RunningNode(database_url, data_dir, audit_checkpoint_records=5)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def auditor(audited: RunningNode) -> Signer:
    return audited.organism("AUDITOR", "PORTAL", rights=("audit.read",))


def _records(node: RunningNode, auditor: Signer, **filters: str) -> list[pb.AuditRecord]:
    credentials = node.credentials(auditor, audience=(AUDIT,))
    request = pb.ListRecordsRequest()
    for name, value in filters.items():
        setattr(request, name, value)
    with Client(node.address, credentials=credentials) as client:
        return list(client.list_audit_records(request))


def test_each_call_is_recorded_with_who_what_outcome_trace_and_digests(
    audited: RunningNode, auditor: Signer
) -> None:
    with (
        Client(audited.address, credentials=audited.credentials()) as client,
        pytest.raises(NotFound),
    ):
        client.get_company(SIREN)  # no registry loaded: not found
    with Client(audited.address) as anonymous, pytest.raises(Unauthenticated):
        anonymous.get_company(SIREN)
    records = [r for r in _records(audited, auditor, organism="OPERATOR")
               if r.method == "GetCompany"]  # fmt: skip
    (call,) = records
    assert call.subject == "organism:OPERATOR" and call.organisms == ["NET-ENTREPRISES", "OPERATOR"]
    assert call.service == "interops.registry.v1.RegistryService"
    assert call.resource == f"siren:{SIREN}" and call.outcome.startswith("NOT_FOUND")
    assert len(call.trace_id) == 32 and int(call.trace_id, 16) != 0 and len(call.chain_id) == 32
    # The digest is keyed (the node's data key): the operator can check a message against it,
    # a reader of the journal cannot try candidates (a plain SHA-256 of a SIREN, a NIR or an
    # IBAN is found by trying them all).
    request = registry_pb2.GetCompanyRequest(siren=SIREN)
    data_key = load_or_create_key(audited.node.settings.data_dir / "keys" / "data.key")
    assert call.request_digest == message_digest(digest_key(data_key), request)
    assert call.request_digest != hashlib.sha256(request.SerializeToString()).hexdigest()
    refused = [
        r for r in _records(audited, auditor) if r.outcome == "UNAUTHENTICATED:TOKEN_MISSING"
    ]
    assert refused and refused[-1].subject == "" and refused[-1].method == "GetCompany"
    # By trace id, an operator finds that exchange alone.
    assert [r.seq for r in _records(audited, auditor, trace_id=call.trace_id)] == [call.seq]
    assert call.seq in {r.seq for r in _records(audited, auditor, chain_id=call.chain_id)}


def test_repeated_refusals_and_replays_are_flagged(audited: RunningNode, auditor: Signer) -> None:
    with Client(audited.address) as anonymous:
        for _ in range(5):
            with pytest.raises(Unauthenticated):
                anonymous.validate_siret("10000000900017")
    flagged = [r for r in _records(audited, auditor) if r.method == "ValidateSiret"]
    assert "repeated-failures" in flagged[-1].flags and "repeated-failures" not in flagged[0].flags
    # A proof of possession used twice.
    credentials = audited.credentials()
    metadata = tuple(credentials.metadata("/interops.registry.v1.RegistryService/ValidateSiret"))
    with Client(audited.address) as raw:
        stub = raw.registry
        request = registry_pb2.ValidateSiretRequest(siret="10000000900017")
        stub.ValidateSiret(request, metadata=metadata)
        with pytest.raises(grpc.RpcError):
            stub.ValidateSiret(request, metadata=metadata)
    replays = [r for r in _records(audited, auditor) if "replay" in r.flags]
    assert replays and replays[-1].outcome == "UNAUTHENTICATED:REPLAYED"


def test_only_operators_with_audit_read_query_the_journal(audited: RunningNode) -> None:
    credentials = audited.credentials(audience=(*SERVICES, AUDIT))
    with Client(audited.address, credentials=credentials) as c, pytest.raises(PermissionDenied):
        list(c.list_audit_records(pb.ListRecordsRequest()))


def test_pages_and_filters(audited: RunningNode, auditor: Signer) -> None:
    everything = _records(audited, auditor)
    credentials = audited.credentials(auditor, audience=(AUDIT,))
    with Client(audited.address, credentials=credentials) as client:
        paged = list(client.list_audit_records(pb.ListRecordsRequest(page_size=3)))
    assert [r.seq for r in paged[: len(everything)]] == [r.seq for r in everything]
    assert _records(audited, auditor, organism="NOBODY") == []
    # By SIRET: the ValidateSiret calls made above, and only calls about that SIRET.
    about = _records(audited, auditor, siret="10000000900017")
    assert about and all(r.siret == "10000000900017" for r in about)
    # By time range: nothing after now, everything from the first record on.
    later = pb.ListRecordsRequest()
    later.after.FromSeconds(int(time.time()) + 3600)
    earlier = pb.ListRecordsRequest()
    earlier.after.FromMilliseconds(everything[0].at.ToMilliseconds())
    earlier.before.FromSeconds(int(time.time()) + 3600)
    with Client(audited.address, credentials=credentials) as client:
        assert list(client.list_audit_records(later)) == []
        ranged = list(client.list_audit_records(earlier))
    assert [r.seq for r in ranged[: len(everything)]] == [r.seq for r in everything]


# -- offline verification ----------------------------------------------------------------------


def test_offline_verification_names_the_first_record_tampered_with(
    database_url: str, tmp_path: Path
) -> None:
    node = RunningNode(database_url, tmp_path / "data", audit_checkpoint_records=4)
    with Client(node.address, credentials=node.credentials()) as client:
        for siret in ("10000000900017", "10000000900018", "35600000000010") * 4:
            client.validate_siret(siret)
    node.run(node.node.journal.flush())
    engine, journal = node.node.engine, node.node.audit_store.journal
    public = node.node.trust.root_key.public_key()
    root = public.public_bytes_raw().hex()
    node.stop()  # writes the rest and signs a last checkpoint
    engine = open_engine(database_url)
    # 12 calls and the APPLICATION chain's issuance before them.
    assert _check(engine, journal, public) == (True, 13, "")
    rows, marks = _snapshot(engine, journal)
    this = (audit_records.c.journal == journal,)
    cases: dict[str, tuple[Callable[[Connection], object], int | None]] = {
        "altered": (lambda c: c.execute(update(audit_records).where(
            *this, audit_records.c.seq == 5).values(outcome="PERMISSION_DENIED")), 5),
        "removed": (lambda c: c.execute(delete(audit_records).where(
            audit_records.c.journal == journal, audit_records.c.seq == 5)), 5),
        "inserted": (lambda c: _insert_forged(c, rows, 7), 7),
        "reordered": (lambda c: _swap(c, rows[4], rows[5]), 6),
        "checkpoint": (lambda c: c.execute(update(audit_checkpoints).where(
            audit_checkpoints.c.journal == journal).values(signature=bytes(64))), None),
        "tail removed": (lambda c: c.execute(delete(audit_records).where(
            audit_records.c.journal == journal, audit_records.c.seq > 10)), 11),
    }  # fmt: skip
    for name, (tamper, seq) in cases.items():
        with engine.begin() as connection:
            tamper(connection)
        ok, at, kind = _check(engine, journal, public)
        assert not ok, name
        if seq is not None:
            assert at == seq, (name, at, kind)
        if name in ("altered", "removed", "inserted", "reordered"):
            assert kind == name, _explain(engine, journal, public)
        _restore(engine, journal, rows, marks)
        assert _check(engine, journal, public)[0], f"restored after {name}"
    # The command line, offline, against the pinned root key.
    with engine.begin() as connection:
        connection.execute(
            update(audit_records)
            .where(audit_records.c.journal == journal, audit_records.c.seq == 3)
            .values(resource="x")
        )
    env = {**os.environ, "INTEROPS_DATABASE_URL": database_url,
           "INTEROPS_DATA_DIR": str(tmp_path / "elsewhere")}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "clients.cli", "audit", "verify",
                           "--root-key", root], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1 and "FAULT at record 3 (altered)" in done.stdout
    _restore(engine, journal, rows, marks)
    engine.dispose()


def _check(engine: Engine, journal: str, root: Ed25519PublicKey) -> tuple[bool, int, str]:
    store = AuditStore(engine)
    found = verify_journal(store.all_records(journal), store.all_checkpoints(journal), root,
                           store.sequence_numbers(journal))  # fmt: skip
    return found.ok, found.seq, found.kind


def _explain(engine: Engine, journal: str, root: Ed25519PublicKey) -> str:
    store = AuditStore(engine)
    found = verify_journal(store.all_records(journal), store.all_checkpoints(journal), root,
                           store.sequence_numbers(journal))  # fmt: skip
    order = [(r["seq"], r["position"], r["subject"]) for r in store.all_records(journal)]
    return f"{found.message} {order}"


Rows = list[dict[str, Any]]


def _snapshot(engine: Engine, journal: str) -> tuple[Rows, Rows]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(audit_records).where(audit_records.c.journal == journal)
            .order_by(audit_records.c.position)
        ).all()  # fmt: skip
        marks = connection.execute(
            select(audit_checkpoints).where(audit_checkpoints.c.journal == journal)
        ).all()
    return [dict(row._mapping) for row in rows], [dict(m._mapping) for m in marks]


def _restore(engine: Engine, journal: str, rows: Rows, marks: Rows) -> None:
    with engine.begin() as connection:
        connection.execute(delete(audit_records).where(audit_records.c.journal == journal))
        connection.execute(delete(audit_checkpoints).where(audit_checkpoints.c.journal == journal))
        connection.execute(insert(audit_records), rows)
        connection.execute(insert(audit_checkpoints), marks)


def _insert_forged(connection: Connection, rows: Rows, seq: int) -> None:
    """Puts a well-hashed forged record chained after record seq-1, before record seq."""
    later = [row for row in rows if row["seq"] >= seq]
    for row in sorted(later, key=lambda r: -r["position"]):
        connection.execute(
            update(audit_records)
            .where(audit_records.c.journal == row["journal"], audit_records.c.seq == row["seq"])
            .values(position=row["position"] + 100_000)
        )
    before = next(row for row in rows if row["seq"] == seq - 1)
    forged = {**later[0], "outcome": "OK", "subject": "organism:FORGER", "seq": seq,
              "prev_hash": before["hash"]}  # fmt: skip
    forged["hash"] = record_hash(bytes(before["hash"]), forged)
    connection.execute(insert(audit_records).values(forged))


def _swap(connection: Connection, first: dict[str, Any], second: dict[str, Any]) -> None:
    """Swaps the stored order of two records (their positions)."""
    table = audit_records
    for row, position in ((first, -1), (second, first["position"]), (first, second["position"])):
        connection.execute(
            update(table)
            .where(table.c.journal == row["journal"], table.c.seq == row["seq"])
            .values(position=position)
        )


def test_a_poison_record_is_stored_escaped_and_the_journal_goes_on(
    audited: RunningNode, auditor: Signer
) -> None:
    """A NUL (PostgreSQL refuses it in text) and a huge value in what a call is about: the
    record is kept, escaped and cut to its column, and the journal keeps recording."""
    with Client(audited.address) as anonymous:
        for siret in ("1234\x00", "\x01" * 10_000):
            with pytest.raises(grpc.RpcError):
                anonymous.registry.GetEstablishment(
                    registry_pb2.GetEstablishmentRequest(siret=siret)
                )
        with pytest.raises(Unauthenticated):
            anonymous.validate_siret("10000000900017")  # recorded after the poison
    records = [r for r in _records(audited, auditor) if r.method in ("GetEstablishment",
               "ValidateSiret") and r.outcome.startswith("UNAUTHENTICATED")]  # fmt: skip
    resources = [r.resource for r in records]
    assert "siret:1234\\x00" in resources
    (huge,) = [r for r in resources if r.startswith("siret:\\x01")]
    assert len(huge) == 200  # what the column holds
    assert records[-1].method == "ValidateSiret"
    # The chain holds over the escaped texts.
    audited.run(audited.node.journal.flush())
    node = audited.node
    assert _check(node.engine, node.audit_store.journal, node.trust.root_key.public_key())[0]


def test_records_queued_at_a_clean_stop_are_written(database_url: str, tmp_path: Path) -> None:
    node = RunningNode(database_url, tmp_path / "data")
    journal = node.node.audit_store.journal

    async def queue() -> None:
        for number in range(500):
            node.node.journal.record({
                "at": number, "trace_id": "", "chain_id": "", "subject": "queued\x00",
                "organisms": "", "service": "test", "method": "Queued", "resource": "",
                "siret": "", "outcome": "OK", "request_digest": "", "response_digest": "",
                "flags": "",
            })  # fmt: skip

    node.run(queue())
    public = node.node.trust.root_key.public_key()
    node.stop()  # no flush before: the stop writes them
    engine = open_engine(database_url)
    with engine.connect() as connection:
        written = connection.execute(
            select(audit_records.c.subject).where(
                audit_records.c.journal == journal, audit_records.c.method == "Queued"
            )
        ).all()
    assert [row[0] for row in written] == ["queued\\x00"] * 500
    assert _check(engine, journal, public)[0]
    engine.dispose()
