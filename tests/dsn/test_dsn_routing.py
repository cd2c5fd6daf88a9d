"""Routing rules as data: loading and refusing rule files, the README's table generated from them,
every nature of the norm routed or refused with its reason, and what the router refuses (an
identifier given twice for different organisms, a reference to nothing). Who receives what of a
realistic file, organism by organism: tests/dsn/test_dsn_shares.py."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from registry.dsn.entitlement import (
    RoutingRuleError,
    entitlement_table,
    load_identification,
    load_rules,
)
from registry.dsn.norm import load, supported_versions
from registry.dsn.reader import read_rubrics, walk
from registry.dsn.routing import MAX_EMPLOYEE_LINES, MAX_REFUSALS, Router
from registry.dsn.synth import DEMO_ORGANISM_IDS, generate
from registry.dsn.synth_scenario import scenario_file

RULES = load_rules()
README = Path(__file__).parents[2] / "README.md"


def _route(data: bytes) -> dict[str, bytes]:
    outputs: dict[str, io.BytesIO] = {}

    def open_share(organism: str) -> io.BytesIO:
        outputs[organism] = io.BytesIO()
        return outputs[organism]

    shares = Router(RULES.values()).route(io.BytesIO(data), open_share)
    assert set(outputs) == {share.organism for share in shares}  # no stream for the others
    return {share.organism: outputs[share.organism].getvalue() for share in shares}


def test_every_rule_set_is_loaded_and_names_the_demo_identifiers() -> None:
    assert set(RULES) == {"URSSAF", "DGFIP", "AGIRC-ARRCO", "PREVOYANCE", "MUTUELLE",
                          "FRANCE-TRAVAIL", "CNAM"}  # fmt: skip
    for organism, identifier in DEMO_ORGANISM_IDS.items():
        assert identifier in RULES[organism].names


def test_the_readme_s_table_is_generated_from_the_rules() -> None:
    assert entitlement_table(RULES) in README.read_text("utf-8")


def test_every_nature_of_the_norm_is_routed_or_refused_with_its_reason() -> None:
    refused = load_identification().refused_natures
    routed = {nature for rules in RULES.values() for nature in rules.natures}
    for version in supported_versions():
        natures = load(version).rubrics["S20.G00.05.001"].values or frozenset()
        assert natures and natures <= routed | set(refused), version
        assert not routed & set(refused)


def test_a_declaration_of_a_refused_nature_is_routed_nowhere_and_says_why() -> None:
    data = b"".join(generate(1)).replace(b"S20.G00.05.001,'01'", b"S20.G00.05.001,'10'")
    with pytest.raises(ValueError, match="nature 10 is not routed: a DPAE"):
        _route(data)


def test_a_monthly_dsn_of_the_demo_generator_goes_to_whom_it_names() -> None:
    shares = _route(b"".join(generate(4)))
    assert set(shares) == {"URSSAF", "DGFIP", "AGIRC-ARRCO", "PREVOYANCE", "FRANCE-TRAVAIL",
                           "CNAM"}  # fmt: skip
    for organism, share in shares.items():
        lines = list(read_rubrics(io.BytesIO(share)))
        assert lines and not any(line.problem for line in lines), organism
        for line in lines:  # identifiers of payments and contributions: its own only
            if line.rubric in ("S21.G00.20.001", "S21.G00.22.001", "S21.G00.81.002"):
                assert line.value in RULES[organism].names, (organism, line.rubric)


def _with_second_adhesion(adhesion_id: str) -> bytes:
    """The demo file with MUTUELLE's adhesion next to PREVOYANCE's, under `adhesion_id`."""
    data = b"".join(generate(2))
    mutual = (
        b"S21.G00.15.001,'MUT-1'\r\nS21.G00.15.002,'P0961'\r\nS21.G00.15.004,'01'\r\n"
        b"S21.G00.15.005,'" + adhesion_id.encode() + b"'\r\n"
    )
    return data.replace(b"S21.G00.20.001", mutual + b"S21.G00.20.001", 1)


def test_an_adhesion_id_given_for_two_organisms_is_refused() -> None:
    """Both OCs' adhesions named 1: an affiliation to adhesion 1 would go to both."""
    with pytest.raises(ValueError, match="given twice"):
        _route(_with_second_adhesion("1"))
    shares = _route(_with_second_adhesion("2"))  # distinct: the MUTUELLE has no affiliate
    assert "MUTUELLE" in shares and b"S21.G00.30" not in shares["MUTUELLE"]
    assert b"S21.G00.30" in shares["PREVOYANCE"]


def test_an_affiliation_to_no_adhesion_is_refused_not_dropped() -> None:
    data = b"".join(generate(2)).replace(b"S21.G00.70.013,'1'", b"S21.G00.70.013,'9'")
    with pytest.raises(ValueError, match=r"refers to no S21\.G00\.15\.005"):
        _route(data)


