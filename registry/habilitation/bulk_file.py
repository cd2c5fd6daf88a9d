"""The bulk habilitation file (fichier d'habilitations en masse): a CSV of administrative acts,
one a line, read line by line with a reason for each line that cannot be read, and written back
from a company's current portfolios and habilitations.

    action,account,siret,service,portfolio
    CREATE_PORTFOLIO,,,,Clients Nord
    ADD_ESTABLISHMENT,,12345678900017,,Clients Nord
    ADD_SERVICE,,,ATMP,Clients Nord
    GRANT,42,12345678900017,ATMP,

Every act is idempotent (adding what is there, revoking what is not held, change nothing), so an
exported file imported again changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from registry.habilitation.declarative_services import SERVICES
from registry.habilitation.store import Habilitation, Portfolio, PortfolioKind
from registry.rcd.identifiers import check_siret

HEADER = ("action", "account", "siret", "service", "portfolio")
# Which columns each action needs.
ACTIONS = {
    "CREATE_PORTFOLIO": ("portfolio",),
    "ADD_ESTABLISHMENT": ("portfolio", "siret"),
    "REMOVE_ESTABLISHMENT": ("portfolio", "siret"),
    "ADD_SERVICE": ("portfolio", "service"),
    "REMOVE_SERVICE": ("portfolio", "service"),
    "GRANT": ("account", "siret", "service"),
    "REVOKE": ("account", "siret", "service"),
}
MAX_LINES = 100_000


class BadBulkFile(ValueError):
    """A file refused as a whole before any act of it is applied: `reason` is a stable code,
    `message` says why, `detail` what is wrong with the content."""

    def __init__(self, reason: str, message: str, detail: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail


def counted_lines(content: bytes) -> int:
    """The number of act lines of a file whose header is right; refuses any other file, and a
    file of more than MAX_LINES acts."""
    first, _, rest = content.partition(b"\n")
    header = first.decode("utf-8-sig", "replace").strip().lower()
    if tuple(part.strip() for part in header.split(",")) != HEADER:
        raise BadBulkFile(
            "MALFORMED_FILE", f"the first line must be {','.join(HEADER)}", "no header line"
        )
    lines = sum(1 for line in rest.splitlines() if line.strip())
    if lines > MAX_LINES:
        raise BadBulkFile(
            "TOO_MANY_LINES",
            f"a file holds at most {MAX_LINES} acts",
            f"more than {MAX_LINES} lines",
        )
    return lines


@dataclass(frozen=True, slots=True)
class BulkLine:
    """One act of a bulk file."""

    number: int
    action: str
    account: int = 0
    siret: str = ""
    service: str = ""
    portfolio: str = ""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that cannot be read: its number (the header is 1), a stable reason, why."""

    number: int
    reason: str
    message: str


def _check(number: int, fields: dict[str, str]) -> BulkLine | BadLine:
    action = fields["action"].strip().upper()
    needed = ACTIONS.get(action)
    if needed is None:
        return BadLine(number, "UNKNOWN_ACTION", f"no action {action[:40]!r}")
    missing = [name for name in needed if not fields[name].strip()]
    if missing:
        return BadLine(number, "MALFORMED_LINE", f"{action} needs {', '.join(missing)}")
    account, siret = fields["account"].strip(), fields["siret"].strip()
    service, portfolio = fields["service"].strip().upper(), fields["portfolio"].strip()
    if "account" in needed and not (account.isdecimal() and len(account) <= 18):
        return BadLine(number, "UNKNOWN_DECLARANT", f"account {account[:20]!r} is not an id")
    if "siret" in needed and not check_siret(siret).ok:
        return BadLine(number, "UNKNOWN_SIRET", f"{siret[:20]!r} is not a valid SIRET")
    if "service" in needed and service not in SERVICES:
        return BadLine(number, "UNKNOWN_SERVICE", f"no service {service[:40]!r}")
    if len(portfolio) > 100:
        return BadLine(number, "MALFORMED_LINE", "a portfolio name has at most 100 characters")
    return BulkLine(number, action, int(account or 0), siret, service, portfolio)


def read_lines(content: bytes) -> Iterator[BulkLine | BadLine]:
    """The acts of a file in order; a line that cannot be read is a BadLine and the file goes
    on. A file without the header line is one BadLine."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        yield BadLine(1, "MALFORMED_FILE", f"not UTF-8 (byte {error.start})")
        return
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        yield BadLine(1, "MALFORMED_FILE", f"the first line must be {','.join(HEADER)}")
        return
    for number, row in enumerate(rows, start=2):
        if number > MAX_LINES + 1:
            yield BadLine(number, "TOO_MANY_LINES", f"a file holds at most {MAX_LINES} acts")
            return
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(HEADER):
            yield BadLine(number, "MALFORMED_LINE", f"{len(row)} columns, {len(HEADER)} expected")
            continue
        yield _check(number, dict(zip(HEADER, row, strict=True)))


def write_lines(portfolios: Iterable[Portfolio], held: Iterable[Habilitation]) -> Iterator[str]:
    """The file that states these portfolios and habilitations, line by line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")

    def line(*values: object) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow(values)
        return out.getvalue()

    yield line(*HEADER)
    for portfolio in portfolios:
        if portfolio.kind == PortfolioKind.CLIENTS:
            yield line("CREATE_PORTFOLIO", "", "", "", portfolio.name)
        for siret in portfolio.sirets:
            yield line("ADD_ESTABLISHMENT", "", siret, "", portfolio.name)
        for service in portfolio.services:
            yield line("ADD_SERVICE", "", "", service, portfolio.name)
    for habilitation in held:
        yield line("GRANT", habilitation.declarant_id, habilitation.siret, habilitation.service, "")
