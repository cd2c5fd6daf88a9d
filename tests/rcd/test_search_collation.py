"""Prefix search stays a byte-order range on PostgreSQL whatever the database's collation: a
collation that ignores spaces (ICU alternate=shifted, like glibc locales) must not widen
"CABINET D" to "CABINETDAVID"."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import create_engine, make_url, text

from registry.kernel.database import open_engine, upgrade
from registry.rcd.records import AdministrativeState, CompanyRecord
from registry.rcd.store import RcdStore
from tests.databases import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")


def _company(siren: str, name: str) -> CompanyRecord:
    return CompanyRecord(
        siren, name, "69.20Z", "5710", AdministrativeState.ACTIVE, date(2001, 1, 1), None, "", False
    )


def test_prefix_search_ignores_the_database_collation() -> None:
    server = make_url(PG_URL)
    name = f"interops_test_icu_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(
                f'CREATE DATABASE "{name}" TEMPLATE template0 '
                "LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR-u-ka-shifted' LOCALE 'C.UTF-8'"
            )
        )
    try:
        engine = open_engine(server.set(database=name).render_as_string(hide_password=False))
        upgrade(engine)
        store = RcdStore(engine)
        store.upsert(
            [_company("732829320", "CABINETDAVID"), _company("552032534", "CABINET DUPONT")]
        )
        found = store.search_companies("CABINET D", None, 10)
        assert [record.name for _, record in found] == ["CABINET DUPONT"]
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
