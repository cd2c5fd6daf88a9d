"""The whole schema on one MetaData, for Alembic and the migration test: importing this module
registers every domain's tables, and declares the kernel's own (sealed files in the database,
registry/kernel/blob_store.py)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, LargeBinary, String, Table

from registry.audit import schema as audit_schema
from registry.dsn import schema as dsn_schema
from registry.habilitation import schema as habilitation_schema
from registry.kernel.metadata import metadata
from registry.letters import schema as letters_schema
from registry.mandate import schema as mandate_schema
from registry.nomenclature import schema as nomenclature_schema
from registry.notify import schema as notify_schema
from registry.operation import schema as operation_schema
from registry.rcd import schema as rcd_schema
from registry.relations import schema as relations_schema
from registry.trace import schema as trace_schema
from registry.trust import schema as trust_schema

# Migration 0021. Sealed files (deposits, organisms' shares) when the database is PostgreSQL:
# each blob's bytes in rows of at most 1 MiB, numbered from 0, all of one commit (`generation`)
# and the `last` flagged, so a reader knows the blob's end and never mixes two commits.
sealed_file_chunks = Table(
    "sealed_file_chunks",
    metadata,
    # "deposits/ID.dsn.sealed", "shares/DELIVERY.dsn.sealed".
    Column("name", String(255), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("generation", String(32), nullable=False),
    Column("last", Boolean, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

__all__ = [
    "audit_schema",
    "dsn_schema",
    "habilitation_schema",
    "letters_schema",
    "mandate_schema",
    "metadata",
    "nomenclature_schema",
    "notify_schema",
    "operation_schema",
    "rcd_schema",
    "relations_schema",
    "sealed_file_chunks",
    "trace_schema",
    "trust_schema",
]
