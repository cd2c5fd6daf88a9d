"""Tables of the RCD (companies, establishments), and its change feed.

Every company and establishment row carries `position`, its place in the change feed: each write
that changes a row gives it a new position taken from the single `registry_feed` counter, inside
the same transaction, so the feed is ordered the way changes were committed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
)

from registry.kernel.metadata import metadata

# Byte order for the search key on PostgreSQL: a prefix search is a range on this column, which
# a linguistic collation (en_US and the like ignore spaces at first level) would break.
SEARCH_KEY = String(300).with_variant(String(300, collation="C"), "postgresql")

companies = Table(
    "companies",
    metadata,
    Column("siren", String(9), primary_key=True),
    Column("name", String(300), nullable=False),
    # Upper-case, accent-free form of the name for prefix search.
    Column("name_key", SEARCH_KEY, nullable=False),
    Column("naf_code", String(8), nullable=False),
    Column("legal_category", String(4), nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("creation_date", Date),
    Column("state_since", Date),
    Column("head_office_nic", String(5), nullable=False),
    Column("diffusion_restricted", Boolean, nullable=False),
    Column("row_hash", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_companies_name_key", "name_key", "siren"),
    Index("ix_companies_position", "position"),
)

# Establishments of a company are found by a range of the primary key (SIREN + NIC), so no
# separate index on siren is needed.
establishments = Table(
    "establishments",
    metadata,
    Column("siret", String(14), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("naf_code", String(8), nullable=False),
    Column("street_number", String(10), nullable=False),
    Column("street_number_suffix", String(10), nullable=False),
    Column("street_type", String(10), nullable=False),
    Column("street_name", String(200), nullable=False),
    Column("complement", String(200), nullable=False),
    Column("postal_code", String(10), nullable=False),
    Column("city", String(100), nullable=False),
    Column("city_code", String(10), nullable=False),
    Column("country", String(100), nullable=False),
    Column("head_office", Boolean, nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("creation_date", Date),
    Column("state_since", Date),
    Column("diffusion_restricted", Boolean, nullable=False),
    Column("row_hash", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_establishments_position", "position"),
)

registry_feed = Table(
    "registry_feed",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_position", BigInteger, nullable=False),
)
