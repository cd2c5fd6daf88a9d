"""Companies and establishments put straight in a test database's RCD, with addresses of every
shape a letter meets: in France, abroad, without one, ceased."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from sqlalchemy import Engine

from registry.rcd.records import AdministrativeState, CompanyRecord, EstablishmentRecord
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.rcd.store import RcdStore

_NEXT = itertools.count(secrets.randbelow(100_000) * 100)


def new_siret() -> str:
    """A valid SIRET no other test of the run uses."""
    return siret_of(siren_at(next(_NEXT)), 1)


def put_establishment(engine: Engine, siret: str, company: str = "", **fields: Any) -> None:
    """Puts an active establishment at 12 bis avenue des Lilas, 69003 Lyon (unless `fields`
    say otherwise) in the RCD, with its company when `company` names it."""
    address: dict[str, Any] = {
        "name": "", "naf_code": "1071C", "street_number": "12", "street_number_suffix": "B",
        "street_type": "AV", "street_name": "DES LILAS", "complement": "", "postal_code": "69003",
        "city": "LYON", "city_code": "69383", "country": "", "head_office": True,
        "state": AdministrativeState.ACTIVE, "creation_date": None, "state_since": None,
        "diffusion_restricted": False,
    }  # fmt: skip
    address.update(fields)
    registry = RcdStore(engine)
    registry.upsert([EstablishmentRecord(siret, **address)])
    if company:
        active = AdministrativeState.ACTIVE
        registry.upsert([CompanyRecord(siret[:9], company, "1071C", "5710", active, None, None,
                                       siret[9:], False)])  # fmt: skip
