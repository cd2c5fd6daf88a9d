"""The RCD's records as plain values: what the store reads and writes and the import produces."""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from interops.registry.v1 import registry_pb2

_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")


class AdministrativeState(enum.IntEnum):
    """Whether a company or establishment is active; stored and sent as the number of
    interops.registry.v1.AdministrativeState."""

    ACTIVE = registry_pb2.ADMINISTRATIVE_STATE_ACTIVE
    CEASED = registry_pb2.ADMINISTRATIVE_STATE_CEASED


def name_key(name: str) -> str:
    """Upper-case, accent-free, punctuation-free form of a name, for prefix search."""
    decomposed = unicodedata.normalize("NFKD", name.upper())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_ALNUM.sub(" ", stripped).strip()


# PostgreSQL's COPY text format writes these four characters as backslash escapes.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def copy_line(values: Iterable[object]) -> str:
    """One line of PostgreSQL's COPY text format (without the newline): str, int, bool, date
    (as YYYY-MM-DD) and None."""
    return "\t".join(
        [
            (value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value)
            if isinstance(value, str)
            else "\\N"
            if value is None
            else ("t" if value else "f")
            if isinstance(value, bool)
            else str(value)
            for value in values
        ]
    )


def _digest(line: str) -> int:
    digest = hashlib.blake2b(line.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def content_hash(values: Iterable[object]) -> int:
    """A signed 64-bit digest of a record's content, to update only rows that changed."""
    return _digest(copy_line(values))


@dataclass(frozen=True, slots=True)
class CopyRows:
    """Rows of one table as COPY text, each line led by its ordinal in the batch (from 1) and
    ending with the row's content hash.

    The bulk path to PostgreSQL: import workers encode the rows, so the writing process only
    streams the text. `low` and `high`, the lowest and highest key of rows with one line per
    key, let the store insert a batch of new keys straight into its table ("": unknown).
    """

    table: str
    columns: tuple[str, ...]
    text: str | bytes  # bytes from the columnar path (sirene_columns)
    count: int
    low: str = ""
    high: str = ""

    def __len__(self) -> int:
        return self.count

    @classmethod
    def encode(cls, records: Sequence[CompanyRecord | EstablishmentRecord]) -> CopyRows:
        """Encodes records of one kind (at least one)."""
        lines = []
        for ordinal, record in enumerate(records, start=1):
            line = copy_line(record.column_values())
            lines.append(f"{ordinal}\t{line}\t{_digest(line)}\n")
        columns: tuple[str, ...] = COMPANY_COLUMNS
        table = "companies"
        if isinstance(records[0], EstablishmentRecord):
            table, columns = "establishments", EstablishmentRecord._fields
        return cls(table, (*columns, "row_hash"), "".join(lines), len(lines))


# The columns of each table that a record fills, in order, before row_hash.
COMPANY_COLUMNS = (
    "siren", "name", "name_key", "naf_code", "legal_category", "state", "creation_date",
    "state_since", "head_office_nic", "diffusion_restricted",
)  # fmt: skip


class CompanyRecord(NamedTuple):
    """A company (unité légale) as the registry holds it."""

    siren: str
    name: str
    naf_code: str
    legal_category: str
    state: int
    creation_date: date | None
    state_since: date | None
    head_office_nic: str
    diffusion_restricted: bool

    def row(self) -> dict[str, object]:
        """Column values for the companies table, with the derived columns."""
        values = dict(zip(COMPANY_COLUMNS, self.column_values(), strict=True))
        values["row_hash"] = content_hash(values.values())
        return values

    def column_values(self) -> tuple[object, ...]:
        """Values of COMPANY_COLUMNS: the fields, with name_key after name."""
        return (self.siren, self.name, name_key(self.name), *self[2:])


class EstablishmentRecord(NamedTuple):
    """An establishment (établissement) as the registry holds it.

    A named tuple, not a dataclass: the import makes millions of them, and a tuple is made
    several times faster."""

    siret: str
    name: str
    naf_code: str
    street_number: str
    street_number_suffix: str
    street_type: str
    street_name: str
    complement: str
    postal_code: str
    city: str
    city_code: str
    country: str
    head_office: bool
    state: int
    creation_date: date | None
    state_since: date | None
    diffusion_restricted: bool

    def row(self) -> dict[str, object]:
        """Column values for the establishments table, with the derived columns."""
        values = self._asdict()
        values["row_hash"] = content_hash(self)
        return values

    def column_values(self) -> tuple[object, ...]:
        """Values of the establishments table's columns (its fields), before row_hash."""
        return self
