"""DSN-VAL: generated files are conformant (CCO), each broken variant gets the anomaly its rule
names at the line that breaks it (BAN), the real sample's findings, and `interops dsn validate`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from interops.dsn.v1 import dsn_pb2 as pb

from clients.client import Client
from clients.dsn_cli import PROGRESS_FROM_BYTES
from registry.dsn.deposit_store import delivery_id
from registry.dsn.routing import Router, load_rules
from registry.dsn.synth import BROKEN, DEMO_COMPANY, NATURES, broken, generate
from registry.dsn.synth_variants import apply
from registry.dsn.validation import MAX_ANOMALIES, Report, report_lines, validate
from registry.trust.declarant_store import DeclarantStore
from tests.running_node import RunningNode

SAMPLE = Path(__file__).parents[1] / "fixtures" / "dsn" / "sample_dsn_P25V01.dsn"


def _validate(data: bytes):  # type: ignore[no-untyped-def]
    return validate(io.BytesIO(data))


@pytest.mark.parametrize("nature", NATURES)
def test_generated_declarations_of_every_nature_are_conformant(nature: str) -> None:
    report = _validate(b"".join(generate(4, nature=NATURES[nature])))
    assert report.kind == "CCO", report.anomalies
    assert report.anomalies == [] and report.versions == ["P26V01"]
    (declaration,) = report.declarations
    assert declaration.nature == NATURES[nature]
    assert declaration.individuals == (4 if nature == "monthly" else 1)
    assert len(declaration.sirets) == 1 and declaration.sirets[0].startswith(declaration.siren)


@pytest.mark.parametrize("variant", BROKEN)
def test_each_broken_variant_is_reported_at_its_line_with_its_rule(variant: str) -> None:
    data = broken(variant)
    report = _validate(data)
    _, rule = BROKEN[variant]
    assert report.kind == "BAN"
    found = [a for a in report.anomalies if a.rule == rule]
    assert found, [(a.rule, a.message) for a in report.anomalies]
    anomaly = found[0]
    assert anomaly.blocking and anomaly.message
    # The line number points into the file at the rubric (or its block) the anomaly names.
    line = data.split(b"\r\n")[anomaly.line - 1].decode("iso-8859-1")
    assert line.startswith(anomaly.rubric[:10]) or anomaly.rule in {
        "NEODES-SYNTAX", "NEODES-CARDINALITY", "CCH-14", "CCH-13"
    }  # fmt: skip


def test_a_file_not_broken_has_none_of_those_rules() -> None:
    """The variants' anomalies come from the breakage: the intact file reports none of them."""
    report = _validate(b"".join(generate(3)))
    assert {a.rule for a in report.anomalies} == set()


def test_the_real_sample_reports_its_key_and_nir_errors_and_the_portal_s_additions() -> None:
    with SAMPLE.open("rb") as stream:
        report = validate(stream)
    assert report.envois == 3 and report.versions == ["P25V01"] and report.lines == 443
    assert [d.nature for d in report.declarations] == ["07", "07", "07"]
    rules = {(a.rubric, a.rule) for a in report.anomalies if a.blocking}
    # Synthetic identifiers: 123456789 and 987654321 fail the SIREN key, the NIR its format.
    assert ("S10.G00.01.001", "CSL-11") in rules
    assert ("S21.G00.06.001", "CSL-11") in rules
    assert ("S21.G00.30.001", "NEODES-FORMAT") in rules
    # The totals of each envoi are right. What the portal adds to the files it returns
    # (S10.G00.95, 9xx rubrics) has no place in a deposit: it blocks, never skipped.
    assert not any(a.rule.startswith("NEODES-TOTAL") for a in report.anomalies)
    assert ("S10.G00.95.001", "NEODES-UNKNOWN-BLOCK") in rules
    assert ("S21.G00.06.903", "NEODES-UNKNOWN-RUBRIC") in rules
    assert report.warnings == 0


