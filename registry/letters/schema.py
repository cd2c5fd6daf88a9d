"""The table of postal letters (issue 19): one row per letter, its recipient's address and its
text sealed with the node's at-rest key, its printing batch and its tracking by the post."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table

from registry.kernel.metadata import metadata

postal_letters = Table(
    "postal_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("siret", String(14), nullable=False),
    # ADMIN_ACTIVATION, CANDIDATE_ACTIVATION or PASSWORD_RESET (registry/letters/store.py).
    Column("kind", String(32), nullable=False),
    # The address as the RCD held it at posting, sealed (JSON), bound to the row.
    Column("recipient_sealed", LargeBinary, nullable=False),
    # The subject and body (JSON), sealed and bound to the row: they hold the secret. Erased
    # once the letter left the mail room (SENT, DELIVERED, RETURNED).
    Column("body_sealed", LargeBinary, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # PENDING, PRINTED, SENT, DELIVERED or RETURNED.
    Column("state", String(16), nullable=False),
    # The printing batch that took it ("" while pending) and the post's tracking number.
    Column("batch_id", String(64), nullable=False),
    Column("tracking", String(64), nullable=False),
    Column("state_changed_at", BigInteger, nullable=False),
    Index("ix_postal_letters_state", "state", "id"),
    Index("ix_postal_letters_batch", "batch_id", "id"),
    Index("ix_postal_letters_siret", "siret", "id"),
)
