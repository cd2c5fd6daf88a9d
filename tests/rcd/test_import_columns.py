"""The columnar fast path of the establishments import (registry/rcd/sirene_columns.py) gives
exactly what the Python reader gives: the same COPY rows and hashes, the same rejections with
the same line numbers and reasons, the same count of lines read; and a file is imported the
same whichever path reads it."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pyarrow as pa
from sqlalchemy import select

from registry.kernel.database import open_engine, upgrade
from registry.rcd.identifiers import luhn_complete, luhn_ok
from registry.rcd.records import CopyRows, EstablishmentRecord
from registry.rcd.schema import establishments
from registry.rcd.sirene_columns import _day, _luhn, columnar_pass
from registry.rcd.sirene_import import import_stock, parse_chunk, read_chunk
from registry.rcd.sirene_stock import Rejection, StockKind
from registry.rcd.sirene_synth import ESTABLISHMENT_HEADER, siret_of
from registry.rcd.store import RcdStore, prepare_rows
from tests.databases import fresh_database
from tests.rcd.stock_lines import establishment_line

HEADER = ",".join(ESTABLISHMENT_HEADER) + "\n"
LA_POSTE_OK = siret_of("356000000", 12)  # sum of digits a multiple of 5, Luhn wrong
CLEAN = "55203253400646"


_FRESH = (siret_of(luhn_complete(f"{12345678 + index:08d}"), 1) for index in range(10**6))


def _line(siret: str = "", **changes: str) -> str:
    """A clean line of a fresh SIRET, but for the changes."""
    return establishment_line(
        siret or next(_FRESH), **{"libelleVoieEtablissement": "DE LA PAIX", **changes}
    )


def _valid(rng: random.Random) -> str:
    return luhn_complete(f"{rng.randrange(10**12, 10**13):013d}")


# Lines of every kind the reader treats apart, each as bytes (with its line end).
MIXED: list[bytes] = [
    "\ufeff".encode() + _line().encode() + b"\n",  # arrow's reader would drop the mark
    _line(CLEAN).encode() + b"\n",
    _line("55203253400647").encode() + b"\n",  # bad Luhn key
    _line("5520325340064").encode() + b"\n",  # 13 digits
    _line("5520325340064a").encode() + b"\n",
    _line("１２３４５６７８９０１２３４").encode() + b"\n",  # digits, not ASCII ones
    _line(LA_POSTE_OK).encode() + b"\n",  # La Poste's rule
    _line("35600000000049").encode() + b"\n",  # La Poste, wrong
    _line(CLEAN, siren="552032535").encode() + b"\n",  # siren + nic is not the siret
    _line(CLEAN, siren="").encode() + b"\n",  # no siren: nothing to compare
    _line(dateCreationEtablissement="2001-02-30").encode() + b"\n",
    _line(dateCreationEtablissement="2000-02-29").encode() + b"\n",
    _line(dateCreationEtablissement="1900-02-29").encode() + b"\n",
    _line(dateCreationEtablissement="0000-01-01").encode() + b"\n",
    _line(dateCreationEtablissement="0001-01-01", dateDebut="9999-12-31").encode() + b"\n",
    _line(dateCreationEtablissement="20010203").encode() + b"\n",  # fromisoformat reads it
    _line(dateDebut="2001-W01-1").encode() + b"\n",
    _line(dateDebut="2001-13-45").encode() + b"\n",
    _line(dateDebut=" 2001-02-03 ", dateCreationEtablissement="").encode() + b"\n",
    _line(etatAdministratifEtablissement="F").encode() + b"\n",
    _line(etatAdministratifEtablissement="X").encode() + b"\n",
    _line(etatAdministratifEtablissement="").encode() + b"\n",
    _line(etablissementSiege="TRUE").encode() + b"\n",
    _line(etablissementSiege="oui").encode() + b"\n",
    _line(etablissementSiege="tRuE\u00a0").encode() + b"\n",
    _line(etablissementSiege="ＴＲＵＥ").encode() + b"\n",
    _line(statutDiffusionEtablissement="P", libelleVoieEtablissement="V" * 201).encode() + b"\n",
    _line(statutDiffusionEtablissement="N", numeroVoieEtablissement="12").encode() + b"\n",
    _line(statutDiffusionEtablissement="", enseigne1Etablissement="E").encode() + b"\n",
    _line(libelleVoieEtablissement="V" * 201).encode() + b"\n",
    _line(libelleVoieEtablissement="É" * 200).encode() + b"\n",
    _line(complementAdresseEtablissement="C" * 201).encode() + b"\n",
    _line(enseigne1Etablissement="N" * 301).encode() + b"\n",
    _line(denominationUsuelleEtablissement="中" * 300).encode() + b"\n",
    _line(libelleCommuneEtablissement="", libelleCommuneEtrangerEtablissement="X" * 101).encode()
    + b"\n",
    _line(libelleCommuneEtablissement="", libelleCommuneEtrangerEtablissement="BERLIN").encode()
    + b"\n",
    _line(libellePaysEtrangerEtablissement="P" * 101).encode() + b"\n",
    _line(numeroVoieEtablissement="12345678901234", typeVoieEtablissement="ÉÉÉÉÉÉÉÉÉÉÉÉ").encode()
    + b"\n",
    _line(
        activitePrincipaleEtablissement="69.20Z-TOO-LONG", codePostalEtablissement="1" * 12
    ).encode()
    + b"\n",
    _line(
        enseigne1Etablissement=" \u00a0\x1cMIDI\u2028 ", libelleVoieEtablissement="\x0bA\x1f"
    ).encode()
    + b"\n",
    _line(enseigne1Etablissement="A\u3000B", libelleVoieEtablissement="\x85X\x85").encode() + b"\n",
    _line(libelleVoieEtablissement="RUE \\N DU BAC").encode() + b"\n",  # COPY escapes
    _line(libelleVoieEtablissement="TAB\tBED").encode() + b"\n",
    _line(libelleVoieEtablissement='"RUE, DU BAC"').encode() + b"\n",  # quoted comma
    _line(libelleVoieEtablissement='"RUE ""X"""').encode() + b"\n",
    _line(libelleVoieEtablissement='"AB"C').encode() + b"\n",  # not CSV
    _line(libelleVoieEtablissement='A"B').encode() + b"\n",  # a quote inside: plain text
    _line(libelleCommuneEtablissement="LYON\0").encode() + b"\n",
    _line(libelleCommuneEtablissement="é").encode()[:-1] + b"\xff\n",  # not UTF-8
    _line(enseigne3Etablissement="\xe9t\xe9").encode("latin-1") + b"\n",
    _line(libelleVoieEtablissement="CR").encode() + b"\r\n",
    # A field over the csv module's limit (131,072): the reader refuses it; arrow has no limit.
    _line(enseigne3Etablissement="X" * 140_000).encode() + b"\n",
    _line(statutDiffusionEtablissement="P", enseigne1Etablissement="N" * 131_073).encode() + b"\n",
    b"\n",
    b"   \n",
    b"\0\n",
    b"73282932000074,O\n",
    _line(codeCommuneEtablissement="1,2").encode() + b"\n",  # one field too many
    _line("73282932000074").encode() + b"\n",
    _line(CLEAN, libelleVoieEtablissement="SECOND").encode() + b"\n",  # a key again
]


