"""Declared links and employments: written from each valid DSN and from history files, read by
the relations service. NIRs are sealed and looked up by keyed hash (registry/kernel/nir_keyring.py).

A link lasts (is *live*) from the first period a firm declares an establishment until another
firm (another SIREN) declares it for a later period (`ended_period`: the link ended there), or
until `idle_months` months pass without a DSN of the firm for it, or until the establishment's
company ends the firm's mandate (`end_mandated_links`: the links its DSNs took over last again).
Each employment remembers the declarants that declared it (`employment_declarants`): a firm
reads only what it declared, and only while its link is live. When a link ends because another
firm declared the establishment, the live token chains of the old firm's accounts are cut in the
same transaction: they carried rights inherited from that link.

Writes are upserts, so a DSN processed twice (a crash between this and the deposit's state) or a
history file loaded twice changes nothing the second time.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    Engine,
    Row,
    Text,
    cast,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from registry.dsn.revealed_relations import Employment
from registry.kernel.clock import now_ms
from registry.kernel.database import reading, writing
from registry.kernel.nir_keyring import NirKeyring
from registry.relations.schema import declared_links, employment_declarants, employments
from registry.trust.issuance import declarant_subject
from registry.trust.revocation_store import cut_off
from registry.trust.schema import declarants

BATCH = 2_000
# A link with no DSN for more months than this has ended (settings: INTEROPS_LINK_IDLE_MONTHS).
IDLE_MONTHS = 3
# `ended_by` of a link its company ended with the firm's mandate (not a SIRET: no firm took it).
MANDATE_ENDED = "MANDATE"
T = TypeVar("T")
# The two checks organisms' systems call most go straight to the driver (as the RCD's
# establishment read does): a fraction of a compiled SQLAlchemy query's cost.
_LINK_SQL = (
    "SELECT declarant_siret, declared_siret, first_period, last_period, last_deposit, "
    "ended_period FROM declared_links WHERE declarant_siret = {m} AND declared_siret = {m}"
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


def month_index(period: str) -> int:
    """A YYYYMM period as a count of months (periods compare by subtraction)."""
    return int(period[:4]) * 12 + int(period[4:6]) - 1


def period_of(index: int) -> str:
    """The YYYYMM period of a count of months."""
    return f"{index // 12:04d}{index % 12 + 1:02d}"


def live_since(idle_months: int, today: datetime.date | None = None) -> str:
    """The oldest last period a live link may have today: older ones went `idle_months` months
    without a DSN."""
    day = today or datetime.datetime.now(datetime.UTC).date()
    return period_of(day.year * 12 + day.month - 1 - idle_months)


@dataclass(frozen=True, slots=True)
class Link:
    """A declarant/declared link: YYYYMM periods, the last deposit ("" from history), and the
    period another firm took the establishment over from ("" while nobody did)."""

    declarant_siret: str
    declared_siret: str
    first_period: str
    last_period: str
    last_deposit: str
    ended_period: str = ""

    def live(self, since: str) -> bool:
        """Whether the link lasts: not taken over, and a DSN since the period `since`."""
        return not self.ended_period and self.last_period >= since


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

    def __init__(self, engine: Engine, keyring: NirKeyring, idle_months: int = IDLE_MONTHS) -> None:
        self.engine = engine
        self.keyring = keyring
        self.idle_months = idle_months
        self._marker = "%s" if engine.dialect.name == "postgresql" else "?"

    # -- writes ----------------------------------------------------------------------------

    def since(self) -> str:
        """The oldest last period of a live link today."""
        return live_since(self.idle_months)

    def record_links(self, links: Iterable[Link], within: Connection | None = None) -> int:
        """Adds links or widens their periods, and ends the links of other firms the new periods
        take over (cutting their accounts' live chains); returns how many rows changed. Each
        batch in a transaction of its own, or all in the caller's (`within`)."""
        changed, moment = 0, now_ms()
        for batch in _batches(links):
            merged: dict[tuple[str, str], Link] = {}
            for link in batch:  # the same pair twice in a batch: one row, the widest periods
                key = (link.declarant_siret, link.declared_siret)
                seen = merged.get(key)
                merged[key] = link if seen is None else _widest(seen, link)
            with writing(self.engine, within) as connection:
                pairs = list(merged)
                declared = {d for _, d in pairs}
                _lock_establishments(connection, declared)
                existing = {
                    (row.declarant_siret, row.declared_siret): row
                    for row in _lock_links(connection, declared)
                    if (row.declarant_siret, row.declared_siret) in merged
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
                    # A link its mandate's end ended lasts again only with a DSN for a month
                    # from then on (which a new mandate alone lets the firm deposit).
                    revived = row.ended_by == MANDATE_ENDED and last >= row.ended_period
                    if revived or (first, last, deposit) != (row.first_period, row.last_period,
                                                             row.last_deposit):  # fmt: skip
                        ended = {"ended_period": "", "ended_by": ""} if revived else {}
                        connection.execute(
                            update(declared_links)
                            .where(declared_links.c.declarant_siret == key[0],
                                   declared_links.c.declared_siret == key[1])
                            .values(first_period=first, last_period=last, last_deposit=deposit,
                                    updated_at=moment, **ended)
                        )  # fmt: skip
                        changed += 1
                if new:
                    connection.execute(insert(declared_links), new)
                    changed += len(new)
                changed += _take_over(connection, {d for _, d in pairs}, moment)
        return changed

    def record_employments(
        self,
        items: Iterable[Employment],
        declared_by: tuple[str, str] | None = None,
        within: Connection | None = None,
    ) -> int:
        """Adds contracts or records their end; returns how many rows changed. A contract is
        (establishment, NIR, start); found under any key of the ring. `declared_by` is
        (declarant SIRET, YYYYMM period) of the DSN that declared them (None: a history file).
        Each batch in a transaction of its own, or all in the caller's (`within`)."""
        changed, moment = 0, now_ms()
        for batch in _batches(items):
            hashed = [(item, self.keyring.hashes(item.nir)) for item in batch]
            with writing(self.engine, within) as connection:
                # One recording per establishment at a time: two would each find none of the
                # other's contracts and insert the same one twice (nothing unique forbids it:
                # a NIR's hash depends on the ring's key).
                _lock_establishments(connection, {item.siret for item in batch})
                wanted = {h for _, hashes in hashed for h in hashes}
                existing = {
                    (row.siret, bytes(row.nir_hash), row.contract_start): row
                    for row in connection.execute(
                        select(employments.c.id, employments.c.siret, employments.c.nir_hash,
                               employments.c.contract_start, employments.c.contract_end)
                        .where(employments.c.nir_hash.in_(wanted))
                    )
                }  # fmt: skip
                new, seen, ids = [], set(), set()
                for item, hashes in hashed:
                    row = next(
                        (r for h in hashes if (r := existing.get((item.siret, h, item.start)))),
                        None,
                    )
                    if row is not None:
                        ids.add(row.id)
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
                    ids.update(connection.execute(
                        insert(employments).returning(employments.c.id), new
                    ).scalars())  # fmt: skip
                    changed += len(new)
                if declared_by is not None:
                    _declared(connection, ids, *declared_by)
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
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(declared_links)
                .where(declared_links.c.declarant_siret == declarant_siret,
                       declared_links.c.declared_siret > after)
                .order_by(declared_links.c.declared_siret).limit(limit)
            ).all()  # fmt: skip
        return [_link(row) for row in rows]

    def live_declarants(self, declared_siret: str) -> list[str]:
        """The SIRETs whose link to this establishment is live."""
        query = select(declared_links.c.declarant_siret).where(
            declared_links.c.declared_siret == declared_siret,
            declared_links.c.ended_period == "",
            declared_links.c.last_period >= self.since(),
        )
        with reading(self.engine) as connection:
            return list(connection.execute(query).scalars())

    def link(self, declarant_siret: str, declared_siret: str) -> Link | None:
        """The link between the two, if any."""
        with reading(self.engine) as connection:
            row = connection.exec_driver_sql(
                _LINK_SQL.format(m=self._marker), (declarant_siret, declared_siret)
            ).first()
        return Link(*row) if row is not None else None

    def declared_by_company(self, siren: str) -> set[str]:
        """The establishments to which a SIRET of the company has a live link."""
        with reading(self.engine) as connection:
            return declared_by_company(connection, siren, self.since())

    def employees(
        self,
        siret: str,
        period_start: str,
        period_end: str,
        limit: int,
        after_id: int = 0,
        *,
        declared_by: Collection[str] | None = None,
    ) -> list[EmploymentRecord]:
        """Contracts of the establishment overlapping [start, end] (YYYYMMDD), by id; only those
        a SIRET of `declared_by` declared, unless it is None."""
        query = (
            select(employments)
            .where(
                employments.c.siret == siret,
                employments.c.id > after_id,
                employments.c.contract_start <= period_end,
                or_(employments.c.contract_end == "", employments.c.contract_end >= period_start),
            )
            .order_by(employments.c.id)
            .limit(limit)
        )
        if declared_by is not None:
            query = query.where(_declared_by(declared_by))
        with reading(self.engine) as connection:
            rows = connection.execute(query).all()
        return [self._employment(row) for row in rows]

    def employed(
        self, siret: str, nir: str, date: str, declared_by: Collection[str] | None = None
    ) -> tuple[str, str] | None:
        """(contract start, contract end) of a contract that has this NIR working in this
        establishment on `date` (YYYYMMDD), if any, among those a SIRET of `declared_by`
        declared unless it is None; the NIR is not unsealed."""
        hashes = self.keyring.hashes(nir)
        if declared_by is not None:
            query = (
                select(employments.c.contract_start, employments.c.contract_end)
                .where(
                    employments.c.nir_hash.in_(hashes),
                    employments.c.siret == siret,
                    employments.c.contract_start <= date,
                    or_(employments.c.contract_end == "", employments.c.contract_end >= date),
                    _declared_by(declared_by),
                )
                .limit(1)
            )
            with reading(self.engine) as connection:
                found = connection.execute(query).first()
            return (found[0], found[1]) if found is not None else None
        sql = _EMPLOYED_SQL.format(m=self._marker, hashes=", ".join([self._marker] * len(hashes)))
        with reading(self.engine) as connection:
            row = connection.exec_driver_sql(sql, (*hashes, siret, date, date)).first()
        return (row[0], row[1]) if row is not None else None

    def counts(self) -> tuple[int, int]:
        """(links, employments) stored."""
        with reading(self.engine) as connection:
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
                row.last_deposit, row.ended_period)  # fmt: skip


