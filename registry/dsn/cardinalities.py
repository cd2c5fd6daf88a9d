"""Block cardinalities per declaration nature: the workbook's (a monthly DSN's), overridden per
nature by registry/dsn/nature_cardinalities.json (the notice is the end-of-contract
declaration's; an event declares one individual and its event block)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

from registry.dsn.norm import BlockSpec, Norm

_TABLE: dict[str, Any] = json.loads(
    resources.files("registry.dsn").joinpath("nature_cardinalities.json").read_text("utf-8")
)
_RELAXED = frozenset(_TABLE["relaxed"])


def cardinality_faults(
    norm: Norm, block: str, children: dict[str, int], nature: str
) -> Iterator[tuple[BlockSpec, int, int, int | None]]:
    """For an instance of `block` with these child counts, in a declaration of that nature:
    each child block whose count is out of bounds, with its count and bounds (min, max)."""
    table = _TABLE["natures"].get(nature, {})
    relaxed = nature in _RELAXED and "S21.G00.30" <= block < "S22"
    for child in norm.children(block):
        count = children.get(child.id, 0)
        least, most = table.get(child.id, (0 if relaxed else child.min, child.max))
        if count < least or (most is not None and count > most):
            yield child, count, least, most
