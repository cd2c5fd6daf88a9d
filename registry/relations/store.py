"""Declared links and employments: written from each valid DSN and from history files, read by
the relations service. NIRs are sealed and looked up by keyed hash (registry/kernel/nir_keyring.py).

Writes are upserts, so a DSN processed twice (a crash between this and the deposit's state) or a
history file loaded twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, func, insert, or_, select, update

from registry.dsn.revealed_relations import Employment
from registry.kernel.clock import now_ms
from registry.kernel.nir_keyring import NirKeyring
from registry.relations.schema import declared_links, employments

BATCH = 2_000
T = TypeVar("T")
# The two checks organisms' systems call most go straight to the driver (as the RCD's
# establishment read does): a fraction of a compiled SQLAlchemy query's cost.
_LINK_SQL = (
    "SELECT declarant_siret, declared_siret, first_period, last_period, last_deposit "
    "FROM declared_links WHERE declarant_siret = {m} AND declared_siret = {m}"
)
_EMPLOYED_SQL = (
    "SELECT contract_start, contract_end FROM employments WHERE nir_hash IN ({hashes}) "
    "AND siret = {m} AND contract_start <= {m} AND (contract_end = '' OR contract_end >= {m}) "
    "LIMIT 1"
)


def _batches(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass(frozen=True, slots=True)
class Link:
    """A declarant/declared link: YYYYMM periods, the last deposit ("" from history)."""

    declarant_siret: str
    declared_siret: str
    first_period: str
    last_period: str
    last_deposit: str


@dataclass(frozen=True, slots=True)
class EmploymentRecord:
    """An employment as read: `id` orders pages."""

    id: int
    siret: str
    nir: str
    start: str
    end: str


class RelationsStore:
    """Reads and writes relations."""

    def __init__(self, engine: Engine, keyring: NirKeyring) -> None:
        self.engine = engine
        self.keyring = keyring
        self._marker = "%s" if engine.dialect.name == "postgresql" else "?"

    # -- writes ----------------------------------------------------------------------------

    def record_links(self, links: Iterable[Link]) -> int:
        """Adds links or widens their periods; returns how many rows changed."""
        changed, moment = 0, now_ms()
        for batch in _batches(links):
            merged: dict[tuple[str, str], Link] = {}
            for link in batch:  # the same pair twice in a batch: one row, the widest periods
                key = (link.declarant_siret, link.declared_siret)
                seen = merged.get(key)
                merged[key] = link if seen is None else _widest(seen, link)
            with self.engine.begin() as connection:
                pairs = list(merged)
                existing = {
                    (row.declarant_siret, row.declared_siret): row
                    for row in connection.execute(
                        select(declared_links)
                        .where(
                            declared_links.c.declared_siret.in_({d for _, d in pairs}),
                            declared_links.c.declarant_siret.in_({d for d, _ in pairs}),
                        )
                        .with_for_update()
                    )
                }
                new = []
                for key, link in merged.items():
                    row = existing.get(key)
                    if row is None:
                        new.append({
                            "declarant_siret": link.declarant_siret,
                            "declared_siret": link.declared_siret,
                            "first_period": link.first_period, "last_period": link.last_period,
                            "last_deposit": link.last_deposit, "updated_at": moment,
                        })  # fmt: skip
                        continue
                    first = min(row.first_period, link.first_period)
                    last = max(row.last_period, link.last_period)
                    deposit = link.last_deposit or row.last_deposit
                    if (first, last, deposit) != (row.first_period, row.last_period,
                                                  row.last_deposit):  # fmt: skip
                        connection.execute(
                            update(declared_links)
                            .where(declared_links.c.declarant_siret == key[0],
                                   declared_links.c.declared_siret == key[1])
                            .values(first_period=first, last_period=last, last_deposit=deposit,
                                    updated_at=moment)
                        )  # fmt: skip
                        changed += 1
                if new:
                    connection.execute(insert(declared_links), new)
                    changed += len(new)
        return changed

    def record_employments(self, items: Iterable[Employment]) -> int:
        """Adds contracts or records their end; returns how many rows changed. A contract is
        (establishment, NIR, start); found under any key of the ring."""
        changed, moment = 0, now_ms()
        for batch in _batches(items):
            hashed = [(item, self.keyring.hashes(item.nir)) for item in batch]
            with self.engine.begin() as connection:
                wanted = {h for _, hashes in hashed for h in hashes}
                existing = {
                    (row.siret, bytes(row.nir_hash), row.contract_start): row
                    for row in connection.execute(
                        select(employments.c.id, employments.c.siret, employments.c.nir_hash,
                               employments.c.contract_start, employments.c.contract_end)
                        .where(employments.c.nir_hash.in_(wanted))
                    )
                }  # fmt: skip
                new, seen = [], set()
                for item, hashes in hashed:
                    row = next(
                        (r for h in hashes if (r := existing.get((item.siret, h, item.start)))),
                        None,
                    )
                    if row is not None:
                        if item.end and item.end != row.contract_end:
                            connection.execute(
                                update(employments).where(employments.c.id == row.id)
                                .values(contract_end=item.end, updated_at=moment)
                            )  # fmt: skip
                            changed += 1
                        continue
                    if (item.siret, hashes[0], item.start) in seen:
                        continue
                    seen.add((item.siret, hashes[0], item.start))
                    key_id, sealed, digest = self.keyring.seal(item.nir, item.siret.encode())
                    new.append({
                        "siret": item.siret, "nir_hash": digest, "nir_key": key_id,
                        "nir_sealed": sealed, "contract_start": item.start,
                        "contract_end": item.end, "updated_at": moment,
                    })  # fmt: skip
                if new:
                    connection.execute(insert(employments), new)
                    changed += len(new)
        return changed

    def rekey(self, batch: int = BATCH) -> int:
        """Re-seals and re-hashes every employment still under an older key; returns how many."""
        current, done = self.keyring.current.id, 0
        while True:
            with self.engine.begin() as connection:
                rows = connection.execute(
                    select(employments.c.id, employments.c.siret, employments.c.nir_key,
                           employments.c.nir_sealed)
                    .where(employments.c.nir_key != current).limit(batch).with_for_update()
                ).all()  # fmt: skip
                for row in rows:
                    context = row.siret.encode()
                    nir = self.keyring.open(row.nir_key, bytes(row.nir_sealed), context)
                    key_id, sealed, digest = self.keyring.seal(nir, context)
                    connection.execute(
                        update(employments).where(employments.c.id == row.id)
                        .values(nir_key=key_id, nir_sealed=sealed, nir_hash=digest)
                    )  # fmt: skip
            done += len(rows)
            if len(rows) < batch:
                return done

    # -- reads -----------------------------------------------------------------------------

    def declared_by(self, declarant_siret: str, limit: int, after: str = "") -> list[Link]:
        """The links of a declarant, by declared SIRET, after `after`."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(declared_links)
                .where(declared_links.c.declarant_siret == declarant_siret,
                       declared_links.c.declared_siret > after)
                .order_by(declared_links.c.declared_siret).limit(limit)
            ).all()  # fmt: skip
        return [_link(row) for row in rows]

    def link(self, declarant_siret: str, declared_siret: str) -> Link | None:
        """The link between the two, if any."""
        with self.engine.connect() as connection:
            row = connection.exec_driver_sql(
                _LINK_SQL.format(m=self._marker), (declarant_siret, declared_siret)
            ).first()
        return Link(*row) if row is not None else None

    def declarants_of(self, declared_siret: str) -> list[str]:
        """Every SIRET that declared this establishment."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(declared_links.c.declarant_siret).where(
                        declared_links.c.declared_siret == declared_siret
                    )
                ).scalars()
            )

    def declared_by_company(self, siren: str) -> set[str]:
        """Every establishment any SIRET of the company declared."""
        with self.engine.connect() as connection:
            return declared_by_company(connection, siren)

    def employees(
        self, siret: str, period_start: str, period_end: str, limit: int, after_id: int = 0
    ) -> list[EmploymentRecord]:
        """Contracts of the establishment overlapping [start, end] (YYYYMMDD), by id."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(employments)
                .where(
                    employments.c.siret == siret,
                    employments.c.id > after_id,
                    employments.c.contract_start <= period_end,
                    or_(employments.c.contract_end == "",
                        employments.c.contract_end >= period_start),
                )
                .order_by(employments.c.id).limit(limit)
            ).all()  # fmt: skip
        return [self._employment(row) for row in rows]

    def employed(self, siret: str, nir: str, date: str) -> tuple[str, str] | None:
        """(contract start, contract end) of a contract that has this NIR working in this
        establishment on `date` (YYYYMMDD), if any; the NIR is not unsealed."""
        hashes = self.keyring.hashes(nir)
        sql = _EMPLOYED_SQL.format(m=self._marker, hashes=", ".join([self._marker] * len(hashes)))
        with self.engine.connect() as connection:
            row = connection.exec_driver_sql(sql, (*hashes, siret, date, date)).first()
        return (row[0], row[1]) if row is not None else None

    def counts(self) -> tuple[int, int]:
        """(links, employments) stored."""
        with self.engine.connect() as connection:
            links = connection.execute(select(func.count()).select_from(declared_links)).scalar()
            jobs = connection.execute(select(func.count()).select_from(employments)).scalar()
        return int(links or 0), int(jobs or 0)

    def _employment(self, row: Row[Any]) -> EmploymentRecord:
        nir = self.keyring.open(row.nir_key, bytes(row.nir_sealed), row.siret.encode())
        return EmploymentRecord(row.id, row.siret, nir, row.contract_start, row.contract_end)


def _widest(a: Link, b: Link) -> Link:
    return Link(a.declarant_siret, a.declared_siret, min(a.first_period, b.first_period),
                max(a.last_period, b.last_period), b.last_deposit or a.last_deposit)  # fmt: skip


def _link(row: Row[Any]) -> Link:
    return Link(row.declarant_siret, row.declared_siret, row.first_period, row.last_period,
                row.last_deposit)  # fmt: skip


def declared_by_company(connection: Connection, siren: str, limit: int | None = None) -> set[str]:
    """The establishments any SIRET of the company declared (at most `limit` rows read)."""
    query = select(declared_links.c.declared_siret).where(
        declared_links.c.declarant_siret.startswith(siren)
    )
    return set(connection.execute(query.limit(limit)).scalars())