def test_an_unknown_rubric_of_the_norm_s_range_blocks() -> None:
    data = broken("unknown-rubric")
    (anomaly,) = [a for a in _validate(data).anomalies if a.rule == "NEODES-UNKNOWN-RUBRIC"]
    assert anomaly.rubric == "S21.G00.30.099" and anomaly.blocking


def test_a_file_without_an_envoi_and_a_flood_of_anomalies_are_bounded() -> None:
    assert _validate(b"").kind == "BAN"
    flood = b"".join(b"garbage line\n" for _ in range(MAX_ANOMALIES + 50))
    report = _validate(flood)
    assert len(report.anomalies) == MAX_ANOMALIES
    assert report.as_dict()["anomalies_not_listed"] == 51  # the 50 extra lines + no envoi


def _edited(
    rubric: str, value: bytes | None = None, *, line: bytes | None = None
) -> tuple[bytes, int, bytes]:
    """A generated monthly file of 3 employees whose first `rubric` line gets `value`, or is
    replaced by `line` whole; the file, the line's number and the original value."""
    lines = list(generate(3))
    index = next(i for i, raw in enumerate(lines) if raw.startswith(rubric.encode() + b",'"))
    original = lines[index][16:].removesuffix(b"\r\n")[:-1]
    lines[index] = line if line is not None else b"%s,'%s'\r\n" % (rubric.encode(), value)
    return b"".join(lines), index + 1, original


def _charset_anomaly(report: Report, line: int, rubric: str) -> str:
    """The one anomaly of the report, a blocking NEODES-CHARSET at `line` on `rubric`: its text."""
    assert report.kind == "BAN"
    assert [(a.line, a.rubric, a.rule, a.blocking) for a in report.anomalies] == [
        (line, rubric, "NEODES-CHARSET", True)
    ], report.anomalies
    return report.anomalies[0].message


@pytest.mark.parametrize(
    ("rubric", "byte"),
    [
        ("S21.G00.30.002", 0x00),  # NUL in a last name
        ("S21.G00.30.001", 0x00),  # NUL in a NIR
        ("S21.G00.30.004", 0x01),  # a C0 control in first names
        ("S21.G00.30.002", 0x09),  # TAB
        ("S21.G00.30.002", 0x0D),  # CR inside a value
        ("S21.G00.30.002", 0x1F),
        ("S21.G00.40.006", 0x7F),  # DEL
        ("S10.G00.01.003", 0x80),  # the euro sign of Windows-1252: no ISO-8859-1 character
        ("S21.G00.30.004", 0x89),  # the second byte of a UTF-8 "É"
        ("S21.G00.40.006", 0x9F),  # the last C1 control
    ],
)
def test_a_byte_outside_the_norm_s_character_set_in_a_value_gets_a_ban_naming_line_and_rubric(
    rubric: str, byte: int
) -> None:
    _, _, original = _edited(rubric, b"")
    # The byte in the middle of the value, which stays otherwise as generated.
    middle = len(original) // 2
    data, line, _ = _edited(rubric, original[:middle] + bytes([byte]) + original[middle:])
    report = _validate(data)
    message = _charset_anomaly(report, line, rubric)
    column = 16 + middle + 1
    assert f"byte 0x{byte:02X}" in message and f"column {column}" in message
    assert "the value" in message and "character set" in message
    # The BAN names the place, never the value (a NIR, a name).
    document = json.dumps(report.as_dict(), ensure_ascii=False)
    text = "\n".join(report_lines(report))
    assert original[:middle].decode() not in message and original[middle:].decode() not in message
    for shown in (message, document, text):
        assert original.decode() not in shown and chr(byte) not in shown


