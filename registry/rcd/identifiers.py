"""SIREN and SIRET checks: format, Luhn check digit and the La Poste exception.

Plain functions, usable without a server or a database. A SIREN is 9 digits and a SIRET 14
(SIREN + NIC), both with a Luhn check digit; La Poste (SIREN 356000000) numbers its
establishments so that the sum of the 14 digits is a multiple of 5 instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from interops.registry.v1 import registry_pb2

from registry.kernel.contract_enums import contract_value

LA_POSTE_SIREN = "356000000"
_ASCII_DIGITS = frozenset("0123456789")


class IdentifierProblem(enum.Enum):
    """Why an identifier is not well formed."""

    WRONG_LENGTH = "wrong length"
    NOT_DIGITS = "not only the digits 0-9"
    BAD_CHECKSUM = "wrong check digit"

    def to_proto(self) -> registry_pb2.SiretProblem.ValueType:
        """The contract's number for this problem."""
        return contract_value(registry_pb2.SiretProblem, self.name)


@dataclass(frozen=True, slots=True)
class IdentifierCheck:
    """The verdict on one identifier: `problem` is None when it is well formed."""

    problem: IdentifierProblem | None
    message: str

    @property
    def ok(self) -> bool:
        """True when the identifier is well formed."""
        return self.problem is None


# A digit doubled, with the digits of the result summed: what Luhn adds for every second digit.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def luhn_ok(digits: str) -> bool:
    """True when a string of ASCII digits passes the Luhn check."""
    kept = sum(map(int, digits[::-1][::2]))
    doubled = sum(map(int, digits[::-1][1::2].translate(_LUHN_DOUBLED)))
    return (kept + doubled) % 10 == 0


def _format_problem(value: str, length: int, name: str) -> IdentifierCheck | None:
    if len(value) != length:
        return IdentifierCheck(
            IdentifierProblem.WRONG_LENGTH, f"a {name} has {length} digits, not {len(value)}"
        )
    if not _ASCII_DIGITS.issuperset(value):
        return IdentifierCheck(IdentifierProblem.NOT_DIGITS, f"a {name} holds only the digits 0-9")
    return None


def check_siren(value: str) -> IdentifierCheck:
    """Checks a SIREN: 9 ASCII digits with a valid Luhn check digit."""
    problem = _format_problem(value, 9, "SIREN")
    if problem is not None:
        return problem
    if not luhn_ok(value):
        return IdentifierCheck(
            IdentifierProblem.BAD_CHECKSUM, "the SIREN's check digit is wrong (Luhn)"
        )
    return IdentifierCheck(None, "well formed")


def check_siret(value: str) -> IdentifierCheck:
    """Checks a SIRET: 14 ASCII digits, Luhn over all 14, or La Poste's sum-of-digits rule."""
    problem = _format_problem(value, 14, "SIRET")
    if problem is not None:
        return problem
    if luhn_ok(value):
        return IdentifierCheck(None, "well formed")
    if value.startswith(LA_POSTE_SIREN):
        if sum(ord(c) - 48 for c in value) % 5 == 0:
            return IdentifierCheck(None, "well formed")
        return IdentifierCheck(
            IdentifierProblem.BAD_CHECKSUM,
            "the SIRET's check digit is wrong "
            "(La Poste: the sum of the digits must be a multiple of 5)",
        )
    return IdentifierCheck(
        IdentifierProblem.BAD_CHECKSUM, "the SIRET's check digit is wrong (Luhn)"
    )


def luhn_complete(prefix: str) -> str:
    """Returns prefix followed by the digit that makes it pass the Luhn check."""
    for digit in "0123456789":
        if luhn_ok(prefix + digit):
            return prefix + digit
    raise AssertionError("unreachable: one Luhn digit always fits")
