"""Routing rules: for every organism and every nature, the share holds only what its rules
entitle it to (block by block, rubric by rubric, and the identifiers of other organisms never),
and each organism is concerned by exactly the declarations its rules name."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from registry.dsn.reader import RubricLine, read_blocks, read_rubrics
from registry.dsn.routing import Router, RoutingRuleError, load_rules
from registry.dsn.synth import DEMO_ORGANISM_IDS, NATURES, generate
from registry.dsn.validation import validate

RULES = load_rules()
# Who is concerned, by nature, with the demo's generated declarations.
CONCERNED = {
    "01": {"URSSAF", "DGFIP", "AGIRC-ARRCO", "PREVOYANCE"},
    "04": {"CNAM"},
    "05": {"CNAM"},
    "07": {"AGIRC-ARRCO", "FRANCE-TRAVAIL"},
}


def _route(data: bytes) -> dict[str, bytes]:
    outputs: dict[str, io.BytesIO] = {}

    def open_share(organism: str) -> io.BytesIO:
        outputs[organism] = io.BytesIO()
        return outputs[organism]

    shares = Router(RULES.values()).route(io.BytesIO(data), open_share)
    return {share.organism: outputs[share.organism].getvalue() for share in shares}


def test_every_rule_set_is_loaded_and_names_the_demo_identifiers() -> None:
    assert set(RULES) == {"URSSAF", "DGFIP", "AGIRC-ARRCO", "PREVOYANCE", "FRANCE-TRAVAIL",
                          "CNAM"}  # fmt: skip
    # The generator pays the organisms under the identifiers the rules know them by.
    for organism, identifier in DEMO_ORGANISM_IDS.items():
        values = {v for c in RULES[organism].when if c.values for v in c.values}
        assert identifier in values


@pytest.mark.parametrize("nature", NATURES.values())
def test_each_organism_gets_only_what_its_rules_entitle_it_to(nature: str) -> None:
    data = b"".join(generate(6, nature=nature))
    shares = _route(data)
    assert set(shares) == CONCERNED[nature]
    for organism, share in shares.items():
        rules = RULES[organism]
        lines = list(read_rubrics(io.BytesIO(share)))
        assert lines and not any(line.problem for line in lines)
        assert [line.rubric for line in lines if not rules.allowed_rubric(line.rubric)] == []
        # Instances limited by value carry only this organism's identifiers.
        for line in lines:
            if line.rubric in ("S21.G00.20.001", "S21.G00.22.001", "S21.G00.81.002"):
                assert line.value == DEMO_ORGANISM_IDS[organism], (organism, line)
        # A well-formed file: the totals the share declares are its own.
        report = validate(io.BytesIO(share))
        assert not any(a.rule.startswith("NEODES-TOTAL") for a in report.anomalies)
        assert not any(a.rule in ("NEODES-SYNTAX", "NEODES-ORDER") for a in report.anomalies)


def test_a_share_keeps_each_employee_with_the_blocks_it_is_entitled_to() -> None:
    shares = _route(b"".join(generate(4, nature="01")))
    individuals = {
        organism: [b for b in read_blocks(io.BytesIO(share)) if b.block == "S21.G00.30"]
        for organism, share in shares.items()
    }
    # Every organism concerned by a monthly DSN follows all four employees...
    assert all(len(found) == 4 for found in individuals.values())
    # ...but the DGFiP sees only identity and tax, the Urssaf no tax rate.
    dgfip = {line.rubric[:10] for line in read_rubrics(io.BytesIO(shares["DGFIP"]))}
    assert dgfip <= {"S10.G00.00", "S20.G00.05", "S21.G00.06", "S21.G00.11", "S21.G00.20",
                     "S21.G00.30", "S21.G00.50", "S90.G00.90"}  # fmt: skip
    urssaf = {line.rubric for line in read_rubrics(io.BytesIO(shares["URSSAF"]))}
    assert "S21.G00.50.006" not in urssaf and "S21.G00.81.004" in urssaf


def test_a_declaration_that_names_nobody_s_identifier_concerns_nobody_by_payment() -> None:
    data = b"".join(generate(2, nature="01")).replace(b"'DGFIP'", b"'XXXXX'")
    data = data.replace(b"S21.G00.50.006", b"S21.G00.50.005")  # no PAS rubric either
    assert "DGFIP" not in _route(data)


def test_bad_rule_files_are_refused_with_their_name(tmp_path: Path) -> None:
    (tmp_path / "X.json").write_text("{not json")
    with pytest.raises(RoutingRuleError, match=r"X\.json"):
        load_rules(tmp_path)
    wrong = {"S21.G00.20": {"rubric": "S21.G00.30.001"}}
    (tmp_path / "X.json").write_text(
        json.dumps({"organism": "X", "natures": ["01"], "when": [], "blocks": wrong})
    )
    with pytest.raises(RoutingRuleError, match="not one of block"):
        load_rules(tmp_path)
    # A directory of rules replaces the packaged ones.
    (tmp_path / "X.json").write_text(json.dumps({"organism": "X", "natures": ["04"],
                                                 "when": [{"block": "S21.G00.60"}],
                                                 "blocks": {"S21.G00.60": {}}}))  # fmt: skip
    rules = load_rules(tmp_path)
    assert list(rules) == ["X"]
    assert rules["X"].allowed_rubric("S21.G00.60.001")
    assert not rules["X"].allowed_rubric("S21.G00.40.007")
    assert RubricLine(1, "S21.G00.60.001", "01").block == "S21.G00.60"
