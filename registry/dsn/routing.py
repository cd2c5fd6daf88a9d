"""Routing a validated DSN: each organism gets its share, and only that.

Rules are data, one JSON file per organism (registry/dsn/routing_rules/ by default):
- `natures`: the declaration natures it receives;
- `when`: conditions of which at least one must hold for the organism to be concerned (a block
  present, optionally with a rubric whose value is in a list);
- `blocks`: the blocks it is entitled to, each optionally limited to the instances whose rubric
  has one of the listed values (`rubric` + `in`) and to some of its rubrics (`rubrics`). A block
  under a limited entitled block is entitled only under the instances that passed.

A share holds the entitled blocks' lines, each preceded by its ancestors reduced to their
identifying rubrics (`IDENTIFICATION`): the envoi and declaration headers, the company and
establishment ids, the employee's identity, the contract's start and number... An entitled
block whose ancestors cannot be identified is left out. Each envoi of a share ends with S90
totals counted on the share.

The router streams: it holds one individual's blocks, never the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from registry.dsn.reader import BlockInstance, BlockReader, RubricLine, read_rubrics

# What an organism receives of an ancestor of an entitled block that it is not entitled to.
IDENTIFICATION: dict[str, frozenset[str]] = {
    block: frozenset(f"{block}.{number}" for number in numbers)
    for block, numbers in {
        "S10.G00.00": ("001", "002", "003", "004", "005", "006", "007", "008"),
        "S20.G00.05": ("001", "002", "003", "004", "005", "006", "007", "008", "009", "010",
                       "011", "012", "013"),
        "S21.G00.06": ("001", "002"),
        "S21.G00.11": ("001",),
        "S21.G00.15": ("001", "002", "005"),
        "S21.G00.20": ("001",),
        "S21.G00.22": ("001",),
        "S21.G00.30": ("001", "002", "004", "006"),
        "S21.G00.40": ("001", "009"),
        "S21.G00.50": ("001", "003"),
        "S21.G00.51": ("001", "002", "011"),
        "S21.G00.60": ("001", "002"),
        "S21.G00.62": ("001",),
        "S21.G00.70": ("012", "013"),
        "S21.G00.71": ("002",),
        "S21.G00.78": ("001", "002", "003"),
    }.items()
}  # fmt: skip
_ENVOI = "S10.G00.00"
_DECLARATION = "S20.G00.05"


class RoutingRuleError(ValueError):
    """A rule file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A block, optionally with a rubric whose value must be in `values` (any value if None)."""

    block: str
    rubric: str | None = None
    values: frozenset[str] | None = None

    def holds(self, instance: BlockInstance) -> bool:
        """True when the instance is of that block and passes the rubric test."""
        if instance.block != self.block:
            return False
        if self.rubric is None:
            return True
        value = instance.value(self.rubric)
        return value is not None and (self.values is None or value in self.values)


@dataclass(frozen=True, slots=True)
class BlockRule:
    """An entitled block: which instances (`where`) and which of their rubrics (None: all)."""

    where: Condition
    rubrics: frozenset[str] | None


@dataclass(frozen=True)
class OrganismRules:
    """One organism's rule set."""

    organism: str
    natures: frozenset[str]
    when: tuple[Condition, ...]
    blocks: dict[str, BlockRule]
    description: str = ""

    def allowed_rubric(self, rubric: str) -> bool:
        """True when a share of this organism may hold the rubric (tests use it)."""
        block = rubric[:10]
        rule = self.blocks.get(block)
        if rule is not None and (rule.rubrics is None or rubric in rule.rubrics):
            return True
        return rubric in IDENTIFICATION.get(block, ()) or block == "S90.G00.90"


def _condition(data: dict[str, object], where: str) -> Condition:
    block, rubric, values = data.get("block"), data.get("rubric"), data.get("in")
    if not isinstance(block, str) or len(block) != 10:
        raise RoutingRuleError(f"{where}: a condition names its block (Sxx.Gxx.xx)")
    if rubric is not None and (not isinstance(rubric, str) or not rubric.startswith(block)):
        raise RoutingRuleError(f"{where}: the rubric {rubric!r} is not one of block {block}")
    if values is not None and not isinstance(values, list):
        raise RoutingRuleError(f"{where}: 'in' is a list of values")
    return Condition(block, rubric, frozenset(map(str, values)) if values is not None else None)


