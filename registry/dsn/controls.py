"""The norm's control rules as data, compiled per norm version into one check function per block.

The rules live in registry/dsn/control_rules/*.json (how to write one: that folder's README.md).
Each names the workbook's rule (`rubric` + `id`, e.g. S21.G00.06.005 + CCH-11, whose French
message the norm tables hold) or one of the format's own (`NEODES-*`, with its French message
`fr`), the block instance it is checked on (`scope`, by default the rubric's block) once that
instance and its children are read, an optional `when` condition, the `require`d condition, the
natures and norm versions it applies to, and its English message. `load_controls(version)`
turns the rules that apply to a version into Python source, one function per scope block,
compiled once: checking a block is one call that evaluates only that block's rules.

What a condition sees, from the instance being checked:
- its own rubrics and those of its ancestors (their lines come before it): one value or none;
- the rubrics of its descendants, and of blocks before it under a common ancestor (an
  establishment's adhesions seen from an individual's affiliation): every value seen so far, so
  `present`, `in`, `subset`, `unique`, `count` read them as a set;
- the declaration's nature and month.
A comparison (`date`, `num`, `len`) with a missing or malformed operand holds: presence and data
types are rules of their own.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from stdnum import bic, iban
from stdnum.fr import nir as stdnum_nir

from registry.dsn.norm import Norm, load
from registry.rcd.identifiers import check_siren, check_siret

RULES_PACKAGE = "registry.dsn"
RULES_FOLDER = "control_rules"
# The operators `cond` writes itself; `_other` writes the rest.
_BASIC = frozenset({
    "and", "or", "not", "implies", "present", "absent", "in", "not_in", "eq", "ne", "date", "num",
    "text",
})  # fmt: skip
_RUBRIC_ID = re.compile(r"S\d\d\.G\d\d\.\d\d\.\d{3}")
_OPS = {"<": "<", "<=": "<=", "=": "==", "==": "==", "!=": "!=", ">=": ">=", ">": ">"}


class RuleError(ValueError):
    """A rule of the data is not well formed (raised when a norm version's rules compile)."""


@dataclass(frozen=True, slots=True)
class Control:
    """One compiled rule."""

    rubric: str
    id: str
    scope: str
    blocking: bool
    message_fr: str
    message_en: str
    natures: frozenset[str] | None
    # Whether it reads other instances than the scope and its ancestors (blocks below it, or
    # before it under a common ancestor): what a misplaced block makes unreliable.
    across: bool = False


# A scope block's compiled check: (own values, ancestors' values by block, own facts, facts of
# ancestors by block, nature, month's first and last day as YYYYMMDD) -> indexes of failed rules.
Check = Callable[
    [dict[str, str], dict[str, dict[str, str]], dict[str, list[str]],
     dict[str, dict[str, list[str]]], str, tuple[str | None, str | None]],
    list[int],
]  # fmt: skip
# A shape's compiled rules (compile_shape): (values, ancestors' values by block, their facts by
# block, nature, month) -> True when every rule holds.
ShapeCheck = Callable[
    [tuple[str, ...], dict[str, dict[str, str]], dict[str, dict[str, list[str]]], str,
     tuple[str | None, str | None]],
    bool,
]  # fmt: skip


@dataclass
class ControlSet:
    """The rules of one norm version, ready to run."""

    version: str
    controls: list[Control] = field(default_factory=list)
    # scope block -> its rules' check
    checks: dict[str, Check] = field(default_factory=dict)
    # What a closing instance must record in its ancestors' facts: its block -> (fact key, the
    # rubric whose value is recorded or None to count the instance, ancestor blocks to record in)
    facts: dict[str, tuple[tuple[str, str | None, frozenset[str]], ...]] = field(
        default_factory=dict
    )
    # The rules by scope block, for compile_shape: (index into `controls`, the rule).
    rules: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    norm: Norm | None = None


def rule_files() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every rule file's name and its rules."""
    folder = resources.files(RULES_PACKAGE).joinpath(RULES_FOLDER)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield entry.name, json.loads(entry.read_text("utf-8"))


def all_rules() -> list[dict[str, Any]]:
    """Every rule of the data, enforced or not, each with the name of its file under `file`."""
    found = []
    for name, rules in rule_files():
        for rule in rules:
            found.append({**rule, "file": name})
    return found


# Helpers the generated code calls.


@functools.lru_cache(maxsize=16384)
def date_key(value: str | None) -> str | None:
    """DDMMYYYY as YYYYMMDD (comparable as text); None when absent or no calendar date."""
    if value is None or len(value) != 8 or not (value.isascii() and value.isdigit()):
        return None
    day, month, year = int(value[:2]), int(value[2:4]), int(value[4:])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return value[4:] + value[2:4] + value[:2]


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _key_ok(kind: str, value: str | None, other: str | None = None) -> bool:
    """True when the identifier's check digits hold (or when it is missing)."""
    if value is None:
        return True
    if kind == "siren":
        return check_siren(value).ok
    if kind == "siret":  # value: SIREN, other: NIC
        return other is None or not check_siren(value).ok or check_siret(value + other).ok
    if kind == "nic":  # value: NIC, other: SIREN
        return other is None or not check_siren(other).ok or check_siret(other + value).ok
    if kind == "siret14":  # a whole SIRET in one rubric
        return check_siret(value).ok
    if kind == "siren_of_siret":  # the SIREN of a SIRET held in one rubric
        return check_siren(value[:9]).ok
    if kind == "nir":
        return stdnum_nir.is_valid(value)
    if kind == "iban":
        return iban.is_valid(value)
    if kind == "bic":
        return bic.is_valid(value)
    if kind == "bban":  # a French IBAN's BBAN: the RIB key
        return not value.startswith("FR") or _rib_key_ok(value[4:])
    if kind == "date":
        return date_key(value) is not None
    if kind == "birthdate":  # a calendar date, or 99 for an unknown day or month
        return _birth_date_ok(value)
    raise RuleError(f"unknown key kind {kind!r}")


_RIB_LETTERS = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "12345678912345678923456789")


