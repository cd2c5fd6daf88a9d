"""Reading the INSEE Sirene stock files: StockUniteLegale and StockEtablissement (CSV, UTF-8).

Columns are found by name in the header line, so any column order and extra columns are fine.
Each data line becomes a record or a rejection with its line number and reason; a header that is
not one of the two layouts refuses the whole file before anything is read.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from operator import itemgetter

from registry.rcd.identifiers import check_siren, check_siret
from registry.rcd.records import AdministrativeState, CompanyRecord, EstablishmentRecord

WITHHELD = "[ND]"  # what INSEE shows for data a company asked not to publish ("non diffusible")


class StockKind(enum.Enum):
    """The two stock files of the Sirene directory."""

    COMPANIES = "StockUniteLegale"
    ESTABLISHMENTS = "StockEtablissement"


# The columns each layout must have; the rest of INSEE's columns are read when present.
REQUIRED_COLUMNS = {
    StockKind.COMPANIES: (
        "siren",
        "statutDiffusionUniteLegale",
        "dateCreationUniteLegale",
        "dateDebut",
        "etatAdministratifUniteLegale",
        "denominationUniteLegale",
        "categorieJuridiqueUniteLegale",
        "activitePrincipaleUniteLegale",
        "nicSiegeUniteLegale",
    ),
    StockKind.ESTABLISHMENTS: (
        "siret",
        "statutDiffusionEtablissement",
        "dateCreationEtablissement",
        "etablissementSiege",
        "codePostalEtablissement",
        "libelleCommuneEtablissement",
        "dateDebut",
        "etatAdministratifEtablissement",
        "activitePrincipaleEtablissement",
    ),
}

_STATES = {
    StockKind.COMPANIES: {"A": AdministrativeState.ACTIVE, "C": AdministrativeState.CEASED},
    StockKind.ESTABLISHMENTS: {"A": AdministrativeState.ACTIVE, "F": AdministrativeState.CEASED},
}
_LIMITS = {"name": 300, "street_name": 200, "complement": 200, "city": 100, "country": 100}


class StockFormatError(ValueError):
    """The file is not a Sirene stock file; nothing of it can be imported."""


class LineRejected(ValueError):
    """One data line cannot be imported; the message says why."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A data line that was not imported."""

    line_number: int
    reason: str


def detect_kind(header: list[str]) -> StockKind:
    """Recognises the layout from the header line's column names."""
    names = set(header)
    for kind, required in REQUIRED_COLUMNS.items():
        if names.issuperset(required):
            return kind
    if "siret" in names or "siren" in names:
        kind = StockKind.ESTABLISHMENTS if "siret" in names else StockKind.COMPANIES
        missing = [c for c in REQUIRED_COLUMNS[kind] if c not in names]
        raise StockFormatError(f"{kind.value} header lacks the columns {', '.join(missing)}")
    raise StockFormatError(
        "the first line is not the header of a Sirene stock file "
        "(StockUniteLegale or StockEtablissement)"
    )


# Dates repeat across millions of lines: each distinct text is parsed once (bounded, so that a
# hostile file cannot grow it without end).
_DAYS: dict[str, date] = {}
_MAX_DAYS = 100_000


def _date(value: str, column: str) -> date | None:
    if not value:
        return None
    day = _DAYS.get(value)
    if day is not None:
        return day
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise LineRejected(f"{column} is not a date (YYYY-MM-DD): {value[:20]!r}") from None
    if len(_DAYS) < _MAX_DAYS:
        _DAYS[value] = day
    return day


def _state(kind: StockKind, value: str, column: str) -> AdministrativeState:
    try:
        return _STATES[kind][value]
    except KeyError:
        allowed = "/".join(_STATES[kind])
        raise LineRejected(f"{column} must be {allowed}, not {value[:10]!r}") from None


def _fit(field: str, value: str) -> str:
    if len(value) > _LIMITS.get(field, 10_000):
        raise LineRejected(f"{field} is longer than {_LIMITS[field]} characters")
    return value


# Every column the parsers read, in the order they take them; optional ones absent from a file
# read as empty.
USED_COLUMNS = {
    StockKind.COMPANIES: (
        *REQUIRED_COLUMNS[StockKind.COMPANIES],
        "prenomUsuelUniteLegale", "prenom1UniteLegale", "nomUsageUniteLegale", "nomUniteLegale",
    ),
    StockKind.ESTABLISHMENTS: (
        *REQUIRED_COLUMNS[StockKind.ESTABLISHMENTS],
        "siren", "nic", "enseigne1Etablissement", "denominationUsuelleEtablissement",
        "numeroVoieEtablissement", "indiceRepetitionEtablissement", "typeVoieEtablissement",
        "libelleVoieEtablissement", "complementAdresseEtablissement",
        "libelleCommuneEtrangerEtablissement", "codeCommuneEtablissement",
        "libellePaysEtrangerEtablissement",
    ),
}  # fmt: skip

# The values of USED_COLUMNS of one line, stripped, in that order. Parsers take a tuple, not a
# dict: a dict per line was a third of the import's time.
Values = tuple[str, ...]
_COMPANY_STATES = _STATES[StockKind.COMPANIES]
_ESTABLISHMENT_STATES = _STATES[StockKind.ESTABLISHMENTS]
_MAX_NAME, _MAX_STREET, _MAX_PLACE = _LIMITS["name"], _LIMITS["street_name"], _LIMITS["city"]
# Luhn over 14 ASCII digits: every digit at an even index doubled (its digits summed), the
# others as they are. On the bytes, the sum is off by 14 * ord("0") = 672, so a valid SIRET
# sums to 2 modulo 10.
_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def _plain_luhn_siret(siret: str) -> bool:
    """True for 14 ASCII digits passing Luhn: the common case, answered without building
    check_siret's verdict (which stays the authority for every other value)."""
    if len(siret) != 14 or not siret.isascii() or not siret.isdigit():
        return False
    data = siret.encode()
    return (sum(data[1::2]) + sum(data[::2].translate(_DOUBLED))) % 10 == 2