def parse_rules(data: dict[str, object], where: str = "rules") -> OrganismRules:
    """One organism's rules from their JSON form."""
    organism = data.get("organism")
    natures, when, blocks = data.get("natures"), data.get("when"), data.get("blocks")
    if not isinstance(organism, str) or not organism:
        raise RoutingRuleError(f"{where}: 'organism' names the organism's code")
    if not isinstance(natures, list) or not isinstance(when, list) or not isinstance(blocks, dict):
        raise RoutingRuleError(f"{where}: 'natures' and 'when' are lists, 'blocks' an object")
    rules: dict[str, BlockRule] = {}
    for block, spec in blocks.items():
        if not isinstance(spec, dict):
            raise RoutingRuleError(f"{where}: block {block} is an object")
        rubrics = spec.get("rubrics")
        rules[block] = BlockRule(
            _condition({"block": block, **spec}, f"{where} {block}"),
            frozenset(rubrics) if isinstance(rubrics, list) else None,
        )
    return OrganismRules(
        organism,
        frozenset(map(str, natures)),
        tuple(_condition(c, f"{where} when") for c in when if isinstance(c, dict)),
        rules,
        str(data.get("description", "")),
    )


def load_rules(directory: Path | None = None) -> dict[str, OrganismRules]:
    """Every organism's rules from a directory of JSON files (default: the packaged ones)."""
    found: dict[str, OrganismRules] = {}
    files = (
        sorted(directory.glob("*.json"))
        if directory is not None
        else sorted(
            (
                p
                for p in resources.files("registry.dsn").joinpath("routing_rules").iterdir()
                if p.name.endswith(".json")
            ),
            key=lambda p: p.name,
        )
    )
    for path in files:
        try:
            data = json.loads(path.read_text("utf-8"))
        except ValueError as error:
            raise RoutingRuleError(f"{path.name}: not JSON ({error})") from None
        rules = parse_rules(data, path.name)
        if rules.organism in found:
            raise RoutingRuleError(f"{path.name}: a second rule set for {rules.organism}")
        found[rules.organism] = rules
    return found


@dataclass
class Share:
    """What one organism gets of one deposit, as it is written."""

    organism: str
    out: BinaryIO
    concerned: bool = False
    lines: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    size: int = 0
    envoi_lines: int = 0
    envoi_declarations: int = 0
    emitted: set[int] = field(default_factory=set)  # id() of the instances already written

    def write(self, lines: list[RubricLine]) -> None:
        """Appends rubric lines."""
        if not lines:
            return
        data = "".join([f"{line.rubric},'{line.value}'\r\n" for line in lines])
        encoded = data.encode("iso-8859-1")
        self.out.write(encoded)
        self.digest.update(encoded)
        self.size += len(encoded)
        self.lines += len(lines)
        self.envoi_lines += len(lines)


@dataclass
class _Decision:
    entitled: dict[str, bool] = field(default_factory=dict)  # organism -> entitled (absent: no)


_Interest = tuple[str, OrganismRules, tuple[Condition, ...], BlockRule | None]


class Router:
    """Splits one DSN into shares; `open_share(organism)` gives the stream a share is written
    to. `route` returns the shares of the organisms concerned (the others' streams were
    written to and must be discarded)."""

    def __init__(self, rules: Iterable[OrganismRules]) -> None:
        self.rules = {r.organism: r for r in rules}

    def route(
        self, stream: BinaryIO | Iterable[bytes], open_share: Callable[[str], BinaryIO]
    ) -> list[Share]:
        """Writes each organism's share; returns those of the organisms concerned."""
        shares = {code: Share(code, open_share(code)) for code in self.rules}
        state = _RouteState(self.rules, shares)
        reader = BlockReader()
        for item in read_rubrics(stream):
            if item.problem:
                raise ValueError(f"line {item.line}: {item.problem}")
            for closed in reader.feed(item):
                state.closed(closed)
            opened = reader.open[-1] if reader.open else None
            if opened is not None and opened.lines[0] is item and opened.parent is not None:
                state.complete(opened.parent)
        for closed in reader.close():
            state.closed(closed)
        return [share for share in shares.values() if share.concerned]