def _rib_key_ok(bban: str) -> bool:
    """The key of a French RIB (bank 5, branch 5, account 11, key 2), letters as the norm of the
    Banque de France transcribes them."""
    digits = bban.upper().translate(_RIB_LETTERS)
    if len(digits) != 23 or not (digits.isascii() and digits.isdigit()):
        return False
    bank, branch, account, key = int(digits[:5]), int(digits[5:10]), int(digits[10:21]), digits[21:]
    return 97 - (89 * bank + 15 * branch + 3 * account) % 97 == int(key)


def _birth_date_ok(value: str) -> bool:
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        return False
    day, month = value[:2], value[2:4]
    if month == "99":
        return day == "99" or 1 <= int(day) <= 31
    if day == "99":
        return 1 <= int(month) <= 12
    return date_key(value) is not None


def _concat(first: str | None, second: str | None) -> str | None:
    return None if first is None or second is None else first + second


def _sum(values: list[str] | None) -> float | None:
    if not values:
        return 0.0
    total = 0.0
    for value in values:
        number = _number(value)
        if number is None:
            return None
        total += number
    return total


def _unique(values: list[str] | None) -> bool:
    return values is None or len(values) == len(set(values))


_HELPERS: dict[str, Any] = {
    "_dk": date_key,
    "_num": _number,
    "_key": _key_ok,
    "_unique": _unique,
    "_sum": _sum,
    "_concat": _concat,
    "_E": {},  # an ancestor a misplaced block lacks (read only)
}


@functools.cache
def code_table(name: str) -> frozenset[str]:
    """An external code list the norm references, where its licence lets it ship: `iso3166`,
    the ISO 3166-1 alpha-2 country codes (from pycountry, the Debian iso-codes data)."""
    if name == "iso3166":
        import pycountry  # loaded by the first rule that needs it

        return frozenset(country.alpha_2 for country in pycountry.countries)
    raise RuleError(f"unknown code table {name!r}")


