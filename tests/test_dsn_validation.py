"""DSN-VAL: generated files are conformant (CCO), each broken variant gets the anomaly its rule
names at the line that breaks it (BAN), the real sample's findings, and `interops dsn validate`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from clients.dsn_cli import PROGRESS_FROM_BYTES
from registry.dsn_synth import BROKEN, NATURES, broken, generate
from registry.dsn_validation import MAX_ANOMALIES, validate

SAMPLE = Path(__file__).parent / "fixtures" / "dsn" / "sample_dsn_P25V01.dsn"


def _validate(data: bytes):  # type: ignore[no-untyped-def]
    return validate(io.BytesIO(data))


@pytest.mark.parametrize("nature", NATURES)
def test_generated_declarations_of_every_nature_are_conformant(nature: str) -> None:
    report = _validate(b"".join(generate(4, nature=NATURES[nature])))
    assert report.kind == "CCO", report.anomalies
    assert report.anomalies == [] and report.versions == ["P25V01"]
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


def test_the_real_sample_reports_its_key_and_nir_errors_and_ignores_portal_rubrics() -> None:
    with SAMPLE.open("rb") as stream:
        report = validate(stream)
    assert report.envois == 3 and report.versions == ["P25V01"] and report.lines == 443
    assert [d.nature for d in report.declarations] == ["07", "07", "07"]
    rules = {(a.rubric, a.rule) for a in report.anomalies if a.blocking}
    # Synthetic identifiers: 123456789 and 987654321 fail the SIREN key, the NIR its format.
    assert ("S10.G00.01.001", "CSL-11") in rules
    assert ("S21.G00.06.001", "CSL-11") in rules
    assert ("S21.G00.30.001", "NEODES-FORMAT") in rules
    # The totals of each envoi are right; what the portal adds (S10.G00.95, 9xx) only warns.
    assert not any(a.rule.startswith("NEODES-TOTAL") for a in report.anomalies)
    warned = {a.rubric for a in report.anomalies if not a.blocking}
    assert "S10.G00.95.001" in warned and "S21.G00.06.903" in warned
    assert all(a.rule == "NEODES-UNKNOWN-RUBRIC" for a in report.anomalies if not a.blocking)


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
    assert [a["rule"] for a in report["anomalies"]] == ["CCH-13"]
    missing = interops("dsn", "validate", str(tmp_path / "nowhere.dsn"))
    assert missing.returncode == 2 and "nowhere.dsn" in missing.stderr


def test_the_validate_command_shows_progress_on_large_files(tmp_path: Path) -> None:
    large = tmp_path / "large.dsn"
    assert interops("dsn", "generate", "--out", str(large), "--employees", "3000").returncode == 0
    assert large.stat().st_size > PROGRESS_FROM_BYTES
    done = interops("dsn", "validate", str(large))
    assert done.returncode == 0 and "large.dsn" in done.stderr and "100%" in done.stderr
    done = interops("dsn", "validate", "--quiet", str(large))
    assert done.returncode == 0 and done.stderr == ""
