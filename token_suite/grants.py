"""Rights with their data perimeter, and the rule that a hop may only narrow them.

A perimeter is every establishment, or a set of companies (SIREN: all their establishments) and
single establishments (SIRET). A right held over a company covers each of its establishments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from interops.token.v1 import token_pb2

from token_suite.errors import TokenError

MAX_RIGHT = 64


_SIREN = re.compile(r"[0-9]{9}").fullmatch
_SIRET = re.compile(r"[0-9]{14}").fullmatch
_NONE: frozenset[str] = frozenset()
_new = tuple.__new__  # skips the named tuple's Python-level constructor: runs per block


class Scope(NamedTuple):
    """The data perimeter of one right."""

    everything: bool = False
    sirens: frozenset[str] = frozenset()
    sirets: frozenset[str] = frozenset()

    def includes_siret(self, siret: str) -> bool:
        """True when the establishment is in the perimeter."""
        return self.everything or siret in self.sirets or siret[:9] in self.sirens

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
        right = grant.right
        # Read each repeated field once, by slice (a list at once: iterating the protobuf
        # container is slow), into a set.
        sirens = frozenset(grant.sirens[:]) or _NONE
        sirets = frozenset(grant.sirets[:]) or _NONE
        if not 0 < len(right) <= MAX_RIGHT:
            raise TokenError("MALFORMED", "a grant has an empty or overlong right", block)
        if not (
            (not sirens or all(map(_SIREN, sirens))) and (not sirets or all(map(_SIRET, sirets)))
        ):
            raise TokenError("MALFORMED", f"a {right} perimeter holds a bad identifier", block)
        scope = _new(Scope, (grant.all_establishments, sirens, sirets))
        previous = grants.get(right)
        grants[right] = scope if previous is None else previous.union(scope)
    return grants


def widening(parent: Grants, child: Grants) -> str | None:
    """The first right that `child` holds beyond `parent`, or None when it only narrows."""
    for right, scope in child.items():
        held = parent.get(right)
        if held is None or (held != scope and not held.covers(scope)):
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
