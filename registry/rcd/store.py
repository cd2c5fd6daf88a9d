"""Reads and writes of the RCD: lookups, pages, prefix search, the change feed, bulk upserts."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from operator import methodcaller
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from registry.kernel.database import reading
from registry.rcd.records import (
    COMPANY_COLUMNS,
    AdministrativeState,
    CompanyRecord,
    CopyRows,
    EstablishmentRecord,
    copy_line,
)
from registry.rcd.schema import companies, establishments, registry_feed
from token_suite.grants import Scope

_COMPANY_COLUMNS = [companies.c[name] for name in CompanyRecord._fields]
_ESTABLISHMENT_COLUMNS = [establishments.c[name] for name in EstablishmentRecord._fields]
# Column names from our own record type; the SIRETs are bound parameters.
_SELECT_ESTABLISHMENTS = (
    f"SELECT {', '.join(EstablishmentRecord._fields)} FROM establishments WHERE siret"  # noqa: S608
)


def _day(value: Any) -> date | None:
    # SQLite's driver gives dates as ISO text; psycopg gives date objects.
    return value if value is None or isinstance(value, date) else date.fromisoformat(value)


def _establishment_from_driver(row: Any) -> EstablishmentRecord:
    """A record from a driver row, with the types SQLAlchemy would have given."""
    *text, head_office, state, created, since, restricted = row
    return EstablishmentRecord._make(
        (*text, bool(head_office), state, _day(created), _day(since), bool(restricted))
    )


_GET_COMPANY = select(*_COMPANY_COLUMNS).where(companies.c.siren == bindparam("siren"))


def _companies_within(scope: Scope) -> ColumnElement[bool]:
    """The companies of a perimeter: those it names by SIREN, and those of the SIRETs it names."""
    sirens = scope.sirens | {siret[:9] for siret in scope.sirets}
    return companies.c.siren.in_(sorted(sirens))


def _establishments_within(scope: Scope) -> ColumnElement[bool]:
    """The establishments of a perimeter: all those of the SIRENs it names (a range of the
    primary key each), and those it names by SIRET."""
    siret = establishments.c.siret
    parts = [siret.between(siren + "00000", siren + "99999") for siren in sorted(scope.sirens)]
    if scope.sirets:
        parts.append(siret.in_(sorted(scope.sirets)))
    return or_(*parts) if parts else false()


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed: a company or an establishment in its latest state."""

    position: int
    record: CompanyRecord | EstablishmentRecord


