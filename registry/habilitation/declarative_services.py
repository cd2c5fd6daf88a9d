"""The declarative services habilitations are about, each with the right its users' tokens
carry and which of the three cases of access it follows:

- PAYROLL: tied to the payroll; inherits the DSN rights (implicit mandate): a declarant may use
  it for exactly the establishments its company declared in DSN, no habilitation needed.
- PAYROLL_OPERABLE: related to the payroll but operable by others: inherits the DSN rights,
  except for establishments its company does not declare, which need a habilitation.
- SPECIFIC: needs a habilitation for each establishment; the backbone also checks that the
  requesting company declares those establishments in DSN and that the employees named work
  there.
- MANDATED: as SPECIFIC, but another company's establishment needs an explicit mandate from
  that company (registry/habilitation/managed.py, `firm_mandates`), a DSN link is not enough:
  the service shows bank data (SEPA mandates' IBANs), which declaring payroll does not entitle
  a firm to.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.kernel import rights

PAYROLL, PAYROLL_OPERABLE, SPECIFIC = "PAYROLL", "PAYROLL_OPERABLE", "SPECIFIC"
MANDATED = "MANDATED"


@dataclass(frozen=True)
class DeclarativeService:
    """A service: its code, the right its users hold, its case of access."""

    code: str
    right: str
    case: str
    label: str


SERVICES = {
    service.code: service
    for service in (
        DeclarativeService("DSN", rights.DSN_DEPOSIT, PAYROLL, "Déclaration sociale nominative"),
        DeclarativeService("PASRAU", rights.SERVICE_PASRAU, PAYROLL, "Revenus autres (PASRAU)"),
        DeclarativeService("BONUS-MALUS", rights.SERVICE_BONUS_MALUS, PAYROLL_OPERABLE,
                           "Simulateur bonus-malus assurance chômage"),
        DeclarativeService("ATMP", rights.SERVICE_ATMP, SPECIFIC, "Compte AT/MP"),
        DeclarativeService("DUCS", rights.SERVICE_DUCS, SPECIFIC, "Paiement des cotisations"),
        DeclarativeService("MANDATS-SEPA", rights.MANDATE_MANAGE, MANDATED,
                           "Mandats de prélèvement SEPA"),
    )
}  # fmt: skip
