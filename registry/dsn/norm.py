"""The DSN norm as data: blocks (parent, cardinality), rubrics (data type: regex, lengths,
allowed values) and control rule ids, per norm version, from the tables generated into
registry/dsn/norm_tables/ by tools/generate_dsn_norm.py."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

ENVELOPE_VERSION = "V01R02"


class UnsupportedVersion(ValueError):
    """A DSN declares a norm version this backbone has no tables for."""


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """A block of the norm: its parent and how many instances a parent may hold."""

    id: str
    name: str
    parent: str | None
    min: int
    max: int | None  # None: unbounded


@dataclass(frozen=True, slots=True)
class RubricSpec:
    """A rubric of the norm and its data type."""

    id: str
    block: str
    name: str
    kind: str  # Alphanumeric, Numeric, Date, Enumeration, ExternalReferential
    regex: re.Pattern[str] | None
    min: int
    max: int | None
    values: frozenset[str] | None


@dataclass(frozen=True)
class Norm:
    """One version of the norm."""

    version: str
    blocks: dict[str, BlockSpec]
    rubrics: dict[str, RubricSpec]
    rules: dict[str, dict[str, str]]  # rubric -> rule id -> message
    _children: dict[str, tuple[BlockSpec, ...]] = field(default_factory=dict, repr=False)

    def children(self, block: str) -> tuple[BlockSpec, ...]:
        """The blocks whose parent is `block`."""
        found = self._children.get(block)
        if found is None:
            found = tuple(spec for spec in self.blocks.values() if spec.parent == block)
            self._children[block] = found
        return found


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:  # a few patterns of the workbook use syntax Python lacks; lengths still hold
        return None


def _norm(data: dict[str, Any]) -> Norm:
    blocks = {
        block_id: BlockSpec(block_id, spec["name"], spec["parent"], spec["min"], spec["max"])
        for block_id, spec in data["blocks"].items()
    }
    rubrics = {
        rubric: RubricSpec(
            rubric, spec["block"], spec["name"], spec["kind"], _compiled(spec["regex"]),
            spec["min"] or 0, spec["max"], frozenset(spec["values"]) if spec["values"] else None,
        )
        for rubric, spec in data["rubrics"].items()
    }  # fmt: skip
    return Norm(data["version"], blocks, rubrics, data["rules"])


@functools.cache
def load(version: str) -> Norm:
    """The norm of that version; raises UnsupportedVersion if there are no tables for it."""
    if version not in (*supported_versions(), ENVELOPE_VERSION):
        raise UnsupportedVersion(
            f"norm version {version!r} is not supported; one of {', '.join(supported_versions())}"
        )
    text = (
        resources.files("registry.dsn").joinpath(f"norm_tables/{version}.json").read_text("utf-8")
    )
    return _norm(json.loads(text))


@functools.cache
def supported_versions() -> tuple[str, ...]:
    """The declaration norm versions (not the lot envelope's) with tables."""
    names = [p.name for p in resources.files("registry.dsn").joinpath("norm_tables").iterdir()]
    return tuple(sorted(n.removesuffix(".json") for n in names
                        if n.endswith(".json") and not n.startswith(ENVELOPE_VERSION)))  # fmt: skip
