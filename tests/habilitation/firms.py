"""A firm set up out of band for tests that are not about registration: its first administrator
active at once (HabilitationStore.register_company, the operators' path), and a mandate from each
client establishment's company, so that the firm may hold them in its portfolios."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from registry.habilitation.store import HabilitationRefused, HabilitationStore

CLIENT_PASSWORD = "client password"


def firm_with_clients(
    engine: Engine, siret: str, names: tuple[str, str], password: str, clients: Sequence[str] = ()
) -> int:
    """The firm's administrator (its id), mandated by the companies of `clients` (SIRETs)."""
    store = HabilitationStore(engine)
    admin = store.register_company(siret, names, password)
    for client in clients:
        try:
            client_admin = store.register_company(client, ("Client", "Admin"), CLIENT_PASSWORD)
        except HabilitationRefused:  # the company has its administrator already
            client_admin = store.accounts_of(client[:9])[0].id
        store.grant_mandate(client_admin, client, siret[:9])
    return admin
