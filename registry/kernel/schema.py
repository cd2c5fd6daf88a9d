"""The whole schema on one MetaData, for Alembic and the migration test: importing this module
registers every domain's tables."""

from __future__ import annotations

from registry.audit import schema as audit_schema
from registry.dsn import schema as dsn_schema
from registry.habilitation import schema as habilitation_schema
from registry.kernel.metadata import metadata
from registry.letters import schema as letters_schema
from registry.nomenclature import schema as nomenclature_schema
from registry.notify import schema as notify_schema
from registry.operation import schema as operation_schema
from registry.rcd import schema as rcd_schema
from registry.relations import schema as relations_schema
from registry.trace import schema as trace_schema
from registry.trust import schema as trust_schema

__all__ = [
    "audit_schema",
    "dsn_schema",
    "habilitation_schema",
    "letters_schema",
    "metadata",
    "nomenclature_schema",
    "notify_schema",
    "operation_schema",
    "rcd_schema",
    "relations_schema",
    "trace_schema",
    "trust_schema",
]
