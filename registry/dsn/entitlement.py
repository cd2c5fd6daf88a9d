"""Who is entitled to what of a DSN, as data: one JSON file per organism in
registry/dsn/routing_rules/ (or a directory of the operator's), and `_identification.json`.

An organism's file names:
- `names`: how the DSN names it (its SIRET or code in S21.G00.15.002, S21.G00.20.001,
  S21.G00.22.001, S21.G00.81.002...);
- `natures`: the declaration natures it receives (a declaration of another nature gives it
  nothing);
- `individuals`: which employees it receives: "all", or {"having": [blocks]}: those with at
  least one instance of these blocks that it is entitled to (an OC: an affiliation to one of its
  adhesions; Agirc-Arrco: a complementary pension under its scheme);
- `blocks`: the blocks it is entitled to, each with an optional `where` (a condition on the
  instance, below) and `rubrics` (only these rubrics; all when absent).

An instance is entitled when its block is listed, its declaration's nature is listed, its
`where` holds, its parent instance is entitled when the parent's block is listed too, and, below
an employee (S21.G00.30), when the organism receives that employee. A `where` is one of:
- {"names": RUBRIC}: the rubric's value is one of the organism's names;
- {"rubric": RUBRIC, "in": [values]} / {"rubric": RUBRIC, "not_in": [values]} (an absent
  rubric is in no list);
- {"refers": RUBRIC, "to": RUBRIC}: the value is the identifier (rubric `to`) of an instance
  the organism is entitled to, within their nearest common ancestor (an affiliation's
  S21.G00.70.013 names an adhesion S21.G00.15.005 of the same establishment; a base's
  S21.G00.78.005 an affiliation S21.G00.70.012 of the same employee);
- {"absent": RUBRIC}; {"any": [where...]}; {"all": [where...]}; {"not": where}.

An organism receives, with each entitled instance, its ancestors (up to the envoi, never a lot
envelope) reduced to their identifying rubrics (`_identification.json`); an instance whose
ancestors cannot all be identified is left out. Natures that no organism receives are listed in
`_identification.json`'s `refused_natures` with the reason given to the declarant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from registry.dsn.reader import BlockInstance, block_ancestors

# The identifiers (values of a rubric) an organism is entitled to in an instance's scope.
RefLookup = Callable[[str, BlockInstance], Collection[str]]
INDIVIDUAL = "S21.G00.30"
ENVOI = "S10.G00.00"


class RoutingRuleError(ValueError):
    """A rule file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Where:
    """A condition on an instance (see the module's docstring); `op` names its form."""

    op: str
    rubric: str = ""
    values: frozenset[str] = frozenset()
    to: str = ""
    parts: tuple[Where, ...] = ()

    def describe(self) -> str:
        """The condition in a few words, for the README's table."""
        if self.op == "names":
            return f"{self.rubric} names it"
        if self.op in ("in", "not_in"):
            shown = ", ".join(sorted(self.values))
            return f"{self.rubric} {'in' if self.op == 'in' else 'not in'} {{{shown}}}"
        if self.op == "refers":
            return f"{self.rubric} → its {self.to}"
        if self.op == "absent":
            return f"no {self.rubric}"
        if self.op == "not":
            return f"not ({self.parts[0].describe()})"
        joiner = " or " if self.op == "any" else " and "
        return joiner.join(f"({part.describe()})" for part in self.parts)


@dataclass(frozen=True, slots=True)
class BlockRule:
    """An entitled block: which instances (`where`, None: all) and which rubrics (None: all)."""

    block: str
    where: Where | None
    rubrics: frozenset[str] | None


@dataclass(frozen=True)
class OrganismRules:
    """One organism's entitlement."""

    organism: str
    names: frozenset[str]
    natures: frozenset[str]
    # None: every employee; else the blocks of which it must hold an entitled instance.
    having: frozenset[str] | None
    blocks: dict[str, BlockRule]
    description: str = ""

    def holds(self, where: Where | None, instance: BlockInstance, found: RefLookup) -> bool:
        """Whether an instance passes a condition; `found(rubric, instance)` gives the
        identifiers (values of `rubric`) entitled to this organism in the instance's scope."""
        if where is None:
            return True
        op = where.op
        if op == "names":
            return instance.value(where.rubric) in self.names
        if op == "in":
            return instance.value(where.rubric) in where.values
        if op == "not_in":
            value = instance.value(where.rubric)
            return value is None or value not in where.values
        if op == "refers":
            value = instance.value(where.rubric)
            return value is not None and value in found(where.to, instance)
        if op == "absent":
            return instance.value(where.rubric) is None
        if op == "any":
            return any(self.holds(part, instance, found) for part in where.parts)
        if op == "all":
            return all(self.holds(part, instance, found) for part in where.parts)
        return not self.holds(where.parts[0], instance, found)  # "not"

    def targets(self) -> Iterator[str]:
        """The rubrics that `refers` conditions point to (their values are remembered)."""
        for rule in self.blocks.values():
            yield from (where.to for where in references(rule.where))