def _outcome(
    raw_lines: list[bytes], first_line: int = 2, header: str = HEADER
) -> tuple[list[str], list[Rejection], int]:
    """What both paths make of a chunk, the same: (count and COPY lines, rejections, lines
    read)."""
    fast_rows, fast_rejections, fast_read = parse_chunk(
        header, StockKind.ESTABLISHMENTS.value, first_line, raw_lines, dialect="postgresql"
    )
    found, rejections, read = read_chunk(header, StockKind.ESTABLISHMENTS, first_line, raw_lines)
    slow_rows = prepare_rows([record for _, record in found], "postgresql")

    def text(rows: object) -> list[str]:
        if not isinstance(rows, CopyRows):
            return []
        body = rows.text if isinstance(rows.text, str) else rows.text.decode()
        return [f"{rows.count}", *body.splitlines()]

    assert (fast_rejections, fast_read) == (rejections, read)
    assert text(fast_rows) == text(slow_rows)
    return text(fast_rows), rejections, read


def test_a_mixed_chunk_gives_the_same_rows_and_rejections_either_way() -> None:
    columnar = columnar_pass(HEADER, MIXED)
    assert columnar is not None  # all of it read by the columnar pass and the reader
    assert 1 in columnar.places and 0 in columnar.others and 2 in columnar.others
    rows, rejections, read = _outcome(MIXED, first_line=10)
    assert len(rows) > 25 and len(rejections) > 20
    assert read == len(MIXED) - 2  # a blank line (the NUL one too) is not a line read


