"""Which establishments' relations a caller sees: those its relations.read grant covers and, for
a declarant of the portal, the employments a SIRET its grant covers declared in DSN, while that
link lasts (the implicit mandate). Organisms see exactly what their grant covers."""

from __future__ import annotations

from registry.relations.store import Link, RelationsStore
from token_suite.grants import Scope

EVERYTHING: None = None


def readable_declarations(
    store: RelationsStore, scope: Scope, siret: str, *, declarant: bool
) -> list[str] | None:
    """Whose declarations of the establishment's employments are in the perimeter: None for
    all of them (the grant covers the establishment); else the SIRETs covered by the grant whose
    link to it is live, for a declarant (the implicit mandate: "le déclarant n'accède qu'aux
    retours résultant des dépôts qu'il a opérés"), and none (an empty list) for anyone else."""
    if scope.includes_siret(siret):
        return EVERYTHING
    if not declarant:
        return []
    return [d for d in store.live_declarants(siret) if scope.includes_siret(d)]


def sees_declared_by(scope: Scope, declarant_siret: str) -> bool:
    """Whether the links a declarant made are in the perimeter (its own grant only)."""
    return scope.includes_siret(declarant_siret)


def sees_link(scope: Scope, declarant_siret: str, declared_siret: str) -> bool:
    """Whether a link is in the perimeter: the grant covers either end."""
    return scope.includes_siret(declarant_siret) or scope.includes_siret(declared_siret)


def linked_in(link: Link, period: str) -> bool:
    """Whether the link held during the YYYYMM period."""
    return link.first_period <= period <= link.last_period
