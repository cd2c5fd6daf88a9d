"""Whether a declarant may use a declarative service for establishments (and employees), by the
service's case (registry.habilitation.declarative_services), from what its company manages now
(registry.habilitation.managed: live DSN links and mandates) and its habilitations. The same rule
(`refusal`) decides CheckAccess and what a declarant's token chain carries
(registry.habilitation.declarant_rights), so that a chain never holds a right CheckAccess
refuses.

Refusals name the establishment, or the employee by its position in the request: never a NIR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from registry.habilitation.declarative_services import (
    MANDATED,
    PAYROLL,
    PAYROLL_OPERABLE,
    SERVICES,
    SPECIFIC,
)
from registry.habilitation.managed import for_bank_data, managed_among, mandated_among
from registry.habilitation.schema import habilitations
from registry.kernel.database import reading
from registry.relations.store import RelationsStore
from registry.trust.declarant_store import AccountStatus, DeclarantStore
from registry.trust.schema import declarants

NOT_DECLARED = "NOT_DECLARED_BY_YOUR_COMPANY"
NOT_HABILITATED = "NOT_HABILITATED"
NOT_EMPLOYED = "EMPLOYEE_NOT_IN_ESTABLISHMENT"


@dataclass
class Decision:
    """Allowed when nothing was refused; each refusal is (what, reason)."""

    refusals: list[tuple[str, str]] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        """True when every establishment and employee passed."""
        return not self.refusals


def refusal(case: str, siret: str, managed: set[str], habilitated: set[str]) -> str | None:
    """Why a declarant may not use a service of `case` for `siret` (None: it may), given what its
    company manages now (for a MANDATED service: `for_bank_data`'s answer) and the
    establishments it is habilitated for the service on."""
    if case == PAYROLL:
        return None if siret in managed else NOT_DECLARED
    if case == PAYROLL_OPERABLE:
        return None if siret in managed or siret in habilitated else NOT_HABILITATED
    if siret not in habilitated:
        return NOT_HABILITATED
    return None if siret in managed else NOT_DECLARED


def decide(
    store: RelationsStore,
    declarant_id: int,
    service: str,
    *,
    sirets: Sequence[str],
    employees: Sequence[tuple[str, str]] = (),
    date: str = "",
) -> Decision:
    """The decision for `sirets` and `employees` ((SIRET, NIR) pairs, checked on `date`,
    YYYYMMDD, for SPECIFIC services). Explicit grants of the service's right (given by the
    backbone's operators) allow too, as the declarant's chain carries them."""
    known = SERVICES.get(service)
    decision = Decision()
    if known is None:
        decision.refusals.append((service, "UNKNOWN_SERVICE"))
        return decision
    with reading(store.engine) as connection:
        account = connection.execute(
            select(declarants.c.siret, declarants.c.status).where(declarants.c.id == declarant_id)
        ).first()
        if account is None or account.status != AccountStatus.ACTIVE:
            decision.refusals.append((f"declarant:{declarant_id}", "ACCOUNT_INACTIVE"))
            return decision
        siren = str(account.siret)[:9]
        held = set(connection.execute(
            select(habilitations.c.siret).where(
                habilitations.c.declarant_id == declarant_id, habilitations.c.service == service
            )
        ).scalars())  # fmt: skip
        managed = managed_among(connection, siren, {*sirets, *held}, store.since())
        if known.case == MANDATED:
            managed = for_bank_data(siren, managed, mandated_among(connection, siren, managed))
    habilitated = {s for s in held if s[:9] == siren or s in managed}
    explicit = DeclarantStore(store.engine).grants_of(declarant_id).get(known.right)
    for siret in dict.fromkeys(sirets):
        reason = refusal(known.case, siret, managed, habilitated)
        if reason is not None and not (explicit is not None and explicit.includes_siret(siret)):
            decision.refusals.append((siret, reason))
    if known.case == SPECIFIC:
        for index, (siret, nir) in enumerate(employees):
            if siret not in sirets or store.employed(siret, nir, date) is None:
                decision.refusals.append((f"employee #{index + 1}", NOT_EMPLOYED))
    return decision