NUL_OR_CONTROL_ANYWHERE = {
    # the line in place of the first last name's, and the rubric the anomaly names
    "a line of NULs": (b"\x00\x00\x00\r\n", ""),
    "a NUL before the line end": (b"S21.G00.30.002,'MARTIN'\x00\r\n", "S21.G00.30.002"),
    "a NUL in the rubric id": (b"S21.G00.30\x00002,'MARTIN'\r\n", ""),
    "a NUL in the separator": (b"S21.G00.30.002,\x00'MARTIN'\r\n", ""),
    "a line of a control that Python counts as blank": (b"\x1c\x1d\x0b\x0c\r\n", ""),
    "a line of TABs": (b"\t\t\r\n", ""),
    "a CR before the CRLF": (b"S21.G00.30.002,'MARTIN'\r\r\n", "S21.G00.30.002"),
    "two lines parted by a lone CR": (
        b"S21.G00.30.002,'MARTIN'\rS21.G00.30.004,'CAMILLE'\r\n",
        "S21.G00.30.002",
    ),
}


@pytest.mark.parametrize("case", NUL_OR_CONTROL_ANYWHERE)
def test_a_nul_or_control_byte_anywhere_in_a_line_is_refused_not_dropped(case: str) -> None:
    replacement, rubric = NUL_OR_CONTROL_ANYWHERE[case]
    data, line, _ = _edited("S21.G00.30.002", line=replacement)
    message = _charset_anomaly(_validate(data), line, rubric)
    assert "holds byte 0x" in message and "MARTIN" not in message


def test_a_line_of_control_bytes_is_not_skipped_as_a_blank_line() -> None:
    """Python's str.strip() takes \\x1c-\\x1f for blanks: such a line used to vanish (CCO)."""
    lines = list(generate(2))
    lines.insert(1, b"\x1c\x1f\r\n")
    anomalies = _validate(b"".join(lines)).anomalies
    assert (2, "", "NEODES-CHARSET") in [(a.line, a.rubric, a.rule) for a in anomalies]


def test_a_nul_in_the_last_line_without_a_line_end_is_refused() -> None:
    data = b"".join(generate(2))
    assert data.endswith(b"S90.G00.90.002,'1'\r\n")
    _charset_anomaly(_validate(data[:-2] + b"\x00"), data.count(b"\n"), "S90.G00.90.002")


def test_a_nul_in_a_value_is_routed_nowhere_either() -> None:
    """The router reads the file as validation does: the NUL line is not read, routing stops."""
    data, line, _ = _edited("S21.G00.30.002", b"MAR\x00TIN")

    def open_share(organism: str) -> io.BytesIO:
        return io.BytesIO()

    with pytest.raises(ValueError, match=f"line {line}: .*byte 0x00"):
        Router(load_rules().values()).route(io.BytesIO(data), open_share)


def test_a_deposit_with_a_nul_in_a_name_gets_its_ban_and_no_organism_gets_anything(
    node: RunningNode, tmp_path: Path
) -> None:
    firm = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
    rights = [("dsn.deposit", DEMO_COMPANY.siren)]
    DeclarantStore(node.node.engine).create(firm, "Lemaire", "Inès", "charset pw", rights)
    chain = node.sign_in(firm, "Lemaire", "Inès", "charset pw",
                         audience=["interops.dsn.v1.DepositService"])  # fmt: skip
    lines = list(generate(3))
    index = next(i for i, raw in enumerate(lines) if raw.startswith(b"S21.G00.30.002,'"))
    name = lines[index][16:-3]
    lines[index] = b"S21.G00.30.002,'%s\x00%s'\r\n" % (name[:2], name[2:])
    path = tmp_path / "nul.dsn"
    path.write_bytes(b"".join(lines))
    with Client(node.address, credentials=chain, timeout=60) as declarant:
        deposit = declarant.submit_deposit(path)
        assert deposit.receipt == pb.RECEIPT_AEE  # the quick scan takes it; validation does not
        deadline = time.monotonic() + 60
        while deposit.state not in (pb.DEPOSIT_STATE_ROUTED, pb.DEPOSIT_STATE_REJECTED):
            assert time.monotonic() < deadline, "the deposit did not settle"
            time.sleep(0.05)
            deposit = declarant.get_deposit(deposit.id)
        assert deposit.state == pb.DEPOSIT_STATE_REJECTED and deposit.deliveries == []
        assert deposit.rejection_code == "NOT_CONFORMANT" and deposit.validation.blocking == 1
        (ban,) = declarant.list_returns(deposit.id)
    assert ban.kind == pb.RETURN_KIND_BAN
    (anomaly,) = json.loads(ban.content)["anomalies"]
    assert (anomaly["line"], anomaly["rubric"], anomaly["rule"]) == (
        index + 1, "S21.G00.30.002", "NEODES-CHARSET"
    )  # fmt: skip
    assert name not in ban.content and b"\\u0000" not in ban.content
    files = node.node.pipeline.files
    assert not any(
        files.exists(files.share(delivery_id(deposit.id, code))) for code in load_rules()
    )


