"""Versioned reference tables: each publication is a new version with all its codes; the
difference between two versions as data (added, removed, changed) and as a readable note."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from registry.kernel.clock import now_ms
from registry.kernel.database import reading
from registry.nomenclature.schema import nomenclature_codes, nomenclature_versions

# Companies subscribed to this topic hear of every new version.
NOMENCLATURE_TOPIC = "NOMENCLATURE"
# The longest request id a notification sending holds (registry/notify/schema.py).
_NOTICE_KEY_LENGTH = 64


class DuplicateCode(ValueError):
    """A version that gives a code twice."""


def notice_key(table: str, version: int) -> str:
    """The request id of the notice of a version: one notice per version, however often it is
    announced; a long table name's digest, so that it fits."""
    key = f"nomenclature-{table}-{version}"
    if len(key) > _NOTICE_KEY_LENGTH:
        key = f"nomenclature-{hashlib.sha256(key.encode()).hexdigest()[:48]}"
    return key


@dataclass(frozen=True)
class Difference:
    """What changed from one version to another."""

    added: dict[str, str]
    removed: dict[str, str]
    changed: dict[str, tuple[str, str]]  # code -> (old label, new label)

    def note(self, table: str, old: int, new: int) -> str:
        """The difference for people."""
        lines = [
            f"{table}: version {old} -> {new}: {len(self.added)} added, "
            f"{len(self.removed)} removed, {len(self.changed)} changed"
        ]
        lines += [f"+ {code} {label}" for code, label in sorted(self.added.items())]
        lines += [f"- {code} {label}" for code, label in sorted(self.removed.items())]
        lines += [
            f"~ {code} {old_label!r} -> {new_label!r}"
            for code, (old_label, new_label) in sorted(self.changed.items())
        ]
        return "\n".join(lines)


def difference(old: Mapping[str, str], new: Mapping[str, str]) -> Difference:
    """The difference between two versions' codes (code -> label)."""
    return Difference(
        added={c: new[c] for c in new.keys() - old.keys()},
        removed={c: old[c] for c in old.keys() - new.keys()},
        changed={c: (old[c], new[c]) for c in old.keys() & new.keys() if old[c] != new[c]},
    )


class NomenclatureStore:
    """Tables and their versions in the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def latest(self, table: str) -> int:
        """The table's current version (0: none)."""
        with reading(self.engine) as connection:
            found = connection.execute(
                select(nomenclature_versions.c.version)
                .where(nomenclature_versions.c.table_name == table)
                .order_by(nomenclature_versions.c.version.desc())
                .limit(1)
            ).scalar()
        return int(found or 0)

    def codes(self, table: str, version: int) -> dict[str, str] | None:
        """code -> label at a version (None: no such version)."""
        with reading(self.engine) as connection:
            exists = connection.execute(
                select(nomenclature_versions.c.published_at).where(
                    nomenclature_versions.c.table_name == table,
                    nomenclature_versions.c.version == version,
                )
            ).scalar()
            if exists is None:
                return None
            rows = connection.execute(
                select(nomenclature_codes.c.code, nomenclature_codes.c.label).where(
                    nomenclature_codes.c.table_name == table,
                    nomenclature_codes.c.version == version,
                )
            ).all()
        return {str(code): str(label) for code, label in rows}

    def published_at(self, table: str, version: int) -> int:
        """When a version was published (Unix milliseconds)."""
        with reading(self.engine) as connection:
            return int(
                connection.execute(
                    select(nomenclature_versions.c.published_at).where(
                        nomenclature_versions.c.table_name == table,
                        nomenclature_versions.c.version == version,
                    )
                ).scalar()
                or 0
            )

    def publish(self, table: str, pairs: Iterable[tuple[str, str]]) -> tuple[int, str]:
        """Stores the next version from its (code, label) pairs, each code once; (version, note
        of the difference with the previous)."""
        listed = list(pairs)
        codes = dict(listed)
        if len(codes) != len(listed):
            raise DuplicateCode("a code appears twice in the version")
        previous = self.latest(table)
        old = self.codes(table, previous) if previous else {}
        version = previous + 1
        note = difference(old or {}, codes).note(table, previous, version)
        with self.engine.begin() as connection:
            connection.execute(
                insert(nomenclature_versions).values(
                    table_name=table, version=version, published_at=now_ms(), note=note
                )
            )
            connection.execute(
                insert(nomenclature_codes),
                [
                    {"table_name": table, "version": version, "code": code, "label": label}
                    for code, label in codes.items()
                ],
            )
        return version, note