def _declared_by(sirets: Collection[str]) -> Any:
    """The condition: a SIRET of `sirets` declared the employment row."""
    return exists().where(
        employment_declarants.c.employment_id == employments.c.id,
        employment_declarants.c.declarant_siret.in_(list(sirets)),
    )


def _declared(connection: Connection, ids: set[int], declarant_siret: str, period: str) -> None:
    """Records that `declarant_siret` declared the employments `ids` for `period`."""
    if not ids or not declarant_siret:
        return
    known = {
        row.employment_id: row
        for row in connection.execute(
            select(employment_declarants).where(
                employment_declarants.c.declarant_siret == declarant_siret,
                employment_declarants.c.employment_id.in_(ids),
            )
        )
    }
    fresh = []
    for employment_id in sorted(ids):
        row = known.get(employment_id)
        if row is None:
            fresh.append({"employment_id": employment_id, "declarant_siret": declarant_siret,
                          "first_period": period, "last_period": period})  # fmt: skip
        elif not row.first_period <= period <= row.last_period:
            connection.execute(
                update(employment_declarants)
                .where(employment_declarants.c.employment_id == employment_id,
                       employment_declarants.c.declarant_siret == declarant_siret)
                .values(first_period=min(row.first_period, period),
                        last_period=max(row.last_period, period))
            )  # fmt: skip
    if fresh:
        connection.execute(insert(employment_declarants), fresh)


