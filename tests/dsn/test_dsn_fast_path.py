"""Validation's fast path (registry/dsn/individual_segments.py) changes no outcome: on every
rule's breaking and passing example, on each broken variant and on files mutated at random, the
report of `validate` is the reference reading's (every line through the Validator), anomaly for
anomaly; and on a clean file the fast path does take the individuals."""

from __future__ import annotations

import random
from typing import Any

import pytest

from registry.dsn.controls import all_rules
from registry.dsn.reader import walk
from registry.dsn.synth import BROKEN, broken, generate
from registry.dsn.synth_variants import apply
from registry.dsn.validation import Report, Validator, _Validation, validate


def _reference(data: bytes) -> Report:
    validator = Validator()
    walk([line + b"\n" for line in data.split(b"\n")[:-1]] + [data.rsplit(b"\n", 1)[-1]],
         validator)  # fmt: skip
    return validator.report


def _same(data: bytes, chunk: int = 0) -> None:
    """The reference's report, by `validate`, and with every shape planned and compiled at
    once (eager)."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    expected = _reference(data).as_dict()
    assert validate(pieces).as_dict() == expected
    assert _Validation(eager=True).run(pieces).as_dict() == expected


EXAMPLES = [
    (f"{rule['rubric']}/{rule['id']}/{kind}", rule["examples"].get("base", "monthly"), edits)
    for rule in all_rules()
    if "examples" in rule
    for kind, edits in (("break", rule["examples"]["break"]), ("pass", rule["examples"]["pass"]))
]


@pytest.mark.parametrize(("name", "base", "edits"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_each_rule_example_gets_the_reference_report(name: str, base: str, edits: Any) -> None:
    _same(apply(base, edits))


@pytest.mark.parametrize("variant", BROKEN)
def test_each_broken_variant_gets_the_reference_report(variant: str) -> None:
    _same(broken(variant, employees=6), chunk=97)


_VALUES = [
    b"",
    b"01",
    b"99",
    b"31022020",
    b"12,50",
    b"1.00",
    b"\x00",
    b"\xe9t\xe9",
    b"'",
    b"O'N",
    b"0101201\xb2",
    b"1\xb2",
]


def _mutated(rng: random.Random, lines: list[bytes]) -> bytes:
    lines = list(lines)
    for _ in range(rng.randrange(1, 4)):
        position = rng.randrange(len(lines))
        kind = rng.randrange(6)
        if kind == 0:  # a value changed
            rubric = lines[position].split(b",", 1)[0]
            value = rng.choice([*_VALUES, b"X" * rng.randrange(1, 90)])
            lines[position] = rubric + b",'" + value + b"'\r\n"
        elif kind == 1:
            del lines[position]
        elif kind == 2:
            lines.insert(position, lines[rng.randrange(len(lines))])
        elif kind == 3:
            lines[position] = lines[position].replace(b"\r\n", b"\n")
        elif kind == 4:
            lines.insert(position, b"\r\n")
        else:
            lines[position] = lines[position][: rng.randrange(len(lines[position]))] + b"\r\n"
    return b"".join(lines)


def test_files_mutated_at_random_get_the_reference_report() -> None:
    rng = random.Random(20)
    for nature in ("01", "04", "07"):
        lines = list(generate(8 if nature == "01" else 1, nature=nature))
        for _ in range(60):
            _same(_mutated(rng, lines), chunk=rng.choice([0, 53, 4096]))


def test_a_clean_file_takes_the_fast_path_for_its_individuals() -> None:
    """Eager here; on its own the fast path waits until the time it has taken pays for a plan
    (test_a_small_file_never_pays_for_a_plan_and_a_large_one_does)."""
    data = b"".join(generate(50))
    validation = _Validation(eager=True)
    report = validation.run([data])
    assert report.conformant and report.as_dict() == _reference(data).as_dict()
    # one plan for the individuals' shape, and no individual went line by line
    plans = [plan for plan in validation.fast.plans.values() if plan is not None]
    assert len(plans) == 1 and validation.fast.last is not None
    # the last individual goes line by line: what follows it (the footer) is not an individual
    assert plans[0].uses == 49 and plans[0].compiled is not None
    assert validation.lines.number == report.lines


def test_a_small_file_never_pays_for_a_plan_and_a_large_one_does() -> None:
    small = _Validation()
    small.run([b"".join(generate(20))])
    assert small.fast.plans == {}
    large = _Validation()
    report = large.run([b"".join(generate(3000))])
    plans = [plan for plan in large.fast.plans.values() if plan is not None]
    assert report.conformant and len(plans) == 1 and plans[0].compiled is not None
    assert plans[0].uses > 2000


# What an attacker's review found (each a file where the fast path once differed).


def _starts(lines: list[bytes]) -> list[int]:
    return [i for i, line in enumerate(lines) if line.startswith(b"S21.G00.30.001")]


def _counted(lines: list[bytes]) -> bytes:
    total = sum(1 for line in lines if line.strip())
    return b"".join(b"S90.G00.90.001,'%d'\r\n" % total if line.startswith(b"S90.G00.90.001")
                    else line for line in lines)  # fmt: skip


def test_a_nir_repeated_right_after_an_individual_read_line_by_line_is_refused() -> None:
    """The individual before was read line by line (its shape met once): its NIR is recorded
    when it closes, which must come before the next one is judged."""
    lines = list(generate(3000))
    starts = _starts(lines)
    a, b = starts[2500], starts[2501]
    identity = [line for line in lines[a:b] if line.startswith(b"S21.G00.30.")]
    end = b
    while lines[end].startswith(b"S21.G00.30."):
        end += 1
    lines[b:end] = identity  # B: A's identity, the common shape
    lines[a : a + len(identity)] = [line for line in identity
                                    if not line.startswith(b"S21.G00.30.019")]  # fmt: skip
    data = _counted(lines)
    report = validate([data])
    assert report.kind == "BAN" and [a.rule for a in report.anomalies] == ["CCH-14"]
    assert report.as_dict() == _reference(data).as_dict()


def test_a_blank_line_inside_an_individual_does_not_split_it() -> None:
    lines = list(generate(3))
    lines.insert(_starts(lines)[1] + 1, b"\r\n")
    _same(_counted(lines), chunk=97)


@pytest.mark.parametrize("case", ["no rubric", "a later rubric", "an individual's first line"])
def test_an_unreadable_line_after_a_clean_individual_gets_the_reference_report(case: str) -> None:
    """Such a line belongs to the individual before it (its taint, what stays open)."""
    lines = list(apply("monthly", [["set", "S21.G00.11.001", "00099"]]).splitlines(True))
    b = _starts(lines)[1]
    if case == "no rubric":
        lines.insert(b, b"S21.G00.30.001X,'1'\r\n")
    elif case == "a later rubric":
        lines[b : b + 3] = [
            b"S21.G00.30.030,'\x01'\r\n",
            *[x for x in lines[b : b + 3] if not x.startswith(b"S21.G00.30.002")],
        ]
    else:
        end = b
        while lines[end].startswith(b"S21.G00.30."):
            end += 1
        lines[b:end] = [b"S21.G00.30.001,'\x01'\r\n"]
    _same(b"".join(lines), chunk=97)


def test_a_superscript_digit_in_a_date_gets_a_ban_not_a_crash() -> None:
    data = apply("monthly", [["set", "S21.G00.40.001", "0101201\xb2"]])
    report = validate([data])
    assert report.kind == "BAN" and "NEODES-FORMAT" in [a.rule for a in report.anomalies]
    _same(data)
