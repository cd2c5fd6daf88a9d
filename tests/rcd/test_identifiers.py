"""SIREN/SIRET checks as plain functions: known numbers, La Poste, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.rcd.identifiers import (
    IdentifierProblem,
    check_siren,
    check_siret,
    luhn_complete,
    luhn_ok,
)

# Published identifiers of well-known companies.
VALID_SIRENS = ["732829320", "552032534", "356000000", "542107651"]
VALID_SIRETS = ["73282932000074", "55203253400646", "35600000000048", "54210765113030"]


@pytest.mark.parametrize("siren", VALID_SIRENS)
def test_known_sirens_are_valid(siren: str) -> None:
    assert check_siren(siren).ok


@pytest.mark.parametrize("siret", VALID_SIRETS)
def test_known_sirets_are_valid(siret: str) -> None:
    assert check_siret(siret).ok


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", IdentifierProblem.WRONG_LENGTH),
        ("7328293200007", IdentifierProblem.WRONG_LENGTH),
        ("732829320000740", IdentifierProblem.WRONG_LENGTH),
        ("7328293200007A", IdentifierProblem.NOT_DIGITS),
        ("73282932 00074", IdentifierProblem.NOT_DIGITS),
        ("٧٣٢٨٢٩٣٢٠٠٠٠٧٤", IdentifierProblem.NOT_DIGITS),
        ("７３２８２９３２００００７４", IdentifierProblem.NOT_DIGITS),
        ("73282932000075", IdentifierProblem.BAD_CHECKSUM),
    ],
)
def test_bad_sirets_say_why(value: str, problem: IdentifierProblem) -> None:
    check = check_siret(value)
    assert check.problem is problem
    assert check.message


def test_la_poste_sirets_follow_the_sum_of_digits_rule() -> None:
    # 35600000049459: fails Luhn, digits sum to 45.
    assert not luhn_ok("35600000049459")
    assert check_siret("35600000049459").ok
    # Same rule does not apply to another company.
    assert check_siret("35600000049457").problem is IdentifierProblem.BAD_CHECKSUM
    assert check_siret("73282932049459").problem is IdentifierProblem.BAD_CHECKSUM


def test_a_siren_with_a_wrong_check_digit_is_refused() -> None:
    assert check_siren("732829321").problem is IdentifierProblem.BAD_CHECKSUM


@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_completing_a_prefix_always_gives_a_valid_siret(prefix: str) -> None:
    assert check_siret(luhn_complete(prefix)).ok


@given(
    st.text(alphabet="0123456789", min_size=13, max_size=13).filter(
        lambda p: not p.startswith("356000000")
    ),
    st.integers(0, 13),
    st.integers(1, 9),
)
def test_changing_one_digit_breaks_the_check(prefix: str, position: int, shift: int) -> None:
    valid = luhn_complete(prefix)
    digit = (int(valid[position]) + shift) % 10
    altered = valid[:position] + str(digit) + valid[position + 1 :]
    assert check_siret(altered).problem is IdentifierProblem.BAD_CHECKSUM


@given(st.text(min_size=14, max_size=14).filter(lambda s: not (s.isascii() and s.isdigit())))
def test_anything_but_ascii_digits_is_refused(value: str) -> None:
    assert check_siret(value).problem is IdentifierProblem.NOT_DIGITS
