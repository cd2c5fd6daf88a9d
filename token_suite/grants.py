"""Rights with their data perimeter, and the rule that a hop may only narrow them.

A perimeter is every establishment, or a set of companies (SIREN: all their establishments) and
single establishments (SIRET). A right held over a company covers each of its establishments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from interops.token.v1 import token_pb2

from token_suite.errors import TokenError

MAX_RIGHT = 64


def _digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


class Scope(NamedTuple):
    """The data perimeter of one right."""

    everything: bool = False
    sirens: frozenset[str] = frozenset()
    sirets: frozenset[str] = frozenset()

    def includes_siret(self, siret: str) -> bool:
        """True when the establishment is in the perimeter."""
        return self.everything or siret in self.sirets or siret[:9] in self.sirens

    def includes_siren(self, siren: str) -> bool:
        """True when the whole company is in the perimeter."""
        return self.everything or siren in self.sirens

    def covers(self, other: Scope) -> bool:
        """True when `other` is no wider than this perimeter."""
        if self.everything:
            return True
        if other.everything or not other.sirens <= self.sirens:
            return False
        return all(s in self.sirets or s[:9] in self.sirens for s in other.sirets)

    def union(self, other: Scope) -> Scope:
        """Both perimeters together."""
        if self.everything or other.everything:
            return Scope(everything=True)
        return Scope(False, self.sirens | other.sirens, self.sirets | other.sirets)


Grants = Mapping[str, Scope]


def grants_from(messages: Iterable[token_pb2.Grant], block: int | None = None) -> dict[str, Scope]:
    """The grants of a block, one scope per right; malformed identifiers are refused."""
    grants: dict[str, Scope] = {}
    for grant in messages:
        if not 0 < len(grant.right) <= MAX_RIGHT:
            raise TokenError("MALFORMED", "a grant has an empty or overlong right", block)
        if not all(_digits(s, 9) for s in grant.sirens) or not all(
            _digits(s, 14) for s in grant.sirets
        ):
            raise TokenError(
                "MALFORMED", f"a {grant.right} perimeter holds a bad identifier", block
            )
        scope = Scope(grant.all_establishments, frozenset(grant.sirens), frozenset(grant.sirets))
        previous = grants.get(grant.right)
        grants[grant.right] = scope if previous is None else previous.union(scope)
    return grants


def widening(parent: Grants, child: Grants) -> str | None:
    """The first right that `child` holds beyond `parent`, or None when it only narrows."""
    for right, scope in child.items():
        held = parent.get(right)
        if held is None or not held.covers(scope):
            return right
    return None


def grants_to_messages(grants: Grants) -> list[token_pb2.Grant]:
    """The grants as messages, in a stable order."""
    return [
        token_pb2.Grant(
            right=right,
            all_establishments=scope.everything,
            sirens=sorted(scope.sirens),
            sirets=sorted(scope.sirets),
        )
        for right, scope in sorted(grants.items())
    ]
