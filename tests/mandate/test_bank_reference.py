"""The Banque de France's bank reference file (FGD) read as it is delivered: fixed-width records,
ISO-8859-1, counters (type 3) giving the codes, every other record skipped; a record that cannot
be read stops the import with its line number, never a silently shorter reference."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from registry.mandate.bank_reference import BankFileError, read_counters
from tests.mandate.fgd_records import counter, institution

SAMPLE = [
    institution("CREDIT AGRICOLE", "AGRIFRPP"),
    counter("30006", "00001", "AGENCE CENTRALE", "AGRIFRPPXXX"),
    counter("30006", "00123", "SAINT-ÉTIENNE", "AGRIFRPP"),
    counter("20041", "00001", "LA BANQUE POSTALE", "PSSTFRPPXXX"),
    counter("20041", "00999", "ANCIEN BUREAU", state="2", taken_over_by="2004100001"),
    "9" + "END".rjust(40) + "\r\n",  # a trailer, whatever its layout: skipped
]


def test_counters_of_a_fixed_width_file() -> None:
    assert list(read_counters(SAMPLE)) == [
        ("3000600001", "AGENCE CENTRALE AGRIFRPPXXX"),
        ("3000600123", "SAINT-ÉTIENNE AGRIFRPP"),
        ("2004100001", "LA BANQUE POSTALE PSSTFRPPXXX"),
        ("2004100999", "ANCIEN BUREAU (repris par 2004100001)"),
    ]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (counter("3000A", "00001", "LETTRE"), "line 3: the bank or counter code is not 5 digits"),
        (
            "3300060000" + "1" * 10 + "\r\n",
            "line 3: a counter record of 20 characters (at least 53)",
        ),
        (counter("30006", "00001", "ENCORE"), "line 3: counter 3000600001 listed twice"),
        ("code;guichet\r\n", "line 3: no record type (a digit) in position 1"),
        ("3" + "x" * 5000 + "\n", "line 3: longer than 4096 characters"),
        (counter("3000²", "00001", "EXPOSANT"), "line 3: the bank or counter code is not 5"),
    ],
)
def test_a_record_that_cannot_be_read_stops_the_import_at_its_line(line: str, says: str) -> None:
    with pytest.raises(BankFileError, match=re.escape(says)):
        list(read_counters([SAMPLE[0], SAMPLE[1], line, SAMPLE[3]]))


def test_a_file_without_counters_is_refused_not_published_empty() -> None:
    with pytest.raises(BankFileError, match="no counter record"):
        list(read_counters([SAMPLE[0], SAMPLE[-1]]))
    with pytest.raises(BankFileError, match="line 1: blank"):
        list(read_counters(["\r\n", *SAMPLE]))


def test_the_converter_reads_iso_8859_1_and_writes_code_label_lines(tmp_path: Path) -> None:
    fgd = tmp_path / "FGD_SEPA_FRANCE.txt"
    fgd.write_bytes("".join(SAMPLE).encode("iso-8859-1"))
    converted = subprocess.run(
        [sys.executable, "-m", "registry.mandate.bank_reference", str(fgd)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    lines = converted.stdout.decode("utf-8").splitlines()
    assert lines[1] == "3000600123;SAINT-ÉTIENNE AGRIFRPP" and len(lines) == 4
    # A byte ISO-8859-1 reads as a line break (NEL, 0x85) inside a name does not cut the record.
    fgd.write_bytes("".join(SAMPLE).replace("CENTRALE", "CENTRALE\x85").encode("iso-8859-1"))
    again = subprocess.run(
        [sys.executable, "-m", "registry.mandate.bank_reference", str(fgd)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    assert len(again.stdout.decode("utf-8").splitlines()) == 4
    broken = tmp_path / "broken.txt"
    broken.write_bytes("".join([SAMPLE[1], "3300060000\r\n"]).encode("iso-8859-1"))
    refused = subprocess.run(
        [sys.executable, "-m", "registry.mandate.bank_reference", str(broken)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and refused.stdout == b""
    assert b"line 2: a counter record of 10 characters" in refused.stderr


def test_a_delimited_export_is_still_read() -> None:
    export = ["code_banque;code_guichet;bic;libelle", "30006;1;AGRIFRPPXXX;CREDIT AGRICOLE"]
    assert list(read_counters(export)) == [("3000600001", "CREDIT AGRICOLE AGRIFRPPXXX")]
    with pytest.raises(BankFileError, match="line 3: a bank or counter code is not 5 digits"):
        list(read_counters([*export, ";00001;;SANS BANQUE"]))  # not read as bank 00000
    with pytest.raises(BankFileError, match="line 3: counter 3000600001 listed twice"):
        list(read_counters([*export, "30006;00001;;ENCORE"]))
    with pytest.raises(BankFileError, match="line 1: neither a record nor a header"):
        list(read_counters(["nothing here"]))
