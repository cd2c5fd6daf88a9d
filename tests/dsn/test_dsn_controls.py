"""The norm's control rules as data (registry/dsn/control_rules/): each enforced rule is broken by
its breaking example, at a line of the block at fault, and kept by its passing one, which is
wholly conformant; the rule set compiles for every supported version."""

from __future__ import annotations

from typing import Any

import pytest

from registry.dsn.controls import all_rules, load_controls
from registry.dsn.norm import load, supported_versions
from registry.dsn.synth_variants import apply
from registry.dsn.validation import Report, validate

# Enforced by the data, or by the validator's code (`in_code` names where), each with examples.
ENFORCED = [rule for rule in all_rules() if "require" in rule or "in_code" in rule]


def _name(rule: dict[str, Any]) -> str:
    return f"{rule['rubric']}/{rule['id']}"


def _validate(data: bytes) -> Report:
    return validate(line + b"\n" for line in data.split(b"\n") if line)


@pytest.mark.parametrize("version", supported_versions())
def test_the_rules_compile_for_every_supported_version(version: str) -> None:
    controls = load_controls(version)
    assert controls.controls, "no rule applies"


def test_each_rule_is_a_rule_of_the_workbook_or_of_the_format_and_is_listed_once() -> None:
    workbook = load("P24V01").rules
    seen: set[str] = set()
    for rule in all_rules():
        name = _name(rule)
        assert name not in seen, f"{name} is listed twice"
        seen.add(name)
        if not rule["id"].startswith("NEODES-"):
            assert rule["id"] in workbook.get(rule["rubric"], {}), f"{name} is not in the workbook"
        assert len({"require", "not_enforced", "in_code"} & set(rule)) == 1, name


@pytest.mark.parametrize("rule", ENFORCED, ids=_name)
def test_each_rule_fails_on_its_breaking_example_at_the_block_at_fault(
    rule: dict[str, Any],
) -> None:
    examples = rule["examples"]
    data = apply(examples.get("base", "monthly"), examples["break"])
    report = _validate(data)
    found = [a for a in report.anomalies if a.rule == rule["id"] and a.rubric == rule["rubric"]]
    assert found, f"not raised; got {[(a.rule, a.rubric, a.message) for a in report.anomalies]}"
    scope = rule.get("scope", rule["rubric"][:10])
    lines = data.split(b"\r\n")
    assert lines[found[0].line - 1].startswith(scope.encode()), "not at the block at fault"
    assert found[0].message_fr and found[0].blocking == (
        not rule.get("warning", rule["id"].startswith("SIG"))
    )


@pytest.mark.parametrize("rule", ENFORCED, ids=_name)
def test_each_rule_holds_on_its_passing_example_which_is_conformant(rule: dict[str, Any]) -> None:
    examples = rule["examples"]
    report = _validate(apply(examples.get("base", "monthly"), examples["pass"]))
    assert [(a.rule, a.rubric, a.message) for a in report.anomalies] == []


def test_the_readme_table_is_generated_from_the_rules_and_counts_at_least_300() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "tools/generate_dsn_coverage.py", "--check"],
                          cwd=root, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    laid_out = subprocess.run([sys.executable, "tools/format_dsn_rules.py", "--check"],
                              cwd=root, capture_output=True, text=True, check=False)  # fmt: skip
    assert laid_out.returncode == 0, laid_out.stderr
    workbook = load("P24V01").rules
    enforced = [r for r in ENFORCED if r["id"] in workbook.get(r["rubric"], {})]
    assert len(enforced) >= 300