class RcdStore:
    """The RCD in a SQL database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get_company(self, siren: str) -> CompanyRecord | None:
        """The company with this SIREN, or None."""
        with reading(self.engine) as connection:
            row = connection.execute(_GET_COMPANY, {"siren": siren}).first()
        return CompanyRecord(*row) if row is not None else None

    def get_establishments(self, sirets: Sequence[str]) -> dict[str, EstablishmentRecord]:
        """The establishments among these SIRETs that the registry holds, by SIRET.

        The node's hottest read (every cache miss of GetEstablishment), so it goes straight to
        the driver: a third of the cost of a compiled SQLAlchemy query for a single SIRET.
        """
        unique = tuple(dict.fromkeys(sirets))
        marker = "%s" if self.engine.dialect.name == "postgresql" else "?"
        sql = f"{_SELECT_ESTABLISHMENTS} IN ({', '.join([marker] * len(unique))})"
        with reading(self.engine) as connection:
            rows = connection.exec_driver_sql(sql, unique).all()
        return {row[0]: _establishment_from_driver(row) for row in rows}

    def list_establishments(
        self,
        siren: str,
        after_siret: str,
        limit: int,
        *,
        active_only: bool,
        within: Scope | None = None,
    ) -> list[EstablishmentRecord]:
        """Establishments of a company in SIRET order, after a SIRET (exclusive); only those of
        the perimeter `within` when one is given."""
        low = max(after_siret, siren + "00000")
        query = (
            select(*_ESTABLISHMENT_COLUMNS)
            .where(
                establishments.c.siret > low if after_siret else establishments.c.siret >= low,
                establishments.c.siret <= siren + "99999",
            )
            .order_by(establishments.c.siret)
            .limit(limit)
        )
        if active_only:
            query = query.where(establishments.c.state == AdministrativeState.ACTIVE)
        if within is not None and not within.everything:
            query = query.where(_establishments_within(within))
        with reading(self.engine) as connection:
            return [EstablishmentRecord(*row) for row in connection.execute(query)]

    def search_companies(
        self,
        key_prefix: str,
        after: tuple[str, str] | None,
        limit: int,
        within: Scope | None = None,
    ) -> list[tuple[str, CompanyRecord]]:
        """Companies whose name key starts with key_prefix, in (name key, SIREN) order; only
        those of the perimeter `within` when one is given.

        Returns (name key, record) pairs so that the caller can resume after the last one.
        """
        # A range on the indexed key rather than LIKE, which PostgreSQL cannot serve from a
        # b-tree index under a non-C collation.
        upper = key_prefix + "\U0010ffff"
        conditions = [companies.c.name_key >= key_prefix, companies.c.name_key < upper]
        if after is not None:
            conditions.append(
                or_(
                    companies.c.name_key > after[0],
                    and_(companies.c.name_key == after[0], companies.c.siren > after[1]),
                )
            )
        if within is not None and not within.everything:
            conditions.append(_companies_within(within))
        query = (
            select(companies.c.name_key, *_COMPANY_COLUMNS)
            .where(*conditions)
            .order_by(companies.c.name_key, companies.c.siren)
            .limit(limit)
        )
        with reading(self.engine) as connection:
            return [(row[0], CompanyRecord(*row[1:])) for row in connection.execute(query)]

    def changes_after(self, position: int, limit: int, within: Scope | None = None) -> list[Change]:
        """The next changes of the feed after a position, oldest first; only those of the
        perimeter `within` when one is given."""
        company_query = select(companies.c.position, *_COMPANY_COLUMNS).where(
            companies.c.position > position
        )
        establishment_query = select(establishments.c.position, *_ESTABLISHMENT_COLUMNS).where(
            establishments.c.position > position
        )
        if within is not None and not within.everything:
            company_query = company_query.where(_companies_within(within))
            establishment_query = establishment_query.where(_establishments_within(within))
        with reading(self.engine) as connection:
            found = [
                Change(row[0], CompanyRecord(*row[1:]))
                for row in connection.execute(
                    company_query.order_by(companies.c.position).limit(limit)
                )
            ]
            found += [
                Change(row[0], EstablishmentRecord(*row[1:]))
                for row in connection.execute(
                    establishment_query.order_by(establishments.c.position).limit(limit)
                )
            ]
        found.sort(key=lambda change: change.position)
        return found[:limit]

    def last_position(self) -> int:
        """The newest position given out by the feed."""
        with reading(self.engine) as connection:
            return int(connection.execute(select(registry_feed.c.last_position)).scalar_one())

    def upsert(self, records: Sequence[CompanyRecord | EstablishmentRecord]) -> int:
        """Inserts or updates records of one kind in one transaction; returns how many changed.

        A row whose content is unchanged is left alone and keeps its feed position. Of several
        records with one key, the last wins.
        """
        return self.upsert_prepared(prepare_rows(records, self.engine.dialect.name))

    def upsert_prepared(self, rows: PreparedRows) -> int:
        """Like upsert, for records already made ready by `prepare_rows` for this database."""
        if not len(rows):
            return 0
        with self.engine.begin() as connection:
            if isinstance(rows, CopyRows):
                return upsert_copy(connection, rows)
            return upsert_rows(connection, rows)


# What a batch of records becomes before it is written: rows for SQLite, COPY text for
# PostgreSQL. Import workers prepare them, so that the writing process only writes.
PreparedRows = list[dict[str, Any]] | CopyRows


def prepare_rows(
    records: Sequence[CompanyRecord | EstablishmentRecord], dialect: str
) -> PreparedRows:
    """The records of one kind in the form the store writes to a database of this dialect."""
    if dialect == "postgresql":
        return encode_copy(records) if records else []
    return [record.row() for record in records]


_NULL = "\\N"
_BLAKE2B_8 = partial(hashlib.blake2b, digest_size=8)
_SIGNED_64 = partial(int.from_bytes, byteorder="big", signed=True)


def establishment_line(record: EstablishmentRecord) -> str:
    """copy_line(record), written out for the establishments' column types: the import's
    hottest line (text fields, then head office, state, two dates and the restriction)."""
    text = "\t".join(record[:12])
    if text.count("\t") != 11 or "\\" in text or "\n" in text or "\r" in text:
        text = copy_line(record[:12])  # a value that needs COPY's escapes
    created, since = record[14], record[15]
    return (
        f"{text}\t{'t' if record[12] else 'f'}\t{int(record[13])}\t"
        f"{_NULL if created is None else created}\t{_NULL if since is None else since}\t"
        f"{'t' if record[16] else 'f'}"
    )


def encode_copy(records: Sequence[CompanyRecord | EstablishmentRecord]) -> CopyRows:
    """Records of one kind (at least one) as CopyRows, one line per key: of several records
    with one key the last wins, at the place of the first. `count` stays the number of records.

    The same text and hashes as CopyRows.encode, without its duplicates, so that PostgreSQL
    inserts them without sorting the batch first.
    """
    columns: tuple[str, ...]
    if isinstance(records[0], EstablishmentRecord):
        table, columns = "establishments", EstablishmentRecord._fields
        lines = {record[0]: establishment_line(record) for record in records}  # type: ignore[arg-type]
    else:
        table, columns = "companies", COMPANY_COLUMNS
        lines = {record[0]: copy_line(record.column_values()) for record in records}
    kept = list(lines.values())
    # content_hash of each line (records._digest), through C callables only: no Python frame
    # per row.
    digests = map(methodcaller("digest"), map(_BLAKE2B_8, map(str.encode, kept)))
    hashes = map(_SIGNED_64, digests)
    text = "".join(map("{}\t{}\t{}\n".format, itertools.count(1), kept, hashes))
    return CopyRows(table, (*columns, "row_hash"), text, len(records), min(lines), max(lines))


_STAGING: dict[str, Table] = {}


def staging_table(table: Table) -> Table:
    """A temporary table for COPY into `table`, emptied at commit (PostgreSQL bulk path).

    It has the table's columns but `position`, and `ordinal`, the row's place in its batch.
    """
    if table.name not in _STAGING:
        _STAGING[table.name] = Table(
            f"staging_{table.name}",
            MetaData(),
            Column("ordinal", Integer),
            *(Column(c.name, c.type) for c in table.columns if c.name != "position"),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DELETE ROWS",
        )
    return _STAGING[table.name]


def _take_positions(connection: Connection, count: int) -> int:
    """Reserves `count` feed positions in the caller's transaction; returns the one before."""
    last = connection.execute(
        update(registry_feed)
        .where(registry_feed.c.id == 1)
        .values(last_position=registry_feed.c.last_position + count)
        .returning(registry_feed.c.last_position)
    ).scalar_one()
    return int(last) - count


