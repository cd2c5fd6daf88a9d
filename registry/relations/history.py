"""History files of relations, loaded in bulk (`interops relations load`): CSV with a header.

  links:        declarant_siret,declared_siret,first_period,last_period   (periods YYYYMM)
  employments:  siret,nir,contract_start,contract_end                     (dates YYYYMMDD)

A bad line is reported (line number and what is wrong, never the NIR itself) and skipped; the
rest of the file goes on. Loading a file twice changes nothing the second time (upserts).
"""

from __future__ import annotations

import csv
import datetime
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from registry.dsn.revealed_relations import Employment
from registry.rcd.identifiers import check_siret
from registry.relations.store import Link

LINK_COLUMNS = ("declarant_siret", "declared_siret", "first_period", "last_period")
EMPLOYMENT_COLUMNS = ("siret", "nir", "contract_start", "contract_end")
NIR = re.compile(r"[0-9]{5}([0-9]{2}|2[AB])[0-9]{6}").fullmatch
MAX_LINE = 1_000


@dataclass
class LoadReport:
    """Lines read and the bad ones: (line number, reason)."""

    lines: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)


def _period(value: str) -> bool:
    return len(value) == 6 and value.isdigit() and 1 <= int(value[4:]) <= 12


def _date(value: str) -> bool:
    try:
        datetime.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return len(value) == 8 and value.isdigit()


def _rows(source: TextIO, columns: tuple[str, ...], report: LoadReport) -> Iterator[list[str]]:
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != columns:
        report.bad.append((1, f"the header must be {','.join(columns)}"))
        return
    for row in reader:
        report.lines += 1
        number = reader.line_num
        if sum(len(cell) for cell in row) > MAX_LINE:
            report.bad.append((number, "the line is too long"))
        elif len(row) != len(columns):
            report.bad.append((number, f"{len(columns)} columns expected, {len(row)} found"))
        else:
            yield [cell.strip() for cell in row]


def read_links(source: TextIO, report: LoadReport) -> Iterator[Link]:
    """The well-formed links of a history file; the others go to `report`."""
    for declarant, declared, first, last in _rows(source, LINK_COLUMNS, report):
        if not check_siret(declarant).ok:
            report.bad.append((report.lines + 1, "declarant_siret is not a valid SIRET"))
        elif not check_siret(declared).ok:
            report.bad.append((report.lines + 1, "declared_siret is not a valid SIRET"))
        elif not (_period(first) and _period(last)) or last < first:
            report.bad.append((report.lines + 1, "periods must be YYYYMM, first <= last"))
        else:
            yield Link(declarant, declared, first, last, "")


def read_employments(source: TextIO, report: LoadReport) -> Iterator[Employment]:
    """The well-formed employments of a history file; the others go to `report`."""
    for siret, nir, start, end in _rows(source, EMPLOYMENT_COLUMNS, report):
        if not check_siret(siret).ok:
            report.bad.append((report.lines + 1, "siret is not a valid SIRET"))
        elif not NIR(nir):
            report.bad.append((report.lines + 1, "nir is not a 13-character NIR"))
        elif not _date(start) or (end and (not _date(end) or end < start)):
            report.bad.append((report.lines + 1, "dates must be YYYYMMDD, start <= end"))
        else:
            yield Employment(siret, nir, start, end)


def write_csv(out: TextIO, columns: tuple[str, ...], rows: Iterable[Iterable[str]]) -> None:
    """A history file (used by tests and the benchmark to make them)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
