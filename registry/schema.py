"""The whole schema on one MetaData, for Alembic and the migration test: importing this module
registers every table module's tables."""

from __future__ import annotations

from registry import (
    audit_schema,
    dsn_schema,
    habilitation_schema,
    notify_schema,
    relations_schema,
    trust_schema,
)
from registry.rcd_schema import metadata

__all__ = [
    "audit_schema",
    "dsn_schema",
    "habilitation_schema",
    "metadata",
    "notify_schema",
    "relations_schema",
    "trust_schema",
]
