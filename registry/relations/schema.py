"""Tables of the relations the DSNs reveal: who declared which establishment (declared links)
and who works where (employments), the NIR sealed and found by its keyed hash
(registry/kernel/nir_keyring.py)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table

from registry.kernel.metadata import metadata

# One row per (declarant SIRET, declared SIRET): the periods it covers and its last deposit.
declared_links = Table(
    "declared_links",
    metadata,
    Column("declarant_siret", String(14), primary_key=True),
    Column("declared_siret", String(14), primary_key=True),
    # YYYYMM, from the declarations' month (S20.G00.05.005).
    Column("first_period", String(6), nullable=False),
    Column("last_period", String(6), nullable=False),
    # The deposit that last declared it ("" when loaded from history).
    Column("last_deposit", String(32), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The first period another firm declared the establishment for, after this link's last
    # (migration 0013): the link ended there; "" while no successor declared it.
    Column("ended_period", String(6), nullable=False, server_default=""),
    Column("ended_by", String(14), nullable=False, server_default=""),
    Index("ix_declared_links_declared", "declared_siret", "declarant_siret"),
)

# One row per contract: an employee (by NIR) in an establishment from a start date.
employments = Table(
    "employments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("siret", String(14), nullable=False),
    # HMAC-SHA256 of the NIR under `nir_key`; the NIR itself only sealed.
    Column("nir_hash", LargeBinary(32), nullable=False),
    Column("nir_key", String(16), nullable=False),
    Column("nir_sealed", LargeBinary(64), nullable=False),
    # YYYYMMDD; contract_end "" while the contract runs.
    Column("contract_start", String(8), nullable=False),
    Column("contract_end", String(8), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_employments_nir", "nir_hash", "siret"),
    Index("ix_employments_siret", "siret", "id"),
)

# Who declared each employment (migration 0013): a firm reads only the employments it declared.
employment_declarants = Table(
    "employment_declarants",
    metadata,
    Column("employment_id", Integer, primary_key=True),
    Column("declarant_siret", String(14), primary_key=True),
    # YYYYMM: the first and last periods this declarant declared the contract for.
    Column("first_period", String(6), nullable=False),
    Column("last_period", String(6), nullable=False),
    Index("ix_employment_declarants_declarant", "declarant_siret", "employment_id"),
)