def test_a_quoted_field_across_lines_sends_the_chunk_to_the_reader() -> None:
    lines = [*MIXED[:5], _line(libelleVoieEtablissement='"RUE\n').encode(), b'DU BAC"\n']
    lines += MIXED[5:]
    assert columnar_pass(HEADER, lines) is None
    _outcome(lines)


def test_a_last_line_without_its_line_end_and_other_headers() -> None:
    _outcome([MIXED[1], MIXED[6], _line("73282932000074").encode()])
    # Columns in another order, a byte order mark, one column twice (the first is read), and
    # optional columns missing.
    names = ["\ufeffsiret", *reversed(ESTABLISHMENT_HEADER[3:]), "siret", "nic", "siren"]
    names.remove("enseigne1Etablissement")
    names.remove("libelleVoieEtablissement")
    lines = []
    for changes in [{}, {"denominationUsuelleEtablissement": "D"}, {"dateDebut": "x"}]:
        siret = next(_FRESH)
        row = dict(zip(ESTABLISHMENT_HEADER, _line(siret, **changes).split(","), strict=True))
        row["\ufeffsiret"] = siret
        lines.append((",".join(row[name.lstrip("\ufeff")] if name != "siret" else "x"
                               for name in names) + "\n").encode())  # fmt: skip
    rows, rejections, read = _outcome(lines, header=",".join(names) + "\n")
    assert len(rows) == 3 and len(rejections) == 1 and read == 3


def test_the_vectorised_checks_accept_what_the_reader_accepts_and_nothing_else() -> None:
    rng = random.Random(8)
    sirets = [f"{rng.randrange(10**14):014d}" for _ in range(20_000)]
    sirets += [_valid(rng) for _ in range(2_000)] + ["00000000000000", "99999999999999"]
    assert _luhn(pa.array(sirets)).to_pylist() == [luhn_ok(siret) for siret in sirets]
    days = [
        f"{rng.randrange(10_000):04d}-{rng.randrange(14):02d}-{rng.randrange(33):02d}"
        for _ in range(20_000)
    ]
    days += ["", "0000-01-01", "0001-01-01", "9999-12-31", "2000-02-29", "1900-02-29"]
    days += ["20010101", "2001-W01-1", "2001-1-01", " 2001-01-01", "2001-01-01T00:00", "2001/01/01"]
    days += ["+001-01-01", "１２３４-01-01", "2001-01-0١", "10000-01-01", "2001-01-01 "]

    def python(value: str) -> bool:
        try:
            return value == "" or date.fromisoformat(value).isoformat() == value
        except ValueError:
            return False

    expected = [python(day) for day in days]
    assert _day(pa.array(days))[0].to_pylist() == expected  # value by value (some are bad)
    alone = days[-2_000:]  # arrow's reading, of each value alone
    assert [_day(pa.array([day]))[0][0].as_py() for day in alone] == expected[-2_000:]
    valid = [day for day, ok in zip(days, expected, strict=True) if ok]
    assert _day(pa.array(valid))[0].to_pylist() == [True] * len(valid)


