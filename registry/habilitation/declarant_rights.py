"""What a declarant's root token carries, from everything that gives it rights:

- its explicit grants (declarant_grants, given by the backbone's operators);
- relations.read over its own company, through which the implicit mandate reaches what its
  company declared while its links last (server/relations/service.py);
- habilitation.check over its own company (a service holding its chain asks CheckAccess), and
  for an active administrator habilitation.manage and notify.read over it;
- for each declarative service, its right over exactly the establishments CheckAccess would
  allow now (registry.habilitation.access_decision.refusal, from what the company manages:
  live DSN links and mandates, and the declarant's habilitations), when the company manages at
  most MAX_TOKEN_SIRETS establishments (a token travels in call metadata). Above that the token
  carries only the habilitated ones, and services ask CheckAccess for the rest.

An account that is not active (a candidate, struck off, or not yet proven) gets nothing.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from registry.habilitation.access_decision import refusal
from registry.habilitation.declarative_services import MANDATED, SERVICES
from registry.habilitation.managed import (
    for_bank_data,
    managed_among,
    managed_by,
    mandated_among,
)
from registry.habilitation.schema import habilitations
from registry.habilitation.store import Role
from registry.kernel.database import reading
from registry.kernel.rights import (
    HABILITATION_CHECK,
    HABILITATION_MANAGE,
    NOTIFY_READ,
    RELATIONS_READ,
)
from registry.relations.store import IDLE_MONTHS, live_since
from registry.trust.declarant_store import AccountStatus, DeclarantStore
from registry.trust.schema import declarants
from token_suite.grants import Grants, Scope

MAX_TOKEN_SIRETS = 200


def _add(grants: dict[str, Scope], right: str, scope: Scope) -> None:
    held = grants.get(right)
    grants[right] = scope if held is None else held.union(scope)


def declarant_rights(engine: Engine, declarant_id: int, idle_months: int = IDLE_MONTHS) -> Grants:
    """Every right the declarant may be granted now, with its perimeter."""
    since = live_since(idle_months)
    with reading(engine) as connection:
        account = connection.execute(
            select(declarants.c.siret, declarants.c.role, declarants.c.status).where(
                declarants.c.id == declarant_id
            )
        ).first()
        if account is None or account.status != AccountStatus.ACTIVE:
            return {}
        siren = str(account.siret)[:9]
        held = connection.execute(
            select(habilitations.c.siret, habilitations.c.service).where(
                habilitations.c.declarant_id == declarant_id
            )
        ).all()
        managed = managed_by(connection, siren, since, MAX_TOKEN_SIRETS + 1)
        complete = len(managed) <= MAX_TOKEN_SIRETS
        if not complete:
            managed = managed_among(connection, siren, {siret for siret, _ in held}, since)
        bank_managed = for_bank_data(siren, managed, mandated_among(connection, siren, managed))
    grants = dict(DeclarantStore(engine).grants_of(declarant_id))
    company = Scope(sirens=frozenset({siren}))
    _add(grants, RELATIONS_READ, company)
    _add(grants, HABILITATION_CHECK, company)
    if account.role == Role.ADMINISTRATOR:
        _add(grants, HABILITATION_MANAGE, company)
        _add(grants, NOTIFY_READ, company)
    for code, service in SERVICES.items():
        reach = bank_managed if service.case == MANDATED else managed
        habilitated = {s for s, v in held if v == code and (s[:9] == siren or s in reach)}
        candidates = (reach if complete else set()) | habilitated
        allowed = {s for s in candidates if refusal(service.case, s, reach, habilitated) is None}
        if allowed:
            _add(grants, service.right, Scope(sirets=frozenset(allowed)))
    return grants
