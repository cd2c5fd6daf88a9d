"""Whether a declarant may use a declarative service for establishments (and employees), by the
service's case (registry.habilitation.declarative_services): DSN links, habilitations, employments.

Refusals name the establishment, or the employee by its position in the request: never a NIR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from registry.habilitation.declarative_services import PAYROLL, PAYROLL_OPERABLE, SERVICES, SPECIFIC
from registry.habilitation.store import HabilitationStore
from registry.relations.store import RelationsStore
from registry.trust.declarant_store import AccountStatus

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


def decide(
    habilitations: HabilitationStore,
    relations: RelationsStore,
    declarant_id: int,
    service: str,
    *,
    sirets: Sequence[str],
    employees: Sequence[tuple[str, str]] = (),
    date: str = "",
) -> Decision:
    """The decision for `sirets` and `employees` ((SIRET, NIR) pairs, checked on `date`,
    YYYYMMDD, for SPECIFIC services)."""
    known = SERVICES.get(service)
    account = habilitations.account(declarant_id)
    decision = Decision()
    if known is None:
        decision.refusals.append((service, "UNKNOWN_SERVICE"))
        return decision
    if account is None or account.status != AccountStatus.ACTIVE:
        decision.refusals.append((f"declarant:{declarant_id}", "ACCOUNT_INACTIVE"))
        return decision
    declared = relations.declared_by_company(account.siren)
    habilitated = {
        h.siret for h in habilitations.habilitations_of(declarant_id) if h.service == service
    }
    for siret in dict.fromkeys(sirets):
        if known.case == PAYROLL and siret not in declared:
            decision.refusals.append((siret, NOT_DECLARED))
        elif known.case == PAYROLL_OPERABLE and siret not in declared | habilitated:
            decision.refusals.append((siret, NOT_HABILITATED))
        elif known.case == SPECIFIC:
            if siret not in habilitated:
                decision.refusals.append((siret, NOT_HABILITATED))
            elif siret not in declared:
                decision.refusals.append((siret, NOT_DECLARED))
    if known.case == SPECIFIC:
        for index, (siret, nir) in enumerate(employees):
            if siret not in sirets or relations.employed(siret, nir, date) is None:
                decision.refusals.append((f"employee #{index + 1}", NOT_EMPLOYED))
    return decision