def test_random_chunks_give_the_same_outcome_either_way() -> None:
    rng = random.Random(7)
    sirets = [_valid(rng) for _ in range(30)] + [LA_POSTE_OK, "55203253400647", "123"]
    values = {
        "dateCreationEtablissement": ["2001-02-03", "", "2001-02-29", "1999-12-31", "nope"],
        "dateDebut": ["2020-01-01", "", "2020-1-01", "2020-02-30"],
        "etatAdministratifEtablissement": ["A", "F", "C", " A "],
        "statutDiffusionEtablissement": ["O", "P", "", "N"],
        "etablissementSiege": ["true", "false", "True", ""],
        "libelleVoieEtablissement": ["DE LA PAIX", "V" * 200, "V" * 201, "ÉTÉ", '"A, B"', ""],
        "enseigne1Etablissement": ["", "E", "N" * 301, " \u00a0X "],
        "libelleCommuneEtablissement": ["PARIS 8", "", "C" * 101],
        "libelleCommuneEtrangerEtablissement": ["", "BERLIN", "B" * 101],
    }
    for _ in range(20):
        lines = []
        for _ in range(300):
            siret = rng.choice(sirets)
            changes = {k: rng.choice(v) for k, v in values.items() if rng.random() < 0.3}
            line = _line(siret, **changes).encode() + b"\n"
            if rng.random() < 0.02:
                line = rng.choice(MIXED)
            lines.append(line)
        _outcome(lines, first_line=rng.randrange(2, 1000))


def _import(backend: str, directory: Path, path: Path, workers: int) -> tuple[object, ...]:
    """What importing the file into a fresh database gives: counts, rejections, rows."""
    with fresh_database(backend, directory) as url:
        engine = open_engine(url)
        upgrade(engine)
        outcome = import_stock(engine, path, batch_size=25, workers=workers)
        with engine.connect() as connection:
            # Feed positions left out: batches of lines with workers, of records without.
            columns = [c for c in establishments.columns if c.name != "position"]
            stored = sorted(tuple(row) for row in connection.execute(select(*columns)))
        engine.dispose()
    counts = (outcome.lines_read, outcome.lines_applied, outcome.lines_changed)
    return counts, [(r.line_number, r.reason) for r in outcome.rejections], stored


def test_a_file_is_imported_the_same_whichever_path(backend: str, tmp_path: Path) -> None:
    # With a worker, chunks bound for PostgreSQL take the columnar path; without, the reader
    # reads every line in this process.
    path = tmp_path / "StockEtablissement.csv"
    path.write_bytes(HEADER.encode() + b"".join(MIXED) + b"".join(MIXED[::-1]))
    columnar = _import(backend, tmp_path, path, workers=1)
    assert columnar == _import(backend, tmp_path, path, workers=0)
    assert len(columnar[2]) > 20  # type: ignore[arg-type]


def test_new_keys_are_inserted_and_keys_among_held_ones_upserted(
    backend: str, tmp_path: Path
) -> None:
    # PostgreSQL inserts a batch as it is when no key of the store lies within its keys'
    # range, and upserts it otherwise; SQLite always upserts: the same outcome either way.
    rng = random.Random(9)
    sirets = sorted({_valid(rng) for _ in range(60)})

    def record(siret: str, name: str = "A") -> EstablishmentRecord:
        return EstablishmentRecord(
            siret, name, "69.20Z", "", "", "", "", "", "75008", "PARIS", "", "", True, 1,
            None, None, False,
        )  # fmt: skip

    with fresh_database(backend, tmp_path) as url:
        engine = open_engine(url)
        upgrade(engine)
        store = RcdStore(engine)
        changed = [
            store.upsert([record(s) for s in sirets[0:40:2]]),  # into an empty table
            store.upsert([record(s) for s in sirets[1:40:2]]),  # among held keys
            store.upsert([record(s) for s in sirets[40:]]),  # past them
            store.upsert([record(s, "B" if i % 12 == 0 else "A") for i, s in enumerate(sirets)]),
            store.upsert([record(s) for s in sirets[40:]]),
        ]
        with engine.connect() as connection:
            stored = connection.execute(
                select(establishments.c.siret, establishments.c.name, establishments.c.position)
            ).all()
        last = store.last_position()
        engine.dispose()
    assert changed == [20, 20, 20, 5, 1]
    assert sorted(siret for siret, _, _ in stored) == sirets
    assert {siret for siret, name, _ in stored if name == "B"} == set(sirets[0:40:12])
    newest = max(stored, key=lambda row: row[2])
    assert len({position for _, _, position in stored}) == 60 and newest[2] <= last
    assert newest[0] == sirets[48]  # the one change of the last batch
