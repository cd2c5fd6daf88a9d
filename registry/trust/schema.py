"""Tables of the trust directory and of identity: organisms and sites with their keys and
rights, declarants, revocations (blocks and subjects' cutoffs), spent single-use tokens,
sign-in attempts and the web adapter's sessions.

Declarants' names are not stored: the portal triplet (SIRET, last name, first name) is kept only
as a digest, enough to find the account at sign-in.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
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
    # ADMIN or DECLARANT (migration 0008).
    Column("role", String(16), nullable=False, server_default="DECLARANT"),
    # ACTIVE, CANDIDATE (an administrator awaiting validation) or STRUCK_OFF.
    Column("status", String(16), nullable=False, server_default="ACTIVE"),
    # SHA-256 of a candidate administrator's activation key.
    Column("activation_hash", LargeBinary(32), nullable=True),
    # Migration 0013. The account's e-mail, sealed with the node's key (bound to the account).
    Column("email_sealed", LargeBinary, nullable=True),
    # Migration 0018. Last and first names as typed at creation, sealed with the node's key
    # (bound to the account), for the company's administrators; NULL for older accounts.
    Column("names_sealed", LargeBinary, nullable=True),
    # Whether the account confirmed its e-mail with the code sent there (SHA-256 of the code).
    Column("email_verified", Boolean, nullable=False, server_default=true()),
    Column("email_code_hash", LargeBinary(32), nullable=True),
    # Whether its registration is proven: the key of a postal letter sent to the establishment's
    # address in the RCD, or an active administrator's validation. An account acts only when
    # proven and its e-mail confirmed.
    Column("proven", Boolean, nullable=False, server_default=true()),
    # A lost-password path: the question and the scrypt hash of the normalized answer.
    Column("secret_question", String(200), nullable=False, server_default=""),
    Column("secret_answer_hash", String(200), nullable=False, server_default=""),
    # A pending password reset: SHA-256 of its one-time code and when it expires (s).
    Column("reset_hash", LargeBinary(32), nullable=True),
    Column("reset_expires", BigInteger, nullable=False, server_default="0"),
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

# Sign-in attempts per source, per identity from a source and per identity, shared by every
# door and every node (migrations 0014, 0016; registry/trust/sign_in_limits.py).
sign_in_limits = Table(
    "sign_in_limits",
    metadata,
    # SHA-256 of the key's kind and of a source, an IPv6 /48, an identity digest, or an identity
    # digest and a source: no address, no name.
    Column("digest", LargeBinary(32), primary_key=True),
    # An identity's attempts from a source since its last success (0: told to wait before its
    # first); a window's attempts (a source's, a /48's, an identity's failures from all sources).
    Column("attempts", Integer, nullable=False),
    # The wait (s) an identity's last attempt from the source imposed; 0 for a window.
    Column("delay", Integer, nullable=False),
    # Unix ms: an identity's next attempt from the source is not checked before; a window ends.
    Column("next_at", BigInteger, nullable=False),
    # Unix seconds of the last attempt counted; a day later the row is pruned.
    Column("seen_at", BigInteger, nullable=False, index=True),
    # For an identity from a source: the digest of the identity's own row, so that a success or
    # an unlock finds the rows of every source; NULL for a window.
    Column("identity", LargeBinary(32), nullable=True, index=True),
)

spent_tokens = Table(
    "spent_tokens",
    metadata,
    # SHA-256 of the single-use key (a navigation token id, a proof nonce).
    Column("digest", LargeBinary(32), primary_key=True),
    Column("until", BigInteger, nullable=False, index=True),
)

# The web adapter's browser sessions, shared by every node (migration 0022;
# registry/trust/web_session_store.py): no cookie id, no chain, key or name in clear.
web_sessions = Table(
    "web_sessions",
    metadata,
    # SHA-256 of the cookie's session id: the id itself (a bearer secret) is never stored.
    Column("digest", LargeBinary(32), primary_key=True),
    # The whole session (chain, session key, form token, subject, name, SIRET, grants), sealed
    # with the node's data key and bound to the digest and the expiry.
    Column("sealed", LargeBinary, nullable=False),
    # Unix seconds: the row is of no use from then on, and pruned.
    Column("expires", BigInteger, nullable=False, index=True),
    # Unix ms of the sign-in (or anonymous start): beyond the store's capacity, oldest first.
    Column("created", BigInteger, nullable=False, index=True),
    # 1 once a person signed in: beyond capacity anonymous sessions (anybody can make them by
    # fetching a page) go first, so that a flood of them does not sign anybody out.
    Column("signed_in", SmallInteger, nullable=False, server_default="0"),
)
