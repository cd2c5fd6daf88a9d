"""The reference of French bank and counter codes (the Banque de France's "fichier des guichets
domiciliataires", FGD, the SEPA successor of the FIB), kept as a versioned nomenclature table
(registry/nomenclature: each import a version, the difference with the previous one as a note,
subscribers notified) rather than a history of its own.

The importer reads the file as the Banque de France delivers it: fixed-width records, one a line
(ISO-8859-1 or UTF-8), the first character the record's type: "1" an institution, "3" a counter
("guichet"). Of a counter record it reads, 1-based: the bank code (2-6), the counter code (7-11),
the counter's state (12; "2": taken over by the codes at 73-82), its short name (53-72) and its
BIC (235-245); other record types (the institutions, headers, trailers) give no code and are
skipped. Those positions are the Banque de France's "dessin des enregistrements" (annexe 2 of the
FEGA/FGD notice technique) as open-source readers of its files apply it; the notice itself was
not at hand, so only those fields are read. A counter record that stops before its short name is
refused (trailing blanks trimmed by a transfer are not).
It also takes a delimited export (';', ',' or tab, with a header line naming at least the bank
code and counter code columns: `code_banque`/`CIB`/`bank_code`, `code_guichet`/`guichet`/
`counter_code`, and optionally a label `libelle`/`nom`/`name` and a `bic`). Either way it writes
`code;label` lines, the code being the bank code then the counter code (10 digits), for
`interops nomenclature publish BANQUE-FRANCE-GUICHETS FILE`:

    python -m registry.mandate.bank_reference FGD_SEPA_FRANCE.txt > var/guichets.txt

A French IBAN's bank code must be in the table's current version; as long as no version was
published, only the IBAN's format and key are checked (a node starts without it).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
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


# A counter record of the fixed-width file (0-based slices of the 1-based positions above).
_COUNTER_RECORD = "3"
_BANK_CODE, _COUNTER_CODE, _STATE = slice(1, 6), slice(6, 11), slice(11, 12)
_SHORT_NAME, _TAKEN_OVER_BY, _COUNTER_BIC = slice(52, 72), slice(72, 82), slice(234, 245)
_TAKEN_OVER = "2"
# ASCII digits only (str.isdigit() takes "²" or "٣" too).
_DIGITS = re.compile("[0-9]+")
# A line of the file is about 300 characters; a longer one is not this format.
MAX_LINE = 4096


def read_counters(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(bank code + counter code, label) of each counter of an FGD file, fixed-width records
    or a delimited export (told apart by the first line: a record starts with its type, a
    digit; a header with a column name)."""
    rows = iter(lines)
    first = next(rows, "")
    if not first.strip():
        raise BankFileError("line 1: blank (a record or a header line is expected)")
    if _DIGITS.fullmatch(first[:1]):
        yield from _fixed_width(first, rows)
    else:
        yield from _delimited(first, rows)


def _fixed_width(first: str, rows: Iterator[str]) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for number, line in enumerate(itertools.chain((first,), rows), start=1):
        record = line.rstrip("\r\n")
        if len(record) > MAX_LINE:
            raise BankFileError(f"line {number}: longer than {MAX_LINE} characters")
        if record[:1] != _COUNTER_RECORD:
            if record.strip() and not _DIGITS.fullmatch(record[:1]):
                raise BankFileError(f"line {number}: no record type (a digit) in position 1")
            continue
        if len(record) <= _SHORT_NAME.start:  # trailing blanks may have been trimmed; no more
            raise BankFileError(
                f"line {number}: a counter record of {len(record)} characters "
                f"(at least {_SHORT_NAME.start + 1})"
            )
        record = record.ljust(_COUNTER_BIC.stop)
        code = record[_BANK_CODE] + record[_COUNTER_CODE]
        if not _DIGITS.fullmatch(code):
            raise BankFileError(f"line {number}: the bank or counter code is not 5 digits")
        if code in seen:
            raise BankFileError(f"line {number}: counter {code} listed twice")
        seen.add(code)
        parts = [record[_SHORT_NAME].strip(), record[_COUNTER_BIC].strip()]
        if record[_STATE] == _TAKEN_OVER and _DIGITS.fullmatch(record[_TAKEN_OVER_BY]):
            parts.append(f"(repris par {record[_TAKEN_OVER_BY]})")
        yield code, " ".join(part for part in parts if part)[:500]
    if not seen:
        raise BankFileError("no counter record (type 3) in the file")


def _delimited(first: str, rows: Iterator[str]) -> Iterator[tuple[str, str]]:
    try:
        dialect: type[csv.Dialect] = csv.Sniffer().sniff(first, delimiters=";,\t")
    except csv.Error:
        raise BankFileError("line 1: neither a record nor a header of ';', ',' or tab") from None
    header = next(csv.reader([first], dialect))
    bank = _column(header, _BANK, True)
    counter = _column(header, _COUNTER, True)
    label, bic = _column(header, _LABEL, False), _column(header, _BIC, False)
    seen: set[str] = set()
    for number, row in enumerate(csv.reader(rows, dialect), start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            cells = row[bank].strip(), row[counter].strip()  # type: ignore[index]
        except IndexError:
            raise BankFileError(f"line {number}: fewer columns than the header") from None
        code = cells[0].zfill(5) + cells[1].zfill(5)  # leading zeros a spreadsheet dropped
        if not (all(cells) and _DIGITS.fullmatch(code) and len(code) == 10):
            raise BankFileError(f"line {number}: a bank or counter code is not 5 digits")
        if code in seen:
            raise BankFileError(f"line {number}: counter {code} listed twice")
        seen.add(code)
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
    """Converts an FGD file (argument, or standard input) to `code;label` lines."""
    args = sys.argv[1:] if argv is None else argv
    raw = Path(args[0]).read_bytes() if args else sys.stdin.buffer.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:  # the Banque de France's files are ISO-8859-1
        text = raw.decode("iso-8859-1")
    out = io.StringIO()
    try:
        # Lines end at "\n" ("\r\n" too) only: str.splitlines() would also cut a record at a
        # byte the file's charset reads as a line break (0x85 in ISO-8859-1).
        for code, label in read_counters(text.removesuffix("\n").split("\n")):
            out.write(f"{code};{label}\n")
    except BankFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