def test_the_graphic_characters_of_iso_8859_1_are_conformant() -> None:
    """Letters, digits, punctuation, accented letters, the no-break space: all of them pass."""
    graphic = bytes(range(0x20, 0x7F)) + bytes(range(0xA0, 0x100))
    assert len(graphic) == 191
    for start in range(0, len(graphic), 60):  # S10.G00.01.003: 1 to 60 characters
        data, _, _ = _edited("S10.G00.01.003", graphic[start : start + 60])
        report = _validate(data)
        assert report.kind == "CCO", report.anomalies
    data, _, _ = _edited("S21.G00.30.002", "D'ÉTÉ-LOEUVRE ÇÀ ÿ".encode("latin-1"))
    assert _validate(data).kind == "CCO"
    # Lines ending in LF alone, and blank lines, are read as before.
    assert _validate(data.replace(b"\r\n", b"\n") + b"\n  \r\n").kind == "CCO"


def interops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clients.cli", *args],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_the_validate_command_exits_0_for_a_cco_and_1_with_the_report_otherwise(
    tmp_path: Path,
) -> None:
    good, bad = tmp_path / "good.dsn", tmp_path / "bad.dsn"
    made = interops("dsn", "generate", "--out", str(good), "--employees", "5")
    assert made.returncode == 0, made.stderr
    assert (
        interops("dsn", "generate", "--out", str(bad), "--broken", "forbidden-nir").returncode == 0
    )
    done = interops("dsn", "validate", str(good))
    assert done.returncode == 0 and "CCO" in done.stdout
    done = interops("dsn", "validate", str(bad))
    assert done.returncode == 1 and "CCH-13" in done.stdout and "BAN" in done.stdout
    done = interops("dsn", "validate", "--json", str(bad))
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["kind"] == "BAN"
    assert "CCH-13" in [a["rule"] for a in report["anomalies"]]
    missing = interops("dsn", "validate", str(tmp_path / "nowhere.dsn"))
    assert missing.returncode == 2 and "nowhere.dsn" in missing.stderr


def test_generate_writes_the_file_that_breaks_or_keeps_a_rule_of_the_norm(tmp_path: Path) -> None:
    broken_file, kept = tmp_path / "b.dsn", tmp_path / "k.dsn"
    rule = "S21.G00.06.001/CSL-11"
    assert interops("dsn", "generate", "--out", str(broken_file), "--break", rule).returncode == 0
    assert interops("dsn", "generate", "--out", str(kept), "--keep", rule).returncode == 0
    done = interops("dsn", "validate", "--quiet", str(broken_file))
    assert done.returncode == 1 and "CSL-11" in done.stdout
    assert "fr: Le SIREN de l'entreprise ne respecte pas la clé SIREN." in done.stdout
    assert interops("dsn", "validate", "--quiet", str(kept)).returncode == 0
    unknown = interops("dsn", "generate", "--out", str(kept), "--break", "S21.G00.06.001/XX")
    assert unknown.returncode == 2 and "RUBRIC/ID" in unknown.stderr


