"""What a declarant's root token carries, from everything that gives it rights:

- its explicit grants (declarant_grants);
- relations.read over its own company, through which the implicit mandate reaches what its
  company declared (server/relations_service.py);
- each habilitation: the service's right over that establishment;
- the DSN links: for each service that inherits the DSN rights (PAYROLL, PAYROLL_OPERABLE),
  its right over every establishment a SIRET of the company declared, when they are at most
  MAX_TOKEN_SIRETS (a token travels in call metadata). Above that the token carries none of
  them and services ask CheckAccess, which decides from the links themselves.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from registry.declarant_store import DeclarantStore
from registry.declarative_services import PAYROLL, PAYROLL_OPERABLE, SERVICES
from registry.habilitation_schema import habilitations
from registry.relations_store import declared_by_company
from registry.trust_schema import declarants
from token_suite.grants import Grants, Scope

RELATIONS_READ = "relations.read"
MAX_TOKEN_SIRETS = 200


def _add(grants: dict[str, Scope], right: str, scope: Scope) -> None:
    held = grants.get(right)
    grants[right] = scope if held is None else held.union(scope)


def declarant_rights(engine: Engine, declarant_id: int) -> Grants:
    """Every right the declarant may be granted, with its perimeter."""
    grants = dict(DeclarantStore(engine).grants_of(declarant_id))
    with engine.connect() as connection:
        siret = connection.execute(
            select(declarants.c.siret).where(declarants.c.id == declarant_id)
        ).scalar()
        if siret is None:
            return grants
        siren = str(siret)[:9]
        held = connection.execute(
            select(habilitations.c.siret, habilitations.c.service).where(
                habilitations.c.declarant_id == declarant_id
            )
        ).all()
        declared = declared_by_company(connection, siren, MAX_TOKEN_SIRETS + 1)
    _add(grants, RELATIONS_READ, Scope(sirens=frozenset({siren})))
    for habilitated, service in held:
        _add(grants, SERVICES[service].right, Scope(sirets=frozenset({habilitated})))
    if declared and len(declared) <= MAX_TOKEN_SIRETS:
        inherited = Scope(sirets=frozenset(declared))
        for service in SERVICES.values():
            if service.case in (PAYROLL, PAYROLL_OPERABLE):
                _add(grants, service.right, inherited)
    return grants