def _write(tmp_path: Path, rules: Mapping[str, object]) -> Path:
    (tmp_path / "X.json").write_text(json.dumps(rules))
    return tmp_path


BASE = {"organism": "X", "names": ["X1"], "natures": ["04"], "individuals": "all",
        "blocks": {"S21.G00.30": {}, "S21.G00.60": {}}}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"blocks": {"S21.G00.99": {}}}, "not in the norm"),
        ({"blocks": {"S21.G00.20": {"where": {"names": "S21.G00.30.001"}}}},
         "not a rubric of block S21.G00.20"),
        ({"blocks": {"S21.G00.60": {}}}, "need S21.G00.30 too"),
        ({"individuals": {"having": ["S21.G00.20"]}}, "not an entitled block under an employee"),
        ({"blocks": {"S21.G00.30": {}, "S21.G00.70": {
            "where": {"refers": "S21.G00.70.013", "to": "S21.G00.15.005"}}}}, "not entitled"),
        ({"names": [], "blocks": {"S21.G00.20": {"where": {"names": "S21.G00.20.001"}}}},
         "'names' is empty"),
        ({"blocks": {"S21.G00.20": {"where": {"maybe": "S21.G00.20.001"}}}},
         "unknown condition"),
        ({"blocks": {"S21.G00.20": {"rubric": "S21.G00.20.001"}}}, "'where' and 'rubrics'"),
    ],
)  # fmt: skip
def test_bad_rule_files_are_refused_with_their_name(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(RoutingRuleError, match=message) as refused:
        load_rules(_write(tmp_path, {**BASE, **change}))
    assert "X.json" in str(refused.value)


def test_a_rule_file_that_is_not_json_is_refused_and_a_directory_replaces_the_packaged_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "X.json").write_text("{not json")
    with pytest.raises(RoutingRuleError, match=r"X\.json: not JSON"):
        load_rules(tmp_path)
    rules = load_rules(_write(tmp_path, BASE))
    assert list(rules) == ["X"]
    sick = b"".join(generate(2, nature="04"))
    outputs: dict[str, io.BytesIO] = {}
    Router(rules.values()).route(io.BytesIO(sick), lambda o: outputs.setdefault(o, io.BytesIO()))
    blocks = {line.rubric[:10] for line in read_rubrics(io.BytesIO(outputs["X"].getvalue()))}
    assert "S21.G00.60" in blocks and "S21.G00.40" in blocks  # the contract, identified
    assert "S21.G00.51" not in blocks


def test_what_the_router_refuses_takes_bounded_memory() -> None:
    """Lines it cannot read are counted past MAX_REFUSALS; an employee past MAX_EMPLOYEE_LINES
    is refused and forgotten, not held."""
    bad = b"".join(generate(1)) + b"x\n" * (MAX_REFUSALS + 500)
    listener = Router(RULES.values()).listener(lambda organism: io.BytesIO())
    walk(io.BytesIO(bad), listener)
    assert len(listener.unread) + len(listener.anomalies) == MAX_REFUSALS
    assert listener.refusals_not_kept == 500

    lines = b"".join(generate(1)).split(b"\r\n")
    at = next(i for i, line in enumerate(lines) if line.startswith(b"S21.G00.81.001"))
    contribution = lines[at : at + 4]
    big = lines[:at] + contribution * (MAX_EMPLOYEE_LINES // 4 + 1) + lines[at:]
    listener = Router(RULES.values()).listener(lambda organism: io.BytesIO())
    walk(io.BytesIO(b"\r\n".join(big)), listener)
    assert [a.rule for a in listener.anomalies] == ["INTEROPS-ROUTING-EMPLOYEE-SIZE"]
    assert listener.employee is None


@pytest.mark.parametrize(
    ("edit", "rubric"),
    [
        ((b"S21.G00.78.005,'1'\r\n", b""), "S21.G00.78.005"),  # a base 31 without affiliation
        ((b"S21.G00.70.013,'1'\r\n", b""), "S21.G00.70.013"),  # an affiliation without adhesion
        ((b"S21.G00.15.002,'P0961'\r\n", b""), "S21.G00.15.002"),  # an adhesion without its OC
    ],
)
def test_a_block_without_what_routes_it_is_refused_not_sent_to_nobody(
    edit: tuple[bytes, bytes], rubric: str
) -> None:
    data = b"".join(scenario_file("01", employees=5).lines())
    assert edit[0] in data
    with pytest.raises(ValueError, match=f"{rubric} is missing"):
        _route(data.replace(*edit))


def test_two_rule_files_naming_the_same_organism_identifier_are_refused(tmp_path: Path) -> None:
    (tmp_path / "A.json").write_text(json.dumps({**BASE, "organism": "A"}))
    (tmp_path / "B.json").write_text(json.dumps({**BASE, "organism": "B"}))
    with pytest.raises(RoutingRuleError, match="X1 already names A"):
        load_rules(tmp_path)
