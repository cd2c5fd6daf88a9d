"""The RCD's records as plain values: what the store reads and writes and the import produces."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")


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
    streams the text.
    """

    table: str
    columns: tuple[str, ...]
    text: str
    count: int

    def __len__(self) -> int:
        return self.count

    @classmethod
    def encode(cls, records: Sequence[CompanyRecord | EstablishmentRecord]) -> CopyRows:
        """Encodes records of one kind (at least one)."""
        lines = []
        for ordinal, record in enumerate(records, start=1):
            line = copy_line(record.values().values())
            lines.append(f"{ordinal}\t{line}\t{_digest(line)}\n")
        columns = (*records[0].values(), "row_hash")
        table = "establishments" if isinstance(records[0], EstablishmentRecord) else "companies"
        return cls(table, columns, "".join(lines), len(lines))


@dataclass(frozen=True, slots=True)
class CompanyRecord:
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
        values = self.values()
        values["row_hash"] = content_hash(values.values())
        return values

    def values(self) -> dict[str, object]:
        """Column values for the companies table, with name_key but not row_hash."""
        return {
            "siren": self.siren,
            "name": self.name,
            "name_key": name_key(self.name),
            "naf_code": self.naf_code,
            "legal_category": self.legal_category,
            "state": self.state,
            "creation_date": self.creation_date,
            "state_since": self.state_since,
            "head_office_nic": self.head_office_nic,
            "diffusion_restricted": self.diffusion_restricted,
        }


@dataclass(frozen=True, slots=True)
class EstablishmentRecord:
    """An establishment (établissement) as the registry holds it."""

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
        values = self.values()
        values["row_hash"] = content_hash(values.values())
        return values

    def values(self) -> dict[str, object]:
        """Column values for the establishments table, but not row_hash."""
        return {name: getattr(self, name) for name in self.__slots__}