# The seed of the establishments' names `_lock_establishments` locks (the database's advisory
# locks are one 64-bit space: this keeps these apart from any other use).
_ESTABLISHMENT_LOCKS = 0x6C696E6B


def _lock_links(connection: Connection, declared: Collection[str]) -> Sequence[Row[Any]]:
    """Every link to these establishments, locked in one order (establishment, declarant), after
    their names (`_lock_establishments`): each writer of links locks so, before it changes any,
    so that two (two firms' DSNs for one establishment, a mandate ended meanwhile) wait for each
    other instead of deadlocking."""
    return connection.execute(
        select(declared_links).where(declared_links.c.declared_siret.in_(sorted(declared)))
        .order_by(declared_links.c.declared_siret, declared_links.c.declarant_siret)
        .with_for_update()
    ).all()  # fmt: skip


def _lock_establishments(connection: Connection, declared: Collection[str]) -> None:
    """Locks these establishments' names, in order, to the commit (PostgreSQL; SQLite has one
    writer): every writer of an establishment's links or employments takes them first, so that
    two recordings for one establishment run one after the other, whether it has links yet or
    not. Row locks alone (`_lock_links`) left gaps: two firms' first DSNs for an establishment
    found no row to lock, each inserted its link unseen by the other's take-over, and both links
    stayed live (the earlier firm keeping its access until the next DSN); a recording that found
    a link committed meanwhile ran beside one still waiting, whose take-over never saw its link;
    and two files' employments recorded at once were inserted twice."""
    if not declared or connection.dialect.name != "postgresql":
        return
    siret = func.unnest(cast(sorted(declared), ARRAY(Text))).column_valued("siret")
    seed = cast(_ESTABLISHMENT_LOCKS, BigInteger)
    # One statement: a function scan takes them in the array's order.
    connection.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(siret, seed)))).all()


