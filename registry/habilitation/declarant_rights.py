"""What a declarant's root token carries, from everything that gives it rights:

- its explicit grants (declarant_grants);
- relations.read over its own company, through which the implicit mandate reaches what its
  company declared (server/relations/service.py);
- habilitation.check over its own company (a service holding its chain asks CheckAccess), and
  for an active administrator habilitation.manage and notify.read over it (the company's
  official letters, activation keys of candidate administrators included, go to its
  administrators, not to every declarant);
- each habilitation: the service's right over that establishment;
- the DSN links: for each service that inherits the DSN rights (PAYROLL, PAYROLL_OPERABLE),
  its right over every establishment a SIRET of the company declared, when they are at most
  MAX_TOKEN_SIRETS (a token travels in call metadata). Above that the token carries none of
  them and services ask CheckAccess, which decides from the links themselves.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from registry.habilitation.declarative_services import PAYROLL, PAYROLL_OPERABLE, SERVICES
from registry.habilitation.schema import habilitations
from registry.habilitation.store import Role
from registry.kernel.rights import (
    HABILITATION_CHECK,
    HABILITATION_MANAGE,
    NOTIFY_READ,
    RELATIONS_READ,
)
from registry.relations.store import declared_by_company
from registry.trust.declarant_store import AccountStatus, DeclarantStore
from registry.trust.schema import declarants
from token_suite.grants import Grants, Scope

MAX_TOKEN_SIRETS = 200


def _add(grants: dict[str, Scope], right: str, scope: Scope) -> None:
    held = grants.get(right)
    grants[right] = scope if held is None else held.union(scope)


def declarant_rights(engine: Engine, declarant_id: int) -> Grants:
    """Every right the declarant may be granted, with its perimeter."""
    grants = dict(DeclarantStore(engine).grants_of(declarant_id))
    with engine.connect() as connection:
        account = connection.execute(
            select(declarants.c.siret, declarants.c.role, declarants.c.status).where(
                declarants.c.id == declarant_id
            )
        ).first()
        if account is None:
            return grants
        siren = str(account.siret)[:9]
        held = connection.execute(
            select(habilitations.c.siret, habilitations.c.service).where(
                habilitations.c.declarant_id == declarant_id
            )
        ).all()
        declared = declared_by_company(connection, siren, MAX_TOKEN_SIRETS + 1)
    company = Scope(sirens=frozenset({siren}))
    _add(grants, RELATIONS_READ, company)
    _add(grants, HABILITATION_CHECK, company)
    if account.role == Role.ADMINISTRATOR and account.status == AccountStatus.ACTIVE:
        _add(grants, HABILITATION_MANAGE, company)
        _add(grants, NOTIFY_READ, company)
    for habilitated, service in held:
        _add(grants, SERVICES[service].right, Scope(sirets=frozenset({habilitated})))
    if declared and len(declared) <= MAX_TOKEN_SIRETS:
        inherited = Scope(sirets=frozenset(declared))
        for service in SERVICES.values():
            if service.case in (PAYROLL, PAYROLL_OPERABLE):
                _add(grants, service.right, inherited)
    return grants