class _RouteState:
    """Decides each block instance once its own lines are known, and writes it where due."""

    def __init__(self, rules: dict[str, OrganismRules], shares: dict[str, Share]) -> None:
        self.rules = rules
        self.shares = shares
        self.decided: dict[int, _Decision] = {}
        self.nature = ""
        self.by_block: dict[str, list[_Interest]] = {}

    def _interested(self, block: str) -> list[_Interest]:
        """The organisms with a condition or a rule on that block (computed once per block)."""
        found = self.by_block.get(block)
        if found is None:
            found = []
            for code, rules in self.rules.items():
                when = tuple(c for c in rules.when if c.block == block)
                rule = rules.blocks.get(block)
                if when or rule is not None:
                    found.append((code, rules, when, rule))
            self.by_block[block] = found
        return found

    def complete(self, instance: BlockInstance) -> None:
        """The instance's own lines are all read (a child opened, or it closed)."""
        key = id(instance)
        if key in self.decided:
            return
        if instance.block == _DECLARATION:
            self.nature = instance.value("S20.G00.05.001") or ""
        decision = _Decision()
        parent = self.decided.get(id(instance.parent)) if instance.parent is not None else None
        for code, rules, when, rule in self._interested(instance.block):
            if self.nature not in rules.natures:
                continue
            if any(condition.holds(instance) for condition in when):
                self.shares[code].concerned = True
            entitled = rule is not None and rule.where.holds(instance)
            # Under a limited entitled block, only below the instances that passed.
            if (
                entitled
                and parent is not None
                and instance.parent is not None
                and instance.parent.block in rules.blocks
                and not parent.entitled.get(code)
            ):
                entitled = False
            decision.entitled[code] = entitled
        self.decided[key] = decision
        for code, entitled in decision.entitled.items():
            if entitled:
                self._write(self.shares[code], self.rules[code], instance)

    def closed(self, instance: BlockInstance) -> None:
        """The instance and its children are all read."""
        self.complete(instance)
        if instance.block == _ENVOI:
            for share in self.shares.values():
                if id(instance) in share.emitted:
                    self._totals(share)
            self.nature = ""
        self.decided.pop(id(instance), None)
        for share in self.shares.values():
            share.emitted.discard(id(instance))

    def _write(self, share: Share, rules: OrganismRules, instance: BlockInstance) -> None:
        path: list[BlockInstance] = []
        node = instance.parent
        while node is not None:
            if id(node) in share.emitted:
                break
            if node.block not in IDENTIFICATION and node.block not in rules.blocks:
                return  # cannot be placed: an ancestor has nothing to identify it
            path.append(node)
            node = node.parent
        for ancestor in reversed(path):
            self._emit(share, rules, ancestor)
        self._emit(share, rules, instance)

    def _emit(self, share: Share, rules: OrganismRules, instance: BlockInstance) -> None:
        if instance.block == _ENVOI:
            share.envoi_lines = 0
            share.envoi_declarations = 0
        elif instance.block == _DECLARATION:
            share.envoi_declarations += 1
        rule = rules.blocks.get(instance.block)
        decision = self.decided.get(id(instance))
        allowed: frozenset[str] | None
        if rule is not None and decision is not None and decision.entitled.get(rules.organism):
            allowed = rule.rubrics  # None: every rubric of the block
        else:
            allowed = IDENTIFICATION.get(instance.block, frozenset())
        block = instance.block
        # Lines of blocks the norm does not know (kept in the open block) stay behind.
        share.write([
            line for line in instance.lines
            if line.rubric[:10] == block and (allowed is None or line.rubric in allowed)
        ])  # fmt: skip
        share.emitted.add(id(instance))

    @staticmethod
    def _totals(share: Share) -> None:
        share.write([
            RubricLine(0, "S90.G00.90.001", str(share.envoi_lines + 2)),
            RubricLine(0, "S90.G00.90.002", str(max(share.envoi_declarations, 1))),
        ])  # fmt: skip