def _take_over(connection: Connection, declared: set[str], moment: int) -> int:
    """Recomputes, for each establishment, which links another firm took over: a link ends at
    the first period after its last that a firm of another SIREN declared. Cuts the live chains
    of every account of a firm whose link just ended; returns how many links changed."""
    # Read again, not taken from the caller's first read: this transaction's own writes since
    # (and on SQLite, whatever another writer committed before this one began writing).
    rows = _lock_links(connection, declared)
    by_establishment: dict[str, list[Row[Any]]] = {}
    for row in rows:
        by_establishment.setdefault(row.declared_siret, []).append(row)
    changed, ended_firms = 0, set()
    for links in by_establishment.values():
        for link in links:
            if link.ended_by == MANDATE_ENDED:  # ended by its company, not by a firm
                continue
            end, by = "", ""
            after = period_of(month_index(link.last_period) + 1)
            for other in links:
                if (other.declarant_siret[:9] == link.declarant_siret[:9]
                        or other.ended_by == MANDATE_ENDED):  # fmt: skip
                    continue  # a link its mandate's end ended takes nothing over
                if other.last_period > link.last_period:
                    start = max(other.first_period, after)
                    if not end or start < end:
                        end, by = start, other.declarant_siret
            if (end, by) == (link.ended_period, link.ended_by):
                continue
            connection.execute(
                update(declared_links)
                .where(declared_links.c.declarant_siret == link.declarant_siret,
                       declared_links.c.declared_siret == link.declared_siret)
                .values(ended_period=end, ended_by=by, updated_at=moment)
            )  # fmt: skip
            changed += 1
            if end and not link.ended_period:
                ended_firms.add(link.declarant_siret[:9])
    if ended_firms:
        accounts = connection.execute(
            select(declarants.c.id).where(
                func.substr(declarants.c.siret, 1, 9).in_(sorted(ended_firms))
            )
        ).scalars()
        cut_off(connection, [declarant_subject(account) for account in accounts])
    return changed


def end_mandated_links(connection: Connection, firm_siren: str, declared_siret: str) -> int:
    """When a company ends a firm's mandate for its establishment: the firm's links to it end
    this month (`ended_by` MANDATE_ENDED), and the links of other firms its DSNs had taken over
    last again (as if it had never declared after them). In the caller's transaction; returns
    how many links changed."""
    today = datetime.datetime.now(datetime.UTC).date()
    moment = now_ms()
    _lock_establishments(connection, {declared_siret})  # as every writer of links, first
    _lock_links(connection, {declared_siret})
    ended = connection.execute(
        update(declared_links)
        .where(declared_links.c.declarant_siret.startswith(firm_siren),
               declared_links.c.declared_siret == declared_siret,
               declared_links.c.ended_by != MANDATE_ENDED)
        .values(ended_period=f"{today.year:04d}{today.month:02d}", ended_by=MANDATE_ENDED,
                updated_at=moment)
    ).rowcount  # fmt: skip
    return int(ended) + _take_over(connection, {declared_siret}, moment)


def declared_by_company(
    connection: Connection, siren: str, since: str, limit: int | None = None
) -> set[str]:
    """The establishments to which a SIRET of the company has a live link (a DSN since the
    period `since`, not taken over), at most `limit` rows read."""
    query = select(declared_links.c.declared_siret).where(
        declared_links.c.declarant_siret.startswith(siren),
        declared_links.c.ended_period == "",
        declared_links.c.last_period >= since,
    )
    return set(connection.execute(query.limit(limit)).scalars())