def references(where: Where | None) -> Iterator[Where]:
    """The `refers` conditions within a condition."""
    if where is None:
        return
    if where.op == "refers":
        yield where
    for part in where.parts:
        yield from references(part)


@dataclass(frozen=True, slots=True)
class Required:
    """Rubrics an instance of `block` (those passing `where`) must hold: without them what it
    carries would reach nobody."""

    block: str
    where: Where | None
    rubrics: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Identification:
    """What an organism receives of an ancestor it is not entitled to, the rubrics without which
    an instance would reach nobody, and the natures nobody receives (with the reason the
    declarant is given)."""

    rubrics: dict[str, frozenset[str]]
    required: tuple[Required, ...]
    refused_natures: dict[str, str]


_OPS = ("names", "in", "not_in", "refers", "absent", "any", "all", "not")


def _where(data: Any, block: str, where: str) -> Where:
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise RoutingRuleError(f"{where}: a condition is an object of one of {', '.join(_OPS)}")
    if "rubric" in data and ("in" in data or "not_in" in data):
        op = "in" if "in" in data else "not_in"
        values = data[op]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise RoutingRuleError(f"{where}: '{op}' is a list of values")
        return Where(op, _rubric(data["rubric"], block, where), frozenset(values))
    if "refers" in data and "to" in data:
        to = data["to"]
        if not isinstance(to, str) or len(to) != 14:
            raise RoutingRuleError(f"{where}: 'to' names a rubric")
        return Where("refers", _rubric(data["refers"], block, where), to=to)
    if len(data) != 1:
        raise RoutingRuleError(f"{where}: unknown condition {sorted(data)}")
    ((op, value),) = data.items()
    if op in ("names", "absent"):
        return Where(op, _rubric(value, block, where))
    if op in ("any", "all") and isinstance(value, list) and value:
        return Where(op, parts=tuple(_where(part, block, where) for part in value))
    if op == "not":
        return Where(op, parts=(_where(value, block, where),))
    raise RoutingRuleError(f"{where}: unknown condition {op!r}")


