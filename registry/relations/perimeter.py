"""Which establishments' relations a caller sees: those its relations.read grant covers and, for
a declarant of the portal, those a SIRET its grant covers declared in DSN (the implicit mandate).
Organisms see exactly what their grant covers."""

from __future__ import annotations

from registry.relations.store import Link, RelationsStore
from token_suite.grants import Scope


def sees_establishment(store: RelationsStore, scope: Scope, siret: str, *, declarant: bool) -> bool:
    """Whether the establishment's employments are in the perimeter; `declarant` says whether
    the implicit mandate applies."""
    if scope.includes_siret(siret):
        return True
    return declarant and any(scope.includes_siret(d) for d in store.declarants_of(siret))


def sees_declared_by(scope: Scope, declarant_siret: str) -> bool:
    """Whether the links a declarant made are in the perimeter (its own grant only)."""
    return scope.includes_siret(declarant_siret)


def sees_link(scope: Scope, declarant_siret: str, declared_siret: str) -> bool:
    """Whether a link is in the perimeter: the grant covers either end."""
    return scope.includes_siret(declarant_siret) or scope.includes_siret(declared_siret)


def linked_in(link: Link, period: str) -> bool:
    """Whether the link held during the YYYYMM period."""
    return link.first_period <= period <= link.last_period
