"""Demo data for a newcomer's first run: a small synthetic RCD, loaded once into an empty
registry through the same import path as a real Sirene stock file."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from sqlalchemy import Engine, func, select

from registry.kernel.database import reading
from registry.rcd.identifiers import LA_POSTE_SIREN
from registry.rcd.schema import companies
from registry.rcd.sirene_import import import_stock
from registry.rcd.sirene_synth import siren_at, siret_of, write_stock

DEMO_ESTABLISHMENTS = 2000
DEMO_SEED = 2026
# Identifiers the README quotes: the accounting firm, La Poste's head office.
FIRM_SIREN = siren_at(0)
FIRM_SIRET = siret_of(FIRM_SIREN, 1)
LA_POSTE_SIRET = siret_of(LA_POSTE_SIREN, 1)

log = logging.getLogger("interops.demo")


def load_demo_data(engine: Engine) -> bool:
    """Loads the demo registry unless the registry holds companies already; True if loaded."""
    with reading(engine) as connection:
        if connection.execute(select(func.count()).select_from(companies)).scalar_one():
            return False
    with tempfile.TemporaryDirectory() as directory:
        files = write_stock(Path(directory), DEMO_ESTABLISHMENTS, DEMO_SEED)
        import_stock(engine, files.companies)
        import_stock(engine, files.establishments)
    log.info(
        "demo data loaded: %d establishments; try SIRET %s (the firm) or %s (La Poste)",
        DEMO_ESTABLISHMENTS, FIRM_SIRET, LA_POSTE_SIRET,
    )  # fmt: skip
    return True