def test_generate_checks_its_options_up_front(tmp_path: Path) -> None:
    out = tmp_path / "m.dsn"
    for option, value in (("--month", "2026-13"), ("--month", "032026"), ("--siret", "123")):
        done = interops("dsn", "generate", "--out", str(out), option, value)
        assert done.returncode == 2 and option in done.stderr and not out.exists()
    done = interops("dsn", "generate", "--out", str(out), "--month", "2026-03", "--employees", "2")
    assert done.returncode == 0
    assert interops("dsn", "validate", "--quiet", str(out)).returncode == 0
    assert b"S20.G00.05.005,'01032026'" in out.read_bytes()


def test_a_directory_or_a_closed_pipe_gets_a_plain_message(tmp_path: Path) -> None:
    for command in ("validate", "submit"):
        done = interops("dsn", command, str(tmp_path))
        assert done.returncode == 2 and f"{tmp_path}: not a file" in done.stderr
    data = tmp_path / "big.dsn"
    data.write_bytes(b"".join(generate(300)))
    piped = subprocess.run(  # a fixed pipeline of our own command
        f"{sys.executable} -m clients.cli dsn validate --quiet --json {data} | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert piped.stdout == '{\n  "kind"' and piped.stderr == ""


def test_the_validate_command_shows_progress_on_large_files(tmp_path: Path) -> None:
    large = tmp_path / "large.dsn"
    assert interops("dsn", "generate", "--out", str(large), "--employees", "3000").returncode == 0
    assert large.stat().st_size > PROGRESS_FROM_BYTES
    done = interops("dsn", "validate", str(large))
    assert done.returncode == 0 and "large.dsn" in done.stderr and "100%" in done.stderr
    done = interops("dsn", "validate", "--quiet", str(large))
    assert done.returncode == 0 and done.stderr == ""


def test_a_misplaced_block_is_the_one_reported_not_the_well_placed_blocks_after_it() -> None:
    """An affiliation (S21.G00.70, under the contract) moved after the first contribution: one
    anomaly, on its line; the contributions and bases after it are read where they are."""
    lines = b"".join(generate(2)).split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"S21.G00.70"))
    moved = lines[start : start + 4]
    del lines[start : start + 4]
    target = next(i for i, line in enumerate(lines) if line.startswith(b"S21.G00.81")) + 4
    lines[target:target] = moved
    report = _validate(b"\r\n".join(lines))
    assert [(a.line, a.rule) for a in report.anomalies] == [(target + 1, "NEODES-PARENT")]
    assert "S21.G00.70" in report.anomalies[0].message
    # The establishment's payments (S21.G00.20) moved before its adhesion (S21.G00.15): one
    # anomaly, not the payments' and affiliations' references to the adhesion they then lack.
    swapped = _validate(broken("block-out-of-order"))
    assert [(a.rule, a.rubric) for a in swapped.anomalies] == [("NEODES-ORDER", "S21.G00.15.001")]


@pytest.mark.parametrize(
    ("nature", "edits", "block"),
    [
        ("sick-leave", [["drop_block", "S21.G00.60"]], "S21.G00.60"),
        ("end-of-contract", [["drop_block", "S21.G00.62"]], "S21.G00.62"),
        (
            "return-to-work",
            [
                [
                    "add_block",
                    "S21.G00.30",
                    [
                        ["001", "1850578006048"],
                        ["002", "DURAND"],
                        ["004", "PAUL"],
                        ["005", "01"],
                        ["006", "01011980"],
                        ["007", "LYON"],
                    ],
                ],
                ["add_block", "S21.G00.40", [["001", "01012020"]], 2],
            ],
            "S21.G00.30",
        ),
    ],
)
def test_cardinalities_are_the_nature_s(nature: str, edits: list[Any], block: str) -> None:
    """An event without its event block, or with two individuals, is refused; a monthly DSN
    declaring an exit without a notice (S21.G00.63, the end-of-contract declaration's) is not."""
    report = _validate(apply(nature, edits))
    assert ("NEODES-CARDINALITY", block) in [(a.rule, a.rubric) for a in report.anomalies]
    exit_without_notice = _validate(
        apply(
            "monthly",
            [
                [
                    "add_block",
                    "S21.G00.62",
                    [["001", "31032026"], ["002", "059"], ["006", "31032026"], ["017", "01"]],
                ]
            ],
        )
    )
    assert "NEODES-CARDINALITY" not in [a.rule for a in exit_without_notice.anomalies]