class _Compiler:
    """Turns one rule's conditions into a Python expression."""

    def __init__(self, norm: Norm, scope: str, constants: dict[str, Any]) -> None:
        self.norm = norm
        self.scope = scope
        self.constants = constants
        self.scope_ancestors = self._ancestors(scope)
        # (fact key, rubric or None, block whose facts hold it) this rule needs recorded
        self.needs: set[tuple[str, str | None, str]] = set()
        self.temporaries = [0]

    def _ancestors(self, block: str) -> list[str]:
        chain = []
        spec = self.norm.blocks.get(block)
        while spec is not None and spec.parent is not None:
            chain.append(spec.parent)
            spec = self.norm.blocks.get(spec.parent)
        return chain

    def _temporary(self) -> str:
        name = f"t{self.temporaries[0]}"
        self.temporaries[0] += 1
        return name

    def _const(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def holder_of(self, block: str) -> str:
        """Where the facts of `block` are gathered, seen from the scope: the scope itself for a
        descendant, else the nearest common ancestor."""
        chain = [block, *self._ancestors(block)]
        if self.scope in chain:
            return self.scope
        for ancestor in self.scope_ancestors:
            if ancestor in chain:
                return ancestor
        raise RuleError(f"block {block} and scope {self.scope} share no ancestor")

    def ref(self, rubric: str) -> tuple[str, bool]:
        """Python for a rubric's value(s): (expression, True when it is a list of values)."""
        if not isinstance(rubric, str) or rubric not in self.norm.rubrics:
            raise _Missing(rubric)
        block = rubric[:10]
        if block == self.scope:
            return f"V.get({rubric!r})", False
        if block in self.scope_ancestors:
            return f"A.get({block!r}, _E).get({rubric!r})", False
        holder = self.holder_of(block)
        self.needs.add((rubric, rubric, holder))
        if holder == self.scope:
            return f"F.get({rubric!r})", True
        return f"FA.get({holder!r}, _E).get({rubric!r})", True

    def count(self, block: str) -> str:
        """Python for the number of instances of `block` below the scope."""
        self.needs.add((f"#{block}", None, self.scope))
        return f"len(F.get({('#' + block)!r}, ()))"

    def known(self, expression: str) -> bool | None:
        """Whether the value(s) an expression of `ref` reads are known to be there (True) or
        not (False) when the rules are compiled; None when only a file can tell."""
        del expression
        return None

    def scalar(self, rubric: str, what: str) -> str:
        expression, many = self.ref(rubric)
        if many:
            raise RuleError(f"{what} needs one value; {rubric} is not of the scope or above")
        return expression

    def operand(self, item: Any, kind: str) -> str:
        """A comparison's operand: a rubric, MONTH_START / MONTH_END, or a literal."""
        if item == "MONTH_START":
            return "M[0]"
        if item == "MONTH_END":
            return "M[1]"
        if kind in ("date", "num") and isinstance(item, str) and _RUBRIC_ID.fullmatch(item):
            value = self.scalar(item, kind)
            if value == "None":
                return "None"
            return f"_dk({value})" if kind == "date" else f"_num({value})"
        if kind == "date" and isinstance(item, str):
            return repr(date_key(item))
        if kind == "num" and isinstance(item, int | float):
            return repr(float(item))
        if kind == "num" and isinstance(item, list) and len(item) == 2 and item[0] == "sum":
            expression, many = self.ref(item[1])
            if not many:
                raise RuleError(f"sum {item[1]}: not below the scope {self.scope}")
            return f"_sum({expression})"
        if kind == "text" and isinstance(item, str) and _RUBRIC_ID.fullmatch(item):
            return self.scalar(item, kind)
        if kind == "text" and isinstance(item, list) and len(item) == 3 and item[0] == "concat":
            first, second = self.scalar(item[1], "concat"), self.scalar(item[2], "concat")
            if "None" in (first, second):
                return "None"
            return f"_concat({first}, {second})"
        if kind == "text" and isinstance(item, str):
            return repr(item)
        raise RuleError(f"bad {kind} operand {item!r}")

    def cond(self, node: Any) -> str:  # noqa: PLR0912 - one case per operator
        """Python for a condition."""
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise RuleError(f"a condition is a list [operator, ...]: {node!r}")
        op, *args = node
        if op not in _BASIC:
            return self._other(op, args)
        if op in ("and", "or"):
            return _fold(op, [self.cond(arg) for arg in args])
        if op == "not":
            return _negate(self.cond(args[0]))
        if op == "implies":
            return _fold("or", [_negate(self.cond(args[0])), self.cond(args[1])])
        if op in ("present", "absent"):
            expression, many = self.ref(args[0])
            known = self.known(expression)
            if known is not None:
                return repr(known == (op == "present"))
            if expression == f"V.get({args[0]!r})":  # the scope's own rubric: a dict lookup
                test = f"({args[0]!r} in V)"
            else:
                test = f"bool({expression})" if many else f"({expression} is not None)"
            return test if op == "present" else f"(not {test})"
        if op in ("in", "not_in", "eq", "ne"):
            values = [args[1]] if op in ("eq", "ne") else args[1]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise RuleError(f"{op} takes text values: {node!r}")
            expression, many = self.ref(args[0])
            if self.known(expression) is False:
                return repr(op in ("not_in", "ne"))
            allowed = self._const(frozenset(values))
            if many:
                disjoint = f"{allowed}.isdisjoint({expression} or ())"
                return f"(not {disjoint})" if op in ("in", "eq") else f"({disjoint})"
            if op in ("in", "eq"):
                return f"({expression} in {allowed})"
            return f"({expression} not in {allowed})"
        if op in ("date", "num", "text"):
            left, comparator, right = args
            if comparator not in _OPS:
                raise RuleError(f"bad comparator {comparator!r}")
            # Inline, as it runs for every instance: holds when an operand is missing.
            before, after = self.operand(left, op), self.operand(right, op)
            if "None" in (before, after):
                return "True"
            first, second = self._temporary(), self._temporary()
            return (
                f"(({first} := {before}) is None or ({second} := {after}) is None or "
                f"{first} {_OPS[comparator]} {second})"
            )
        raise RuleError(f"unknown operator {op!r}")

    def _other(self, op: str, args: list[Any]) -> str:  # noqa: PLR0912 - one per operator
        """Python for the operators on lengths, patterns, keys, blocks, sets and tables."""
        if op in ("len", "match", "key", "startswith", "in_table"):
            rubric = args[1] if op == "key" else args[0]
            if self.scalar(rubric, op) == "None":
                return "True"  # holds when the value is missing
        if op == "len":
            rubric, comparator, size = args
            value, held = self.scalar(rubric, "len"), self._temporary()
            return f"(({held} := {value}) is None or len({held}) {_OPS[comparator]} {int(size)})"
        if op == "match":
            pattern = self._const(re.compile(args[1]))
            value = self.scalar(args[0], "match")
            return f"({value} is None or {pattern}.fullmatch({value}) is not None)"
        if op == "key":
            kind, rubric, *other = args
            value = self.scalar(rubric, "key")
            second = self.scalar(other[0], "key") if other else "None"
            return f"_key({kind!r}, {value}, {second})"
        if op in ("has", "count"):
            block = args[0]
            if block not in self.norm.blocks:
                raise _Missing(block)
            holder = self.holder_of(block)
            if holder != self.scope:
                raise RuleError(f"{op} {block}: not a descendant of the scope {self.scope}")
            count = self.count(block)
            if op == "has":
                return f"({count} > 0)"
            comparator, size = args[1], args[2]
            return f"({count} {_OPS[comparator]} {int(size)})"
        if op == "subset":
            inner, inner_many = self.ref(args[0])
            outer, outer_many = self.ref(args[1])
            left = inner if inner_many else f"([] if {inner} is None else [{inner}])"
            right = outer if outer_many else f"([] if {outer} is None else [{outer}])"
            return f"set({left} or ()).issubset({right} or ())"
        if op == "unique":
            expression, many = self.ref(args[0])
            if not many:
                raise RuleError(f"unique {args[0]}: not below the scope {self.scope}")
            return f"_unique({expression})"
        if op == "startswith":
            value = self.scalar(args[0], "startswith")
            prefixes = self._const(tuple(args[1]))
            return f"({value} is None or {value}.startswith({prefixes}))"
        if op == "in_table":
            table = self._const(code_table(args[1]))
            value = self.scalar(args[0], "in_table")
            return f"({value} is None or {value} in {table})"
        if op == "nature":
            return f"(N in {self._const(frozenset(args[0]))})"
        raise RuleError(f"unknown operator {op!r}")


def _fold(op: str, parts: list[str]) -> str:
    """`and` / `or` of Python conditions, the constant ones folded away."""
    absorbing, neutral = ("False", "True") if op == "and" else ("True", "False")
    if absorbing in parts:
        return absorbing
    kept = [part for part in parts if part != neutral]
    if not kept:
        return neutral
    return kept[0] if len(kept) == 1 else "(" + f" {op} ".join(kept) + ")"


def _negate(part: str) -> str:
    return {"True": "False", "False": "True"}.get(part, f"(not {part})")


class _Missing(RuleError):
    """A rule names a rubric or block that this norm version does not have."""


def _family(rule_id: str) -> str:
    return rule_id.split("-", 1)[0].strip()


def _messages(norm: Norm, rule: dict[str, Any]) -> tuple[str, str]:
    rubric, rule_id = rule["rubric"], rule["id"]
    french = norm.rules.get(rubric, {}).get(rule_id) or rule.get("fr")
    if not french:
        raise RuleError(f"{rubric}/{rule_id}: not a rule of the workbook and no 'fr' message")
    english = rule.get("en")
    if not english:
        raise RuleError(f"{rubric}/{rule_id}: no 'en' message")
    return french.replace("_x000D_", "").strip(), english


def compile_rules(norm: Norm, rules: list[dict[str, Any]]) -> ControlSet:
    """The rules that apply to `norm`'s version, compiled (RuleError when one is malformed)."""
    found = ControlSet(norm.version, norm=norm)
    constants: dict[str, Any] = {}
    bodies: dict[str, list[str]] = {}
    records: dict[str, set[tuple[str, str | None, str]]] = {}
    for rule in rules:
        if "require" not in rule:
            continue  # listed as not enforced, with its reason
        versions = rule.get("versions")
        if versions is not None and norm.version not in versions:
            continue
        rubric = rule["rubric"]
        scope = rule.get("scope", rubric[:10])
        if scope not in norm.blocks:
            raise RuleError(f"{rubric}/{rule['id']}: unknown scope {scope}")
        compiler = _Compiler(norm, scope, constants)
        try:
            require = compiler.cond(rule["require"])
            when = compiler.cond(rule["when"]) if "when" in rule else "True"
        except _Missing as missing:
            if versions is None and norm.version == "P26V01":
                raise RuleError(f"{rubric}/{rule['id']}: {missing.args[0]} not in the norm") from (
                    None
                )
            continue  # a rubric this older version does not have
        except RuleError as error:
            raise RuleError(f"{rubric}/{rule['id']}: {error}") from None
        french, english = _messages(norm, rule)
        family = _family(rule["id"])
        blocking = not rule.get("warning", family == "SIG")
        natures = frozenset(rule["natures"]) if "natures" in rule else None
        index = len(found.controls)
        control = Control(rubric, rule["id"], scope, blocking, french, english, natures,
                          across=bool(compiler.needs))  # fmt: skip
        found.controls.append(control)
        guard = [f"N in {compiler._const(natures)}"] if natures else []
        test = " and ".join([*guard, *([when] if when != "True" else []), f"not {require}"])
        bodies.setdefault(scope, []).append(f"    if {test}:\n        out.append({index})")
        found.rules.setdefault(scope, []).append((index, rule))
        for key, source, holder in compiler.needs:
            block = key[1:] if source is None else source[:10]
            records.setdefault(block, set()).add((key, source, holder))
    _finish(found, norm, constants, bodies, records)
    return found


def _finish(
    found: ControlSet,
    norm: Norm,
    constants: dict[str, Any],
    bodies: dict[str, list[str]],
    records: dict[str, set[tuple[str, str | None, str]]],
) -> None:
    """Compiles the per-block functions and lays out what each block records for the others."""
    lines = []
    for scope, body in bodies.items():
        name = "check_" + scope.replace(".", "_")
        lines.append(f"def {name}(V, A, F, FA, N, M):\n    out = []\n" + "\n".join(body))
        lines.append("    return out\n")
    namespace: dict[str, Any] = {**_HELPERS, **constants}
    exec(compile("\n".join(lines), f"<controls {norm.version}>", "exec"), namespace)  # noqa: S102
    for scope in bodies:
        found.checks[scope] = namespace["check_" + scope.replace(".", "_")]
    grouped: dict[str, dict[tuple[str, str | None], set[str]]] = {}
    for block, items in records.items():
        for key, source, holder in items:
            grouped.setdefault(block, {}).setdefault((key, source), set()).add(holder)
    found.facts = {
        block: tuple((key, source, frozenset(holders)) for (key, source), holders in by.items())
        for block, by in grouped.items()
    }


@functools.cache
def load_controls(version: str) -> ControlSet:
    """The compiled rules of a norm version."""
    return compile_rules(load(version), [rule for _, rules in rule_files() for rule in rules])


NO_MONTH: tuple[str | None, str | None] = (None, None)


class ShapeInstance:
    """What compile_shape needs of one block instance of a known shape of text: how its rules
    read rubrics (`ref`, as _Compiler.ref) and count the instances below it (`count`)."""

    block: str

    def ref(self, compiler: _Compiler, rubric: str) -> tuple[str, bool]:
        """Python for a rubric's value(s), seen from this instance."""
        raise NotImplementedError

    def count(self, block: str) -> int:
        """How many instances of `block` are below this one."""
        raise NotImplementedError


class _ShapeCompiler(_Compiler):
    """A rule compiled for one instance of a known shape: what is there and what is not is
    known, so conditions on presence fold away."""

    def __init__(self, norm: Norm, instance: ShapeInstance, constants: dict[str, Any]) -> None:
        super().__init__(norm, instance.block, constants)
        self.instance = instance

    def ref(self, rubric: str) -> tuple[str, bool]:
        if not isinstance(rubric, str) or rubric not in self.norm.rubrics:
            raise _Missing(rubric)
        return self.instance.ref(self, rubric)

    def count(self, block: str) -> str:
        return str(self.instance.count(block))

    def known(self, expression: str) -> bool | None:
        if expression in ("None", "()"):
            return False
        if expression.startswith(("g[", "(g[")):
            return True
        return None


def compile_shape(controls: ControlSet, instances: list[ShapeInstance]) -> ShapeCheck | None:
    """One function that runs every rule of these instances (a shape of individual, in the order
    they close) on the values of a text of that shape: (values, ancestors' values by block,
    their facts by block, nature, month) -> True when every rule holds. None when some rule
    fails whatever the values (such texts go the reference way, which reports it)."""
    norm = controls.norm
    assert norm is not None
    constants: dict[str, Any] = {}
    body = []
    for instance in instances:
        for index, rule in controls.rules.get(instance.block, ()):
            compiler = _ShapeCompiler(norm, instance, constants)
            require = compiler.cond(rule["require"])
            when = compiler.cond(rule["when"]) if "when" in rule else "True"
            if require == "True" or when == "False":
                continue
            natures = controls.controls[index].natures
            guard = [f"N in {compiler._const(natures)}"] if natures else []
            test = _fold("and", [*guard, when, _negate(require)])
            if test == "True":
                return None
            body.append(f"    if {test}:\n        return False")
    source = "def run(g, A, FA, N, M):\n" + "\n".join(body) + "\n    return True\n"
    namespace: dict[str, Any] = {**_HELPERS, **constants}
    exec(compile(source, "<controls of a shape>", "exec"), namespace)  # noqa: S102
    run: ShapeCheck = namespace["run"]
    return run


def month_bounds(month: str | None) -> tuple[str | None, str | None]:
    """The declared month (S20.G00.05.005, 01MMYYYY) as its first and last day, YYYYMMDD; two
    Nones when it is not a date (comparisons with the month then hold)."""
    first = date_key(month)
    if first is None:
        return NO_MONTH
    year, mm = int(first[:4]), int(first[4:6])
    return (first[:6] + "01", f"{first[:6]}{calendar.monthrange(year, mm)[1]:02d}")


__all__ = [
    "Control",
    "ControlSet",
    "RuleError",
    "ShapeCheck",
    "ShapeInstance",
    "all_rules",
    "compile_rules",
    "compile_shape",
    "date_key",
    "load_controls",
    "month_bounds",
    "rule_files",
]
