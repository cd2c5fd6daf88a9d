"""Which establishments a company manages now, the one answer that portfolios, habilitations,
token chains and CheckAccess all read (so that a chain never carries a right CheckAccess would
refuse):

- those to which a SIRET of the company has a live declared link (it declares them in DSN,
  registry/relations/store.py says how long a link lasts);
- those whose company's administrator gave it an explicit mandate (`firm_mandates`), until the
  mandate ends.

Its own establishments are the company's own business: an administrator may put them in a
portfolio, but a service that needs a DSN link still needs one.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select

from registry.habilitation.schema import firm_mandates
from registry.relations.schema import declared_links
from registry.relations.store import declared_by_company


def mandated_to(connection: Connection, siren: str, limit: int | None = None) -> set[str]:
    """The establishments whose company gave the company `siren` a live mandate."""
    return set(
        connection.execute(
            select(firm_mandates.c.client_siret)
            .where(firm_mandates.c.firm_siren == siren, firm_mandates.c.ended_at == 0)
            .limit(limit)
        ).scalars()
    )


def managed_by(
    connection: Connection, siren: str, since: str, limit: int | None = None
) -> set[str]:
    """The establishments the company manages now (at most about 2 x `limit` read)."""
    return declared_by_company(connection, siren, since, limit) | mandated_to(
        connection, siren, limit
    )


def may_hold(connection: Connection, siren: str, sirets: Collection[str], since: str) -> list[str]:
    """Those of `sirets` the company may put in a portfolio: its own and those it manages."""
    foreign = [s for s in sirets if s[:9] != siren]
    if not foreign:
        return list(sirets)
    managed = managed_by(connection, siren, since)
    return [s for s in sirets if s[:9] == siren or s in managed]


def taken_over(
    connection: Connection, siren: str, sirets: Collection[str], period: str
) -> dict[str, str]:
    """Of the establishments a deposit of the company `siren` for the YYYYMM `period` declares,
    those another firm took over from it at or before that period, with the period it did: the
    company's links to them all ended there and no live mandate lets it declare them again. A
    correction of a period before the takeover is not refused; nor is a firm's first DSN for an
    establishment (it is the one taking over)."""
    rows = connection.execute(
        select(declared_links.c.declared_siret, declared_links.c.ended_period).where(
            declared_links.c.declarant_siret.startswith(siren),
            declared_links.c.declared_siret.in_(list(sirets)),
        )
    ).all()
    ended: dict[str, str] = {}
    lasting: set[str] = set()
    for declared, end in rows:
        if not end or period < end:
            lasting.add(declared)
        else:
            ended[declared] = min(end, ended.get(declared, end))
    refused = {siret: end for siret, end in ended.items() if siret not in lasting}
    if refused:
        allowed = mandated_to(connection, siren) & refused.keys()
        refused = {s: e for s, e in refused.items() if s not in allowed}
    return refused


def mandated_among(connection: Connection, siren: str, sirets: Collection[str]) -> set[str]:
    """Those of `sirets` whose company gave the company `siren` a live mandate."""
    wanted = list(dict.fromkeys(sirets))
    if not wanted:
        return set()
    return set(
        connection.execute(
            select(firm_mandates.c.client_siret).where(
                firm_mandates.c.firm_siren == siren,
                firm_mandates.c.client_siret.in_(wanted),
                firm_mandates.c.ended_at == 0,
            )
        ).scalars()
    )


def for_bank_data(siren: str, managed: set[str], mandated: set[str]) -> set[str]:
    """What the company manages for a MANDATED service (declarative_services.py): its own
    establishments it links to, and other companies' only by their explicit mandate."""
    return {s for s in managed if s[:9] == siren} | (mandated & managed)


def managed_among(
    connection: Connection, siren: str, sirets: Collection[str], since: str
) -> set[str]:
    """Those of `sirets` the company manages now (as `managed_by`, for a few establishments)."""
    wanted = list(dict.fromkeys(sirets))
    if not wanted:
        return set()
    linked = connection.execute(
        select(declared_links.c.declared_siret).where(
            declared_links.c.declarant_siret.startswith(siren),
            declared_links.c.declared_siret.in_(wanted),
            declared_links.c.ended_period == "",
            declared_links.c.last_period >= since,
        )
    ).scalars()
    mandated = connection.execute(
        select(firm_mandates.c.client_siret).where(
            firm_mandates.c.firm_siren == siren,
            firm_mandates.c.client_siret.in_(wanted),
            firm_mandates.c.ended_at == 0,
        )
    ).scalars()
    return {*linked, *mandated}
