"""Establishments put straight in a test database's RCD, for rules that need them there."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine

from registry.rcd.records import EstablishmentRecord
from registry.rcd.store import RcdStore
from registry.relations.store import live_since


def in_registry(engine: Engine, sirets: Iterable[str]) -> None:
    """Puts active establishments with these SIRETs in the registry."""
    RcdStore(engine).upsert([
        EstablishmentRecord(siret, "Etablissement", "6920Z", "1", "", "RUE", "DE LA PAIX", "",
                            "75002", "PARIS", "75102", "", False, 1, None, None, False)
        for siret in sirets
    ])  # fmt: skip


def recent_period(months_ago: int) -> str:
    """The YYYYMM period `months_ago` months before this one (links live by the calendar)."""
    return live_since(months_ago)
