"""The RCD's records as plain values: what the store reads and writes and the import produces."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")


def name_key(name: str) -> str:
    """Upper-case, accent-free, punctuation-free form of a name, for prefix search."""
    decomposed = unicodedata.normalize("NFKD", name.upper())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_ALNUM.sub(" ", stripped).strip()


def content_hash(values: tuple[object, ...]) -> int:
    """A signed 64-bit digest of a record's content, to update only rows that changed."""
    digest = hashlib.blake2b(repr(values).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


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
            "row_hash": content_hash(tuple(getattr(self, name) for name in self.__slots__)),
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
        values = {name: getattr(self, name) for name in self.__slots__}
        values["row_hash"] = content_hash(tuple(values.values()))
        return values