def _rubric(value: Any, block: str, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(block + ".") or len(value) != 14:
        raise RoutingRuleError(f"{where}: {value!r} is not a rubric of block {block}")
    return value


def _block_rule(block: str, spec: Any, where: str) -> BlockRule:
    if block_ancestors(block) is None:
        raise RoutingRuleError(f"{where}: block {block} is not in the norm")
    if not isinstance(spec, dict) or set(spec) - {"where", "rubrics"}:
        raise RoutingRuleError(f"{where}: block {block} is an object of 'where' and 'rubrics'")
    rubrics = spec.get("rubrics")
    if rubrics is not None and not isinstance(rubrics, list):
        raise RoutingRuleError(f"{where}: block {block}'s 'rubrics' is a list")
    condition = _where(spec["where"], block, f"{where} {block}") if "where" in spec else None
    return BlockRule(
        block, condition,
        frozenset(_rubric(r, block, f"{where} {block}") for r in rubrics)
        if rubrics is not None else None,
    )  # fmt: skip


def _having(individuals: Any, rules: dict[str, BlockRule], where: str) -> frozenset[str] | None:
    if individuals == "all":
        return None
    held = individuals.get("having") if isinstance(individuals, dict) else None
    if not isinstance(held, list) or not held:
        raise RoutingRuleError(f'{where}: \'individuals\' is "all" or {{"having": [...]}}')
    for block in held:
        if block not in rules or INDIVIDUAL not in (block_ancestors(block) or ()):
            raise RoutingRuleError(
                f"{where}: 'having' names {block}, not an entitled block under an employee"
            )
    return frozenset(held)


def parse_rules(data: dict[str, Any], where: str = "rules") -> OrganismRules:
    """One organism's rules from their JSON form; refuses what it cannot use."""
    organism, names, natures = data.get("organism"), data.get("names"), data.get("natures")
    blocks = data.get("blocks")
    if not isinstance(organism, str) or not organism:
        raise RoutingRuleError(f"{where}: 'organism' names the organism's code")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RoutingRuleError(f"{where}: 'names' is a list of how the DSN names the organism")
    if not isinstance(natures, list) or not isinstance(blocks, dict) or not blocks:
        raise RoutingRuleError(f"{where}: 'natures' is a list, 'blocks' an object")
    rules = {block: _block_rule(block, spec, where) for block, spec in blocks.items()}
    if INDIVIDUAL not in rules and any(INDIVIDUAL in (block_ancestors(b) or ()) for b in rules):
        raise RoutingRuleError(f"{where}: blocks under an employee need {INDIVIDUAL} too")
    found = OrganismRules(
        organism, frozenset(names), frozenset(map(str, natures)),
        _having(data.get("individuals"), rules, where), rules, str(data.get("description", "")),
    )  # fmt: skip
    for target in found.targets():
        if target[:10] not in rules:
            raise RoutingRuleError(f"{where}: a condition refers to {target}, not entitled")
    if any(_uses_names(rule.where) for rule in rules.values()) and not found.names:
        raise RoutingRuleError(f"{where}: a condition uses 'names' but 'names' is empty")
    return found


def _uses_names(where: Where | None) -> bool:
    return where is not None and (where.op == "names" or any(map(_uses_names, where.parts)))


def _packaged() -> Traversable:
    return resources.files("registry.dsn").joinpath("routing_rules")


def _files(directory: Path | None) -> list[Traversable]:
    found: Iterable[Traversable] = (
        directory.glob("*.json") if directory is not None else _packaged().iterdir()
    )
    return sorted(
        (p for p in found if p.name.endswith(".json") and not p.name.startswith("_")),
        key=lambda p: p.name,
    )


def load_rules(directory: Path | None = None) -> dict[str, OrganismRules]:
    """Every organism's rules from a directory of JSON files (default: the packaged ones)."""
    found: dict[str, OrganismRules] = {}
    for path in _files(directory):
        try:
            data = json.loads(path.read_text("utf-8"))
        except ValueError as error:
            raise RoutingRuleError(f"{path.name}: not JSON ({error})") from None
        rules = parse_rules(data, path.name)
        if rules.organism in found:
            raise RoutingRuleError(f"{path.name}: a second rule set for {rules.organism}")
        for other in found.values():
            if rules.names & other.names:
                shared = sorted(rules.names & other.names)[0]
                raise RoutingRuleError(
                    f"{path.name}: {shared} already names {other.organism}: each would get the "
                    "other's data"
                )
        found[rules.organism] = rules
    return found


def load_identification() -> Identification:
    """The identifying rubrics of each block, and the natures nobody receives."""
    data = json.loads(_packaged().joinpath("_identification.json").read_text("utf-8"))
    required = tuple(
        Required(
            item["block"],
            _where(item["where"], item["block"], "_identification.json")
            if "where" in item else None,
            tuple(_rubric(r, item["block"], "_identification.json") for r in item["rubrics"]),
            item["why"],
        )
        for item in data["required"]
    )  # fmt: skip
    return Identification(
        {block: frozenset(f"{block}.{n}" for n in numbers)
         for block, numbers in data["identifying_rubrics"].items()},
        required, dict(data["refused_natures"]),
    )  # fmt: skip


def entitlement_table(rules: dict[str, OrganismRules]) -> str:
    """The README's table: organism by block, with each block's condition, from the rules."""
    organisms = sorted(rules)
    blocks = sorted({block for r in rules.values() for block in r.blocks})
    header = "| block | " + " | ".join(organisms) + " |"
    lines = [header, "|" + "---|" * (len(organisms) + 1)]
    lines.append(
        "| natures | " + " | ".join(", ".join(sorted(rules[o].natures)) for o in organisms) + " |"
    )
    lines.append("| employees | " + " | ".join(
        "all" if rules[o].having is None else "with " + ", ".join(sorted(rules[o].having or ()))
        for o in organisms
    ) + " |")  # fmt: skip
    for block in blocks:
        cells = []
        for organism in organisms:
            rule = rules[organism].blocks.get(block)
            if rule is None:
                cells.append("")
                continue
            cell = rule.where.describe() if rule.where else "✓"
            if rule.rubrics is not None:
                cell += f" (rubrics {', '.join(sorted(r[11:] for r in rule.rubrics))})"
            cells.append(cell)
        lines.append(f"| {block} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m registry.dsn.entitlement: the README's table
    print(entitlement_table(load_rules()), end="")
