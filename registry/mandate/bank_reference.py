"""The reference of French bank and counter codes (the Banque de France's "fichier des guichets
domiciliataires", FGD, the SEPA successor of the FIB), kept as a versioned nomenclature table
(registry/nomenclature: each import a version, the difference with the previous one as a note,
subscribers notified) rather than a history of its own.

The importer reads the file as delivered in delimited form (';', ',' or tab, with a header line
naming at least the bank code and counter code columns: `code_banque`/`CIB`/`bank_code`,
`code_guichet`/`guichet`/`counter_code`, and optionally a label `libelle`/`nom`/`name` and a
`bic`) and writes `code;label` lines, the code being the bank code then the counter code (10
digits), for `interops nomenclature publish BANQUE-FRANCE-GUICHETS FILE`:

    python -m registry.mandate.bank_reference FGD.csv > var/guichets.txt

A French IBAN's bank code must be in the table's current version; as long as no version was
published, only the IBAN's format and key are checked (a node starts without it).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from registry.nomenclature.store import NomenclatureStore

TABLE = "BANQUE-FRANCE-GUICHETS"
_BANK = ("code_banque", "code banque", "cib", "bank_code", "etablissement")
_COUNTER = ("code_guichet", "code guichet", "guichet", "counter_code")
_LABEL = ("libelle", "libellé", "libelle_guichet", "nom", "name", "denomination")
_BIC = ("bic", "code_bic")


class BankFileError(ValueError):
    """A bank reference file that cannot be read: it names the line."""


def _column(header: list[str], names: tuple[str, ...], required: bool) -> int | None:
    lowered = [name.strip().lower() for name in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    if required:
        raise BankFileError(f"line 1: no column {names[0]} (or {', '.join(names[1:])})")
    return None


def read_counters(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(bank code + counter code, label) of each line of a delimited FGD file."""
    rows = iter(lines)
    first = next(rows, "")
    dialect = csv.Sniffer().sniff(first, delimiters=";,\t") if first.strip() else csv.excel
    header = next(csv.reader([first], dialect))
    bank = _column(header, _BANK, True)
    counter = _column(header, _COUNTER, True)
    label, bic = _column(header, _LABEL, False), _column(header, _BIC, False)
    for number, row in enumerate(csv.reader(rows, dialect), start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            code = row[bank].strip().zfill(5) + row[counter].strip().zfill(5)  # type: ignore[index]
        except IndexError:
            raise BankFileError(f"line {number}: fewer columns than the header") from None
        if not (code.isdigit() and len(code) == 10):
            raise BankFileError(f"line {number}: a bank or counter code is not 5 digits")
        parts = [row[i].strip() for i in (label, bic) if i is not None and i < len(row)]
        yield code, " ".join(part for part in parts if part)[:500]


class BankReference:
    """Which bank codes the current version of the reference holds, read once per version."""

    def __init__(self, nomenclatures: NomenclatureStore) -> None:
        self.nomenclatures = nomenclatures
        self._version = 0
        self._banks: frozenset[str] = frozenset()

    def knows(self, bank_code: str) -> bool | None:
        """Whether the current version holds the bank code; None before any version."""
        version = self.nomenclatures.latest(TABLE)
        if version == 0:
            return None
        if version != self._version:
            codes = self.nomenclatures.codes(TABLE, version) or {}
            self._banks = frozenset(code[:5] for code in codes)
            self._version = version
        return bank_code in self._banks


def main(argv: list[str] | None = None) -> int:
    """Converts a delimited FGD file (argument, or standard input) to `code;label` lines."""
    args = sys.argv[1:] if argv is None else argv
    text = Path(args[0]).read_text("utf-8-sig") if args else sys.stdin.read()
    out = io.StringIO()
    try:
        for code, label in read_counters(text.splitlines()):
            out.write(f"{code};{label}\n")
    except BankFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
