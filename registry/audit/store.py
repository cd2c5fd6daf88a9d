"""Storage of the audit journal: appending batches of records to the hash chain, signed
checkpoints, queries, and reading it all back for verification.

One writer appends (the node's journal task): it keeps the chain's head in memory and reads it
from the database on start.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, String, insert, select

from registry.audit.chain import FIELDS, GENESIS, checkpoint_input, record_hash
from registry.audit.schema import audit_checkpoints, audit_records
from registry.kernel.database import reading

_NAMES = (*FIELDS, "prev_hash", "hash")
_COLUMNS = [audit_records.c[name] for name in _NAMES]
# Built once from constant column names (no data in the text).
_INSERT = "INSERT INTO audit_records ({}) VALUES ({})"
_INSERT_SQLITE = _INSERT.format(", ".join(_NAMES), ", ".join("?" * len(_NAMES)))
_INSERT_PG = _INSERT.format(", ".join(_NAMES), ", ".join(["%s"] * len(_NAMES)))
# Each text column's length (0: unbounded), to cut values to what the column holds.
_TEXT_LENGTHS = {
    column.name: getattr(column.type, "length", None) or 0
    for column in audit_records.columns
    if isinstance(column.type, String)
}
# Control characters (NUL among them: PostgreSQL refuses it in text) are stored escaped.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def storable(record: Mapping[str, object]) -> dict[str, object]:
    """The record as every backend stores it: control characters in its text written as
    \\xNN (with backslashes doubled, so that the escaping reads back unambiguously), each text
    cut to its column's length. One record can never poison the journal."""
    result = dict(record)
    for name, length in _TEXT_LENGTHS.items():
        value = result.get(name)
        if not isinstance(value, str):
            continue
        if _CONTROL.search(value):
            value = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value.replace("\\", "\\\\"))
        result[name] = value[:length] if length else value
    return result


@dataclass(frozen=True)
class AuditQuery:
    """Filters of a query; empty ones do not filter."""

    trace_id: str = ""
    chain_id: str = ""
    siret: str = ""
    organism: str = ""
    resource: str = ""
    after_ms: int = 0
    before_ms: int = 0


class AuditStore:
    """The journal's tables."""

    def __init__(self, engine: Engine, journal: str = "") -> None:
        self.engine = engine
        self.journal = journal
        self.head_seq = 0
        self.head_hash = GENESIS
        self.last_checkpoint = 0

    def load_head(self) -> None:
        """Reads where the chain ends (after a restart)."""
        with reading(self.engine) as connection:
            row = connection.execute(
                select(audit_records.c.seq, audit_records.c.hash)
                .where(audit_records.c.journal == self.journal)
                .order_by(audit_records.c.seq.desc())
                .limit(1)
            ).first()
            mark = connection.execute(
                select(audit_checkpoints.c.seq)
                .where(audit_checkpoints.c.journal == self.journal)
                .order_by(audit_checkpoints.c.seq.desc())
                .limit(1)
            ).scalar()
        if row is not None:
            self.head_seq, self.head_hash = int(row[0]), bytes(row[1])
        self.last_checkpoint = int(mark or 0)

    def append(self, records: Sequence[Mapping[str, object]]) -> None:
        """Chains and stores records (FIELDS but seq) in order, in one transaction."""
        rows = []
        seq, previous = self.head_seq, self.head_hash
        for record in records:
            seq += 1
            row = {**storable(record), "journal": self.journal, "seq": seq}
            digest = record_hash(previous, row)
            rows.append({**row, "prev_hash": previous, "hash": digest})
            previous = digest
        # Straight to the driver: the compiled insert costs several times more per row, and this
        # runs beside the calls it records.
        sql = _INSERT_PG if self.engine.dialect.name == "postgresql" else _INSERT_SQLITE
        with self.engine.begin() as connection:
            connection.exec_driver_sql(sql, [tuple(row[n] for n in _NAMES) for row in rows])
        self.head_seq, self.head_hash = seq, previous

    def checkpoint(self, key: Ed25519PrivateKey, key_id: str, at_ms: int) -> None:
        """Signs the chain's head, unless already signed."""
        if self.head_seq == self.last_checkpoint:
            return
        signature = key.sign(checkpoint_input(self.journal, self.head_seq, self.head_hash, at_ms))
        with self.engine.begin() as connection:
            connection.execute(
                insert(audit_checkpoints).values(
                    journal=self.journal,
                    seq=self.head_seq,
                    hash=self.head_hash,
                    at=at_ms,
                    key_id=key_id,
                    signature=signature,
                )
            )
        self.last_checkpoint = self.head_seq

    def query(
        self, filters: AuditQuery, after_position: int, limit: int, *, newest_first: bool = False
    ) -> list[dict[str, object]]:
        """Records matching every filter given, after a position, in the order written; or,
        `newest_first`, before a position (0: from the newest), newest first."""
        if newest_first:
            query = select(audit_records.c.position, *_COLUMNS)
            if after_position:
                query = query.where(audit_records.c.position < after_position)
        else:
            query = select(audit_records.c.position, *_COLUMNS).where(
                audit_records.c.position > after_position
            )
        if filters.trace_id:
            query = query.where(audit_records.c.trace_id == filters.trace_id)
        if filters.chain_id:
            query = query.where(audit_records.c.chain_id == filters.chain_id)
        if filters.siret:
            query = query.where(audit_records.c.siret == filters.siret)
        if filters.organism:
            query = query.where(audit_records.c.organisms.contains(f"|{filters.organism}|"))
        if filters.resource:
            query = query.where(audit_records.c.resource == filters.resource)
        if filters.after_ms:
            query = query.where(audit_records.c.at >= filters.after_ms)
        if filters.before_ms:
            query = query.where(audit_records.c.at < filters.before_ms)
        with reading(self.engine) as connection:
            order = audit_records.c.position.desc() if newest_first else audit_records.c.position
            rows = connection.execute(query.order_by(order).limit(limit)).all()
        return [dict(row._mapping) for row in rows]

    def journals(self) -> list[str]:
        """Every journal (one per node process that recorded anything)."""
        with reading(self.engine) as connection:
            found = connection.execute(select(audit_records.c.journal).distinct()).scalars()
            marks = connection.execute(select(audit_checkpoints.c.journal).distinct()).scalars()
            return sorted({*found, *marks})

    def all_records(self, journal: str, batch: int = 10_000) -> Iterator[dict[str, object]]:
        """Every record of a journal in stored order (by position), for verification."""
        position = 0
        with reading(self.engine) as connection:
            while True:
                rows = connection.execute(
                    select(audit_records.c.position, *_COLUMNS)
                    .where(audit_records.c.journal == journal)
                    .where(audit_records.c.position > position)
                    .order_by(audit_records.c.position)
                    .limit(batch)
                ).all()
                for row in rows:
                    yield dict(row._mapping)
                if len(rows) < batch:
                    return
                position = int(rows[-1][0])

    def sequence_numbers(self, journal: str) -> Counter[int]:
        """How many records each sequence number of a journal has (1, unless tampered with)."""
        with reading(self.engine) as connection:
            found = connection.execute(
                select(audit_records.c.seq).where(audit_records.c.journal == journal)
            ).scalars()
            return Counter(int(seq) for seq in found)

    def all_checkpoints(self, journal: str) -> list[dict[str, object]]:
        """Every checkpoint of a journal."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(audit_checkpoints)
                .where(audit_checkpoints.c.journal == journal)
                .order_by(audit_checkpoints.c.seq)
            ).all()
        return [dict(row._mapping) for row in rows]
