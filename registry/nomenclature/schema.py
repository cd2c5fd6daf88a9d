"""Tables of nomenclatures: each published version of a reference table and its codes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from registry.kernel.metadata import metadata

nomenclature_versions = Table(
    "nomenclature_versions",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("published_at", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
)

nomenclature_codes = Table(
    "nomenclature_codes",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("label", String(500), nullable=False),
)
