"""The import's fast paths say exactly what the plain definitions say: the COPY text written
out for establishments (registry/rcd/store.py) against CopyRows.encode, the shortcut of the
SIRET check against check_siret, and a line with several faults rejected for the first of
them in the record's order, whatever the parser does first."""

from __future__ import annotations

import random
from datetime import date

from registry.rcd.identifiers import check_siret, luhn_complete
from registry.rcd.records import AdministrativeState, CompanyRecord, CopyRows, EstablishmentRecord
from registry.rcd.sirene_stock import Rejection, _plain_luhn_siret, read_stock
from registry.rcd.sirene_synth import ESTABLISHMENT_HEADER
from registry.rcd.store import encode_copy
from tests.rcd.stock_lines import establishment_line

TRICKY = ["", "RUE \\N\tDU\\\\ BAC \\t", "A\r\nB", "ÉTÉ 中国", "[ND]", "x" * 300, "\\"]


def _establishment(rng: random.Random, siret: str) -> EstablishmentRecord:
    text = [rng.choice([*TRICKY, "PLAIN"]) for _ in range(11)]
    state = rng.choice([AdministrativeState.ACTIVE, AdministrativeState.CEASED, 1, 2])
    day = rng.choice([None, date(2001, 2, 3), date(1999, 12, 31)])
    flags = (rng.random() < 0.5, state, day, rng.choice([None, date(2020, 1, 1)]))
    return EstablishmentRecord._make((siret, *text, *flags, rng.random() < 0.5))


def _text(rows: CopyRows) -> str:
    return rows.text.decode() if isinstance(rows.text, bytes) else rows.text


def _lines(rows: CopyRows) -> list[str]:
    """The lines without their ordinal."""
    return [line.split("\t", 1)[1] for line in _text(rows).splitlines()]


def test_the_copy_text_is_the_reference_encoding_one_line_per_key() -> None:
    rng = random.Random(5)
    sirets = [luhn_complete(f"{rng.randrange(10**12):013d}") for _ in range(50)]
    records = [_establishment(rng, rng.choice(sirets)) for _ in range(400)]
    encoded = encode_copy(records)
    # Of several records of one key, the last wins, at the place of the first.
    last = {record.siret: record for record in records}
    assert encoded.count == len(records)  # every record applied, duplicates included
    assert _lines(encoded) == _lines(CopyRows.encode(list(last.values())))
    assert [int(line.split("\t", 1)[0]) for line in _text(encoded).splitlines()] == list(
        range(1, len(last) + 1)
    )
    companies = [
        CompanyRecord(siret[:9], rng.choice(TRICKY), "6920Z", "5710", 1, None, None, "", False)
        for siret in sirets
    ]
    assert _lines(encode_copy(companies)) == _lines(CopyRows.encode(companies))


def test_the_siret_shortcut_accepts_only_what_check_siret_accepts() -> None:
    rng = random.Random(6)
    values = [f"{rng.randrange(10**14):014d}" for _ in range(20_000)]
    values += [luhn_complete(f"{rng.randrange(10**13):013d}") for _ in range(2_000)]
    values += [
        "35600000000048",
        "1234567890123",
        "１２３４５６７８９０１２３４",
        "5520325340064a",
        "",
    ]
    for value in values:
        if _plain_luhn_siret(value):
            assert check_siret(value).ok, value
        elif len(value) == 14 and value.isascii() and value.isdigit():
            assert not check_siret(value).ok or value.startswith("356000000"), value


def _line(**changes: str) -> str:
    return establishment_line("55203253400646", **changes)


def test_a_line_with_several_faults_is_rejected_for_the_first_in_the_records_order() -> None:
    lines = [
        ",".join(ESTABLISHMENT_HEADER),
        _line(libelleVoieEtablissement="V" * 201, etatAdministratifEtablissement="X"),
        _line(libelleCommuneEtablissement="C" * 101, dateDebut="2001-13-45"),
        _line(etatAdministratifEtablissement="X", dateCreationEtablissement="nope"),
        _line(dateCreationEtablissement="nope", dateDebut="also nope"),
        _line(libellePaysEtrangerEtablissement="P" * 101, libelleVoieEtablissement="V" * 201),
        # Withheld: its street is dropped, so its length does not matter; its commune is kept.
        _line(statutDiffusionEtablissement="P", libelleVoieEtablissement="V" * 201),
        _line(statutDiffusionEtablissement="P", libelleCommuneEtablissement="C" * 101),
        _line(enseigne1Etablissement=" ENSEIGNE ", denominationUsuelleEtablissement="USUELLE"),
    ]
    _, items = read_stock(lines)
    found = [item.reason if isinstance(item, Rejection) else item for _, item in items]
    assert found[:5] == [
        "street_name is longer than 200 characters",
        "city is longer than 100 characters",
        "etatAdministratif must be A/F, not 'X'",
        "dateCreationEtablissement is not a date (YYYY-MM-DD): 'nope'",
        "street_name is longer than 200 characters",
    ]
    withheld = found[5]
    assert isinstance(withheld, EstablishmentRecord)
    assert (withheld.name, withheld.street_name, withheld.city) == ("[ND]", "", "PARIS 8")
    assert withheld.diffusion_restricted
    assert found[6] == "city is longer than 100 characters"
    named = found[7]
    assert isinstance(named, EstablishmentRecord) and named.name == "ENSEIGNE"
