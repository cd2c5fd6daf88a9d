"""The trust directory in the database: organisms and sites, their keys (with rotation): signing
keys and the encryption keys their DSN shares are sealed to, and the rights each may be
granted; and the snapshot the backbone signs and publishes."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from interops.token.v1 import token_pb2
from sqlalchemy import ColumnElement, Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from registry.kernel.clock import now_ms
from registry.kernel.database import reading
from registry.trust.schema import organism_grants, organism_keys, organisms
from token_suite.directory import KeyEntry
from token_suite.encryption_keys import check_encryption_key, encryption_key_id
from token_suite.grants import Grants, grants_from
from token_suite.keys import check_public_key, key_id_of

KIND_PREFIX = "ORGANISM_KIND_"


class KeyKind(StrEnum):
    """What a published key is for: SIGNING (Ed25519: blocks, proofs, receipts; the snapshot's
    `keys`), ENCRYPTION (X25519: what the organism's shares are sealed to; its
    `encryption_keys`) or TLS (the SHA-256 of a TLS client certificate's public key, DER
    SubjectPublicKeyInfo: in mutual TLS, what the organism's systems present; only the node
    reads these). Stored by name."""

    SIGNING = "SIGNING"
    ENCRYPTION = "ENCRYPTION"
    TLS = "TLS"


class DirectoryError(ValueError):
    """A directory change that cannot be made; the message says why."""


def kind_value(kind: str) -> int:
    """The OrganismKind for "URSSAF", "PORTAL", ...; raises DirectoryError if unknown."""
    try:
        return int(token_pb2.OrganismKind.Value(KIND_PREFIX + kind.upper()))
    except ValueError:
        known = [n.removeprefix(KIND_PREFIX) for n in token_pb2.OrganismKind.keys()[1:]]
        raise DirectoryError(f"unknown kind {kind!r}; one of {', '.join(known)}") from None


class DirectoryStore:
    """Reads and changes the trust directory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_organism(self, code: str, name: str, kind: str, endpoints: Sequence[str] = ()) -> None:
        """Adds an organism or site; raises DirectoryError if the code is taken."""
        kind_value(kind)
        if not code or len(code) > 64 or not code.replace("-", "").replace("_", "").isalnum():
            raise DirectoryError("a code is 1 to 64 letters, digits, '-' or '_'")
        row = {"code": code, "name": name, "kind": kind.upper(),
               "endpoints": json.dumps(list(endpoints)), "changed_at": now_ms()}  # fmt: skip
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(organisms).values(row))
        except IntegrityError:
            raise DirectoryError(f"organism {code} exists already") from None

    def add_key(
        self, organism: str, public_key: bytes, valid_from: int | None = None,
        kind: KeyKind = KeyKind.SIGNING,
    ) -> str:  # fmt: skip
        """Publishes a public key of the organism; returns its key id. Publish a new signing key
        before signing with it: verifiers fetch the directory again on an unknown key id. A new
        encryption key is the one shares are sealed to from `valid_from` on (retire the old one
        once the organism has read what was sealed to it)."""
        if kind == KeyKind.ENCRYPTION:
            check_encryption_key(public_key)
            key_id = encryption_key_id(public_key)
        elif kind == KeyKind.TLS:
            if len(public_key) != 32:
                raise DirectoryError("a TLS key is the SHA-256 (32 bytes) of a certificate's key")
            key_id = f"tls:{public_key.hex()[:16]}"
        else:
            check_public_key(public_key)
            key_id = key_id_of(public_key)
        row = {"key_id": key_id, "organism": organism, "public_key": public_key,
               "valid_from": int(time.time()) if valid_from is None else valid_from,
               "valid_until": 0, "changed_at": now_ms(), "kind": kind.value}  # fmt: skip
        with self.engine.begin() as connection:
            if (
                connection.execute(
                    select(organisms.c.code).where(organisms.c.code == organism)
                ).first()
                is None
            ):
                raise DirectoryError(f"no organism {organism}")
            try:
                connection.execute(insert(organism_keys).values(row))
            except IntegrityError:
                raise DirectoryError(f"key {key_id} is published already") from None
        return key_id

    def retire_key(self, key_id: str, at: int | None = None) -> None:
        """Retires a key: it signs nothing after `at`, and stays listed so that what it signed
        before still verifies until it expires (an encryption key: nothing more is sealed to
        it)."""
        moment = int(time.time()) if at is None else at
        with self.engine.begin() as connection:
            done = connection.execute(
                update(organism_keys)
                .where(organism_keys.c.key_id == key_id, organism_keys.c.valid_until == 0)
                .values(valid_until=moment, changed_at=now_ms())
            )
        if done.rowcount != 1:
            raise DirectoryError(f"no key {key_id} in use")

    def current_encryption_key(self, organism: str) -> KeyEntry | None:
        """The organism's encryption key to seal a share to now: the one in use (started, not
        retired) that started last, of two the last published; None when it has none."""
        now = int(time.time())
        with reading(self.engine) as connection:
            row = connection.execute(
                select(organism_keys)
                .where(
                    organism_keys.c.organism == organism,
                    organism_keys.c.kind == KeyKind.ENCRYPTION,
                    organism_keys.c.valid_until == 0,
                    organism_keys.c.valid_from <= now,
                )
                .order_by(
                    organism_keys.c.valid_from.desc(),
                    organism_keys.c.changed_at.desc(),
                    organism_keys.c.key_id.desc(),
                )
                .limit(1)
            ).first()
        if row is None:
            return None
        return KeyEntry(row.key_id, row.organism, bytes(row.public_key), row.valid_from,
                        row.valid_until)  # fmt: skip

    def grant(self, organism: str, right: str, siren: str | None = None) -> None:
        """Lets the organism be granted `right` over a company, or over everything."""
        with self.engine.begin() as connection:
            connection.execute(
                insert(organism_grants).values(organism=organism, right_name=right, siren=siren)
            )

    def grants_of(self, organism: str) -> Grants:
        """What the organism may be granted."""
        return read_grants(self.engine, organism_grants.c.organism, organism)

    def serial(self) -> int:
        """Grows with every change of the directory (the latest change, Unix milliseconds)."""
        with reading(self.engine) as connection:
            return self._serial(connection)

    @staticmethod
    def _serial(connection: Connection) -> int:
        latest = (
            connection.execute(
                select(func.max(organisms.c.changed_at)).union_all(
                    select(func.max(organism_keys.c.changed_at))
                )
            )
            .scalars()
            .all()
        )
        return max((value for value in latest if value is not None), default=0)

    def tls_pins(self) -> dict[str, frozenset[bytes]]:
        """Each organism's TLS keys in use (retired ones left out): the SHA-256 of the public
        keys its client certificates may hold."""
        now = int(time.time())
        pins: dict[str, set[bytes]] = {}
        with reading(self.engine) as connection:
            for organism, pin, until in connection.execute(
                select(organism_keys.c.organism, organism_keys.c.public_key,
                       organism_keys.c.valid_until)
                .where(organism_keys.c.kind == KeyKind.TLS.value)
            ):  # fmt: skip
                if not until or until > now:
                    pins.setdefault(str(organism), set()).add(bytes(pin))
        return {organism: frozenset(found) for organism, found in pins.items()}

    def snapshot(self, lifetime: int) -> token_pb2.Directory:
        """The whole directory as a snapshot valid for `lifetime` seconds."""
        now = int(time.time())
        with reading(self.engine) as connection:
            organism_rows = connection.execute(select(organisms).order_by(organisms.c.code)).all()
            key_rows = connection.execute(
                select(organism_keys).order_by(organism_keys.c.key_id)
            ).all()
            serial = (
                connection.execute(
                    select(func.max(organisms.c.changed_at)).union_all(
                        select(func.max(organism_keys.c.changed_at))
                    )
                )
                .scalars()
                .all()
            )
        return token_pb2.Directory(
            serial=max((s for s in serial if s is not None), default=0),
            issued_at=now,
            expires=now + lifetime,
            organisms=[
                token_pb2.Organism(code=r.code, name=r.name, kind=kind_value(r.kind),  # type: ignore[arg-type]
                                   endpoints=json.loads(r.endpoints))
                for r in organism_rows
            ],
            keys=[_public_key(r) for r in key_rows if r.kind == KeyKind.SIGNING],
            encryption_keys=[_public_key(r) for r in key_rows if r.kind == KeyKind.ENCRYPTION],
        )  # fmt: skip


def _public_key(row: Any) -> token_pb2.PublicKey:
    return token_pb2.PublicKey(key_id=row.key_id, organism=row.organism,
                               public_key=row.public_key, valid_from=row.valid_from,
                               valid_until=row.valid_until)  # fmt: skip


def read_grants(engine: Engine, owner: ColumnElement[Any], value: object) -> Grants:
    """The grants in the table of the `owner` column (organism_grants, declarant_grants) whose
    owner is `value`: rows of (right_name, siren or NULL for everything)."""
    table = owner.table
    with reading(engine) as connection:
        rows = connection.execute(
            select(table.c.right_name, table.c.siren).where(owner == value)
        ).all()
    return grants_from(
        token_pb2.Grant(
            right=right, all_establishments=siren is None, sirens=[siren] if siren else []
        )
        for right, siren in rows
    )