def _planted(lines: list[bytes]) -> list[bytes]:
    """Four errors: sex '07', amount '12,50', 31/02, no S21.G00.71."""
    planted = {b"S21.G00.30.005": b"07", b"S21.G00.50.002": b"12,50",
               b"S21.G00.40.001": b"31022015"}  # fmt: skip
    out = []
    for line in lines:
        rubric = line[:14]
        if rubric.startswith(b"S21.G00.71"):
            continue
        out.append(rubric + b",'" + planted[rubric] + b"'\r\n" if rubric in planted else line)
    return out


def test_an_envoi_without_a_norm_version_is_refused_and_not_said_checked() -> None:
    """Without S10.G00.00.006 nothing can be checked against the norm: one blocking anomaly
    that says so, never a certificate, whatever else the file holds."""
    lines = [line for line in _planted(list(generate(2)))
             if not line.startswith(b"S10.G00.00.006")]  # fmt: skip
    report = _validate(b"".join(lines))
    assert report.kind == "BAN"
    (version,) = [a for a in report.anomalies if a.rule == "NEODES-VERSION"]
    assert version.rubric == "S10.G00.00.006" and version.line == 1
    assert "not checked" in version.message and "n'est pas contrôlé" in version.message_fr


def test_the_second_envoi_of_a_file_without_a_version_is_refused() -> None:
    first = b"".join(generate(2))
    second = [line for line in generate(2, order=2) if not line.startswith(b"S10.G00.00.006")]
    second[-2] = f"S90.G00.90.001,'{len(second)}'\r\n".encode()  # its rubric count, one less
    report = _validate(first + b"".join(second))
    assert report.envois == 2 and report.kind == "BAN"
    assert [(a.rule, a.line) for a in report.anomalies] == [
        ("NEODES-VERSION", first.count(b"\n") + 1)
    ]


def test_a_declared_month_outside_the_version_s_year_is_refused() -> None:
    lines = [line.replace(b"'P26V01'", b"'P25V01'") for line in generate(2)]
    report = _validate(b"".join(lines))
    (anomaly,) = [a for a in report.anomalies if a.rule == "NEODES-VERSION-PERIOD"]
    assert anomaly.blocking and anomaly.rubric == "S20.G00.05.005" and "03/2026" in anomaly.message
    assert b"S20.G00.05.005" in b"".join(lines).split(b"\r\n")[anomaly.line - 1]


def test_each_anomaly_names_line_rubric_rule_severity_and_both_languages() -> None:
    report = _validate(b"".join(_planted(list(generate(2)))))
    anomalies = [a.as_dict() for a in report.anomalies]
    found = {(a["rule"], a["rubric"]) for a in anomalies}
    planted = {("NEODES-VALUE", "S21.G00.30.005"), ("NEODES-FORMAT", "S21.G00.50.002"),
               ("NEODES-DATE", "S21.G00.40.001"), ("NEODES-CARDINALITY", "S21.G00.71")}  # fmt: skip
    assert planted <= found
    for anomaly in anomalies:
        assert anomaly["severity"] in ("blocking", "warning") and int(str(anomaly["line"])) > 0
        if str(anomaly["rule"]).split("-")[0] in ("CCH", "CSL", "SIG", "CRE"):
            assert anomaly["message_fr"] and anomaly["message"]
