"""Tables of the trust directory and of identity: organisms and sites with their keys and
rights, declarants, revocations (blocks and subjects' cutoffs) and spent single-use tokens.

Declarants' names are not stored: the portal triplet (SIRET, last name, first name) is kept only
as a digest, enough to find the account at sign-in.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from registry.kernel.metadata import metadata

organisms = Table(
    "organisms",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # OrganismKind without its prefix: "URSSAF", "PORTAL", ...
    Column("kind", String(32), nullable=False),
    # JSON list of endpoint URLs.
    Column("endpoints", Text, nullable=False),
    # Unix milliseconds of the last change; the directory's serial is the greatest.
    Column("changed_at", BigInteger, nullable=False),
)

organism_keys = Table(
    "organism_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("organism", String(64), ForeignKey("organisms.code"), nullable=False, index=True),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("valid_from", BigInteger, nullable=False),
    # 0 while in use; the retirement moment (Unix seconds) afterwards.
    Column("valid_until", BigInteger, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
    # SIGNING (Ed25519) or ENCRYPTION (X25519, what shares are sealed to; migration 0012).
    Column("kind", String(16), nullable=False, server_default="SIGNING"),
)

# What a subject may be granted. siren NULL: the whole perimeter.
organism_grants = Table(
    "organism_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("organism", String(64), ForeignKey("organisms.code"), nullable=False, index=True),
    Column("right_name", String(64), nullable=False),
    Column("siren", String(9), nullable=True),
    UniqueConstraint("organism", "right_name", "siren", name="uq_organism_grants"),
)

declarants = Table(
    "declarants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # SHA-256 of the normalized triplet; see registry/trust/declarant_store.py.
    Column("identity_digest", LargeBinary(32), nullable=False, unique=True),
    Column("siret", String(14), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
    # ADMIN or DECLARANT (migration 0008).
    Column("role", String(16), nullable=False, server_default="DECLARANT"),
    # ACTIVE, CANDIDATE (an administrator awaiting validation) or STRUCK_OFF.
    Column("status", String(16), nullable=False, server_default="ACTIVE"),
    # SHA-256 of a candidate administrator's activation key.
    Column("activation_hash", LargeBinary(32), nullable=True),
)

declarant_grants = Table(
    "declarant_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("declarant_id", Integer, ForeignKey("declarants.id"), nullable=False, index=True),
    Column("right_name", String(64), nullable=False),
    Column("siren", String(9), nullable=True),
    UniqueConstraint("declarant_id", "right_name", "siren", name="uq_declarant_grants"),
)

# A revoked block (revocation_id) or a subject's cutoff (subject, before: every block of the
# subject that starts before it is revoked), kept until `until` (Unix seconds), after which no
# chain it revokes can still be valid (migration 0011).
revocations = Table(
    "revocations",
    metadata,
    # Read in this order by every replica to follow new revocations; the greatest is the
    # published list's sequence.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("revocation_id", LargeBinary(32), nullable=True, unique=True),
    Column("revoked_at", BigInteger, nullable=False),
    Column("subject", String(128), nullable=True, index=True),
    Column("before", BigInteger, nullable=True),
    Column("until", BigInteger, nullable=False, server_default="0", index=True),
)

spent_tokens = Table(
    "spent_tokens",
    metadata,
    # SHA-256 of the single-use key (a navigation token id, a proof nonce).
    Column("digest", LargeBinary(32), primary_key=True),
    Column("until", BigInteger, nullable=False, index=True),
)
