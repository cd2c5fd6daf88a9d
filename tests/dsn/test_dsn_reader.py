"""Reading NEODeS files: the real sample, the line format's traps, malformed lines, bounded
memory, and the norm tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.dsn import norm as dsn_norm
from registry.dsn.reader import (
    MAX_LINE_BYTES,
    BlockReader,
    outside_charset,
    read_blocks,
    read_rubrics,
    split_lines,
)

SAMPLE = Path(__file__).parents[1] / "fixtures" / "dsn" / "sample_dsn_P25V01.dsn"
NORM_FILES = Path(__file__).resolve().parents[3] / "shared" / "norm"
# The statuses of the sample's groups: the first holds the three envois, the others are empty.
GROUPS = ["DSNOK", "FP-KO", "CT-KO", "AUTRE"]


def test_the_real_sample_reads_into_a_lot_of_three_envois_with_their_totals() -> None:
    with SAMPLE.open("rb") as stream:
        blocks = list(read_blocks(stream))
    envois = [b for b in blocks if b.block == "S10.G00.00"]
    totals = [b for b in blocks if b.block == "S90.G00.90"]
    assert [e.value("S10.G00.00.006") for e in envois] == ["P25V01"] * 3
    # Each envoi's declared line count (S10 to S90 inclusive) matches what was read.
    for envoi, total in zip(
        sorted(envois, key=lambda b: b.line), sorted(totals, key=lambda b: b.line), strict=True
    ):
        assert total.value("S90.G00.90.001") == str(total.lines[-1].line - envoi.line + 1)
    groups = sorted((b for b in blocks if b.block == "S06.G51.00"), key=lambda b: b.line)
    assert [g.value("S06.G51.00.001") for g in groups] == GROUPS
    lot = blocks[-1]
    assert lot.block == "S05.G51.00" and lot.value("S05.G51.00.001") == "V01R02"
    assert {b.ancestors[:3] for b in blocks if b.block == "S21.G00.30"} == {
        ("S05.G51.00", "S06.G51.00", "S10.G00.00")
    }
    individuals = [b for b in blocks if b.block == "S21.G00.30"]
    assert len(individuals) == 3 and all(b.value("S21.G00.30.001") for b in individuals)
    # What the portal adds to the files it returns (S10.G00.95, S20.G00.96) is in no block:
    # the reader does not guess where a block the norm does not know belongs.
    reader = BlockReader()
    with SAMPLE.open("rb") as again:
        for line in read_rubrics(again):
            reader.feed(line)
    unplaced = [f.rubric for f in reader.faults]
    assert {f.rule for f in reader.faults} == {"NEODES-UNKNOWN-BLOCK"}
    assert {rubric[:10] for rubric in unplaced} == {"S10.G00.95", "S20.G00.96"}
    assert sum(len(b.lines) for b in blocks) + len(unplaced) == 443


def test_apostrophes_crlf_and_latin1_are_read_as_written() -> None:
    lines = [
        "S10.G00.01.003,'L'ATELIER D'ÉTÉ'\r\n".encode("iso-8859-1"),
        b"S10.G00.01.004,''\n",
        "S10.G00.01.006,'SAINT-ÉTIENNE'".encode("iso-8859-1"),
    ]
    read = list(read_rubrics(lines))
    assert [(r.rubric, r.value, r.problem) for r in read] == [
        ("S10.G00.01.003", "L'ATELIER D'ÉTÉ", ""),
        ("S10.G00.01.004", "", ""),
        ("S10.G00.01.006", "SAINT-ÉTIENNE", ""),
    ]


def test_malformed_lines_are_reported_with_their_number_and_do_not_stop_reading() -> None:
    lines = [b"S10.G00.01.001,'123456789'\n", b"garbage\n", b"S10.G00.01.002,'00029\n",
             b"\n", b"S10.G00.01.003,'OK'\n", b"S10.G00.01.003," + b"x" * 5000 + b"\n"]  # fmt: skip
    read = list(read_rubrics(lines))
    assert [(r.line, bool(r.problem)) for r in read] == [
        (1, False),
        (2, True),
        (3, True),
        (5, False),
        (6, True),
    ]
    assert "rubric id" in read[1].problem and ",'value'" in read[2].problem


def test_the_norm_s_character_set_is_the_graphic_characters_of_iso_8859_1() -> None:
    outside = {code for code in range(256) if outside_charset(chr(code))}
    assert outside == set(range(0x00, 0x20)) | set(range(0x7F, 0xA0))
    assert outside_charset("") == 0 and outside_charset("L'ÉTÉ\xa0\xad ÿ") == 0
    assert outside_charset("AB\xa0C\x00D\x85") == 5  # the first one, counted from 1


def test_a_line_with_a_byte_outside_the_character_set_is_not_read_and_says_where() -> None:
    lines = [
        b"S21.G00.30.002,'MAR\x00TIN'\r\n",  # a NUL in a value
        b"S21.G00.30.004,'CAMILLE'\r\r\n",  # a CR before the CRLF
        b"S21.G00.30.004,'CAMILLE'\x85\n",  # a C1 control after the value
        b"\x1c\x1d\n",  # blanks to str.strip(), but control characters
        b"\tS21.G00.30.004,'CAMILLE'\n",
        b"S21.G00.30.004,'CAMILLE'\n",  # fine: read, not held back by the lines above
        b"\n",
        b"   \r\n",  # blank lines are still skipped
        "S21.G00.30.006,'CAFÉ\xa0CRÈME'\r\n".encode("iso-8859-1"),
    ]
    read = list(read_rubrics(lines))
    assert [(r.line, r.rubric, r.value, r.column) for r in read] == [
        (1, "S21.G00.30.002", "", 20),
        (2, "S21.G00.30.004", "", 25),
        (3, "S21.G00.30.004", "", 25),
        (4, "", "", 1),
        (5, "", "", 1),
        (6, "S21.G00.30.004", "CAMILLE", 0),
        (9, "S21.G00.30.006", "CAFÉ\xa0CRÈME", 0),
    ]
    problems = [r.problem for r in read]
    assert problems[0].startswith("the value holds byte 0x00 (NUL) at column 20")
    assert problems[1].startswith("the line holds byte 0x0D (CR) at column 25")
    assert "0x85 (a C1 control character)" in problems[2]
    assert "0x1C (a C0 control character)" in problems[3] and "0x09 (TAB)" in problems[4]
    assert problems[5:] == ["", ""]
    assert all("MAR" not in problem and "CAMILLE" not in problem for problem in problems)


def test_a_rubric_number_not_above_the_last_opens_a_new_instance() -> None:
    lines = [
        b"S21.G00.30.001,'1'\n", b"S21.G00.40.001,'a'\n", b"S21.G00.40.009,'b'\n",
        b"S21.G00.40.001,'c'\n", b"S21.G00.30.001,'2'\n", b"S21.G00.40.001,'d'\n",
    ]  # fmt: skip
    blocks = list(read_blocks(lines))
    contracts = [b.value("S21.G00.40.001") for b in blocks if b.block == "S21.G00.40"]
    individuals = [b.value("S21.G00.30.001") for b in blocks if b.block == "S21.G00.30"]
    assert contracts == ["a", "c", "d"] and individuals == ["1", "2"]


def test_a_line_of_an_unknown_block_is_a_fault_attached_to_nothing() -> None:
    """Kept in the open block, it used to glue two instances into one (two SIRENs in one
    company block: the scan read the last, validation and routing the first)."""
    reader = BlockReader()
    lines = [b"S21.G00.06.001,'111111111'\n", b"S10.G00.95.001,'x'\n",
             b"S21.G00.06.001,'222222222'\n"]  # fmt: skip
    closed = [b for line in read_rubrics(lines) for b in reader.feed(line)]
    assert [(f.line, f.rubric) for f in reader.faults if f.rule == "NEODES-UNKNOWN-BLOCK"] == [
        (2, "S10.G00.95.001")
    ]
    companies = [*closed, *reader.close()]
    assert [c.value("S21.G00.06.001") for c in companies] == ["111111111", "222222222"]
    assert all(len(c.lines) == 1 for c in companies)


def test_a_block_whose_parent_is_not_open_or_out_of_order_is_a_fault() -> None:
    reader = BlockReader()
    lines = [b"S10.G00.00.001,'x'\n", b"S20.G00.05.001,'01'\n", b"S21.G00.11.001,'00011'\n",
             b"S21.G00.06.001,'111111111'\n"]  # fmt: skip
    for line in read_rubrics(lines):
        reader.feed(line)
    # The misplaced establishment alone is at fault: the company after it is read as if it were
    # not there.
    assert [(f.line, f.rule) for f in reader.faults] == [(3, "NEODES-PARENT")]


def _many_individuals(count: int) -> Iterator[bytes]:
    yield b"S10.G00.00.006,'P25V01'\n"
    yield b"S20.G00.05.001,'01'\n"
    yield b"S21.G00.06.001,'123456789'\n"
    yield b"S21.G00.11.001,'00029'\n"
    for index in range(count):
        yield f"S21.G00.30.001,'{index:013d}'\n".encode()
        yield b"S21.G00.40.001,'01012025'\n"
        yield b"S21.G00.50.001,'31012025'\n"
        yield b"S21.G00.51.001,'01012025'\n"
        yield b"S21.G00.51.011,'001'\n"


def test_memory_holds_the_open_path_not_the_file() -> None:
    reader = BlockReader()
    deepest = 0
    closed = 0
    for line in read_rubrics(_many_individuals(20_000)):
        closed += sum(1 for _ in reader.feed(line))
        deepest = max(deepest, len(reader.open), sum(len(b.lines) for b in reader.open))
    assert closed > 80_000 - 10 and deepest <= 12


def test_norm_versions_and_an_unsupported_one() -> None:
    assert dsn_norm.supported_versions() == ("P24V01", "P25V01", "P26V01")
    norm = dsn_norm.load("P26V01")
    assert norm.blocks["S21.G00.30"].parent == "S21.G00.11"
    assert norm.rubrics["S21.G00.30.001"].regex is not None  # the NIR
    assert (
        "S21.G00.30.030" in norm.rubrics and "S21.G00.30.030" not in dsn_norm.load("P24V01").rubrics
    )
    with pytest.raises(dsn_norm.UnsupportedVersion, match="P19V01"):
        dsn_norm.load("P19V01")


@pytest.mark.skipif(not NORM_FILES.is_dir(), reason="the norm files are not beside the project")
def test_the_committed_tables_are_what_the_generator_makes() -> None:
    import json

    from tools.generate_dsn_norm import generate

    tables_dir = Path(dsn_norm.__file__).parent / "norm_tables"
    for version, tables in generate(NORM_FILES).items():
        committed = json.loads((tables_dir / f"{version}.json").read_text(encoding="utf-8"))
        assert committed == json.loads(json.dumps(tables)), version


def test_a_very_long_line_costs_no_more_than_the_longest_line_read() -> None:
    """The scan and the pipeline cut lines alike, keeping at most MAX_LINE_BYTES + 1 bytes of a
    line too long to read (a 2 GiB single line used to be copied whole, chunk after chunk)."""
    chunk = b"S21.G00.30.002,'" + b"A" * (1 << 20)
    lines = list(split_lines([b"S10.G00.00.006,'P25V01'\n", *[chunk] * 64, b"'\nS9"]))
    assert [len(line) for line in lines] == [24, MAX_LINE_BYTES + 2, 2]
    assert lines[1].endswith(b"A\n")
    too_long = [item.line for item in read_rubrics(lines) if "longer than" in item.problem]
    assert too_long == [2]
