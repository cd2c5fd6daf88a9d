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


def _date(value: str, column: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LineRejected(f"{column} is not a date (YYYY-MM-DD): {value[:20]!r}") from None


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


# Every column the parsers read; optional ones absent from a file read as empty.
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

Row = dict[str, str]


def _company(row: Row) -> CompanyRecord:
    siren = row["siren"]
    check = check_siren(siren)
    if not check.ok:
        raise LineRejected(f"siren {siren[:20]!r}: {check.message}")
    restricted = row["statutDiffusionUniteLegale"] not in ("O", "")
    name = row["denominationUniteLegale"]
    if not name:  # a natural person: first name and last name, as Sirene publishes them
        first = row["prenomUsuelUniteLegale"] or row["prenom1UniteLegale"]
        last = row["nomUsageUniteLegale"] or row["nomUniteLegale"]
        name = f"{first} {last}".strip()
    nic = row["nicSiegeUniteLegale"]
    if nic and not (len(nic) == 5 and nic.isascii() and nic.isdigit()):
        raise LineRejected(f"nicSiegeUniteLegale must be 5 digits, not {nic[:10]!r}")
    return CompanyRecord(
        siren=siren,
        name=WITHHELD if restricted else _fit("name", name),
        naf_code=row["activitePrincipaleUniteLegale"][:8],
        legal_category=row["categorieJuridiqueUniteLegale"][:4],
        state=_state(StockKind.COMPANIES, row["etatAdministratifUniteLegale"], "etatAdministratif"),
        creation_date=_date(row["dateCreationUniteLegale"], "dateCreationUniteLegale"),
        state_since=_date(row["dateDebut"], "dateDebut"),
        head_office_nic=nic,
        diffusion_restricted=restricted,
    )


def _establishment(row: Row) -> EstablishmentRecord:
    siret = row["siret"]
    check = check_siret(siret)
    if not check.ok:
        raise LineRejected(f"siret {siret[:20]!r}: {check.message}")
    if row["siren"] and row["siren"] + row["nic"] != siret:
        raise LineRejected("siret is not siren followed by nic")
    restricted = row["statutDiffusionEtablissement"] not in ("O", "")
    street = not restricted  # a withheld address keeps only its commune
    return EstablishmentRecord(
        siret=siret,
        name=WITHHELD
        if restricted
        else _fit("name", row["enseigne1Etablissement"] or row["denominationUsuelleEtablissement"]),
        naf_code=row["activitePrincipaleEtablissement"][:8],
        street_number=row["numeroVoieEtablissement"][:10] if street else "",
        street_number_suffix=row["indiceRepetitionEtablissement"][:10] if street else "",
        street_type=row["typeVoieEtablissement"][:10] if street else "",
        street_name=_fit("street_name", row["libelleVoieEtablissement"]) if street else "",
        complement=_fit("complement", row["complementAdresseEtablissement"]) if street else "",
        postal_code=row["codePostalEtablissement"][:10],
        city=_fit(
            "city", row["libelleCommuneEtablissement"] or row["libelleCommuneEtrangerEtablissement"]
        ),
        city_code=row["codeCommuneEtablissement"][:10],
        country=_fit("country", row["libellePaysEtrangerEtablissement"]),
        head_office=row["etablissementSiege"].lower() == "true",
        state=_state(
            StockKind.ESTABLISHMENTS, row["etatAdministratifEtablissement"], "etatAdministratif"
        ),
        creation_date=_date(row["dateCreationEtablissement"], "dateCreationEtablissement"),
        state_since=_date(row["dateDebut"], "dateDebut"),
        diffusion_restricted=restricted,
    )


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
    # Absent optional columns point one past the last field, where each line gets an "".
    columns = [
        (name, header.index(name) if name in header else width) for name in USED_COLUMNS[kind]
    ]
    parse = _company if kind is StockKind.COMPANIES else _establishment

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
                yield reader.line_num, parse({name: values[p].strip() for name, p in columns})
            except LineRejected as rejected:
                yield reader.line_num, Rejection(reader.line_num, str(rejected))

    return kind, records()