def company_of(values: Values) -> CompanyRecord:
    """The company of one line's values; LineRejected says why there is none."""
    (siren, diffusion, created, since, state, denomination, legal_category, naf, nic,
     usual_first, first, usage_last, last) = values  # fmt: skip
    check = check_siren(siren)
    if not check.ok:
        raise LineRejected(f"siren {siren[:20]!r}: {check.message}")
    restricted = diffusion not in ("O", "")
    name = denomination
    if not name:  # a natural person: first name and last name, as Sirene publishes them
        name = f"{usual_first or first} {usage_last or last}".strip()
    if nic and not (len(nic) == 5 and nic.isascii() and nic.isdigit()):
        raise LineRejected(f"nicSiegeUniteLegale must be 5 digits, not {nic[:10]!r}")
    return CompanyRecord(
        siren,
        WITHHELD if restricted else _fit("name", name),
        naf[:8],
        legal_category[:4],
        _COMPANY_STATES.get(state) or _state(StockKind.COMPANIES, state, "etatAdministratif"),
        _DAYS.get(created) or _date(created, "dateCreationUniteLegale"),
        _DAYS.get(since) or _date(since, "dateDebut"),
        nic,
        restricted,
    )


def establishment_of(values: Values) -> EstablishmentRecord:
    """The establishment of one line's values; LineRejected says why there is none."""
    # The checks run in the order of the record's fields: a line with several faults is
    # rejected for the first.
    (siret, diffusion, created, head_office, postal_code, city, since, state, naf, siren, nic,
     sign, usual_name, number, suffix, street_type, street_name, complement, foreign_city,
     city_code, country) = values  # fmt: skip
    if not _plain_luhn_siret(siret):
        check = check_siret(siret)
        if not check.ok:
            raise LineRejected(f"siret {siret[:20]!r}: {check.message}")
    if siren and siren + nic != siret:
        raise LineRejected("siret is not siren followed by nic")
    if diffusion in ("O", ""):
        name = sign or usual_name
        if len(name) > _MAX_NAME or len(street_name) > _MAX_STREET or len(complement) > _MAX_STREET:
            _fit("name", name)
            _fit("street_name", street_name)
            _fit("complement", complement)
        number, suffix, street_type = number[:10], suffix[:10], street_type[:10]
        restricted = False
    else:  # withheld: the name, and the address but its commune
        name, number, suffix, street_type, street_name, complement = WITHHELD, "", "", "", "", ""
        restricted = True
    city = city or foreign_city
    if len(city) > _MAX_PLACE or len(country) > _MAX_PLACE:
        _fit("city", city)
        _fit("country", country)
    return EstablishmentRecord(
        siret,
        name,
        naf[:8],
        number,
        suffix,
        street_type,
        street_name,
        complement,
        postal_code[:10],
        city,
        city_code[:10],
        country,
        head_office.lower() == "true",
        _ESTABLISHMENT_STATES.get(state)
        or _state(StockKind.ESTABLISHMENTS, state, "etatAdministratif"),
        _DAYS.get(created) or _date(created, "dateCreationEtablissement"),
        _DAYS.get(since) or _date(since, "dateDebut"),
        restricted,
    )


def header_names(line: str) -> list[str]:
    """The column names of a header line, as read_stock reads them."""
    return [name.strip().lstrip("\ufeff") for name in next(csv.reader([line]), [])]


def column_places(header: list[str], kind: StockKind) -> list[int]:
    """Where each of USED_COLUMNS[kind] is in a line of this header: the first column of that
    name; an absent optional column points one past the last field (read as "")."""
    width = len(header)
    return [header.index(name) if name in header else width for name in USED_COLUMNS[kind]]


def read_stock(
    lines: Iterable[str], expected: StockKind | None = None
) -> tuple[StockKind, Iterator[tuple[int, CompanyRecord | EstablishmentRecord | Rejection]]]:
    """Reads a stock file's lines: its kind, then (line number, record or rejection) pairs.

    Raises StockFormatError at once when the header is not a stock file's, or not the expected
    kind's.
    """
    reader = csv.reader(iter(lines), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise StockFormatError("the file is empty") from None
    except csv.Error as error:
        raise StockFormatError(f"the header line is not CSV: {error}") from None
    header = [name.strip().lstrip("\ufeff") for name in header]
    kind = detect_kind(header)
    if expected is not None and kind is not expected:
        raise StockFormatError(f"expected a {expected.value} file, got a {kind.value} file")
    width = len(header)
    take = itemgetter(*column_places(header, kind))
    parse = company_of if kind is StockKind.COMPANIES else establishment_of
    strip = str.strip

    def records() -> Iterator[tuple[int, CompanyRecord | EstablishmentRecord | Rejection]]:
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield reader.line_num, Rejection(reader.line_num, f"not valid CSV: {error}")
                continue
            if not values:
                continue
            if len(values) != width:
                reason = f"{len(values)} fields where the header has {width}"
                yield reader.line_num, Rejection(reader.line_num, reason)
                continue
            values.append("")
            try:
                yield reader.line_num, parse(tuple(map(strip, take(values))))
            except LineRejected as rejected:
                yield reader.line_num, Rejection(reader.line_num, str(rejected))

    return kind, records()