def _holds_between(connection: Connection, table: Table, low: str, high: str) -> bool:
    """Whether the table holds a key from low to high (one probe of its primary key)."""
    key = table.primary_key.columns.values()[0]
    held = select(key).where(key >= low, key <= high).exists()
    return bool(connection.execute(select(held)).scalar_one())


def _positioned(text: str | bytes, base: int) -> tuple[memoryview, int]:
    """COPY text led by ordinals 1, 2, ... as the same lines led by base + 1, base + 2, ...,
    and their count; through pyarrow: no Python frame per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    whole = pa.array([text.encode() if isinstance(text, str) else text], pa.binary())
    lines = pc.list_flatten(pc.split_pattern(whole, b"\n"))
    lines = lines.slice(0, len(lines) - 1)  # after the last line end
    rest = pc.list_element(pc.split_pattern(lines, b"\t", max_splits=1), 1)
    ones = pa.repeat(pa.scalar(1, pa.int64()), len(rest))
    positions = pc.cast(pc.cumulative_sum(ones, start=base), pa.string()).cast(pa.binary())
    joined = pc.binary_join_element_wise(positions, rest, b"\t")
    joined = pc.binary_join_element_wise(joined, b"", b"\n")
    offsets = pa.Array.from_buffers(pa.int32(), len(joined) + 1, [None, joined.buffers()[1]])
    start, end = offsets[0].as_py(), offsets[len(joined)].as_py()
    return memoryview(joined.buffers()[2])[start:end], len(joined)


def upsert_copy(connection: Connection, rows: CopyRows) -> int:
    """Upserts COPY-encoded rows inside the caller's transaction (PostgreSQL); returns how many
    changed. The rows have one line per key (encode_copy)."""
    table = companies if rows.table == "companies" else establishments
    key = "siret" if table is establishments else "siren"
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    base = None
    # A batch of new keys only (none held from its lowest to its highest, as in a first import
    # of a file sorted by key) is copied straight into the table: half the cost of staging
    # and upserting it, and the same rows. Checked again once the feed's counter is held:
    # other writers wait on it until the commit, so no key can come in between. (Keys are
    # digits of one length: every collation orders them as Python does.)
    if rows.low and not _holds_between(connection, table, rows.low, rows.high):
        base = _take_positions(connection, rows.count)
        if not _holds_between(connection, table, rows.low, rows.high):
            text, count = _positioned(rows.text, base)
            columns = ", ".join(("position", *rows.columns))
            with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                copy.write(text)
            cursor.close()
            return count
    # Otherwise COPY into a temporary table, then one set-based upsert from it: several times
    # faster than row-by-row statements. The feed's counter is taken last, so that it is held
    # (it orders the writers) only for the upsert.
    staging = staging_table(table)
    staging.create(connection, checkfirst=True)
    columns = ", ".join(("ordinal", *rows.columns))
    with cursor.copy(f"COPY {staging.name} ({columns}) FROM STDIN") as copy:
        copy.write(rows.text)
    cursor.close()
    if base is None:
        base = _take_positions(connection, rows.count)
    latest = select(*(staging.c[name] for name in rows.columns), staging.c.ordinal + base)
    statement = postgresql.insert(table).from_select([*rows.columns, "position"], latest)
    updated = (*rows.columns, "position")
    statement = statement.on_conflict_do_update(
        index_elements=[key],
        set_={name: statement.excluded[name] for name in updated if name != key},
        where=table.c.row_hash != statement.excluded.row_hash,
    )
    # The command's row count leaves out the conflicting rows the WHERE kept unchanged.
    return connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount


def upsert_rows(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Upserts rows of one table inside the caller's transaction (SQLite); returns how many
    changed. Of several rows of one key, the last wins."""
    key = "siret" if "siret" in rows[0] else "siren"
    table = establishments if key == "siret" else companies
    unique = list({row[key]: row for row in rows}.values())
    base = _take_positions(connection, len(unique))
    for offset, row in enumerate(unique, start=1):
        row["position"] = base + offset
    names = list(unique[0])
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[key],
        set_={name: statement.excluded[name] for name in names if name != key},
        where=table.c.row_hash != statement.excluded.row_hash,
    )
    connection.execute(statement, unique)
    # Rows left unchanged kept their old position, so the new positions count the changes.
    changed = connection.execute(
        select(func.count()).select_from(table).where(table.c.position > base)
    ).scalar_one()
    return int(changed)
