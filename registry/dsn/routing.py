"""Routing a DSN: each organism gets its share, exactly what registry/dsn/entitlement.py's rules
entitle it to, and nothing of anyone else's.

The router listens to the file's one reading (registry/dsn/reader.py `walk`), alongside
validation and relations, so it routes the very structure that was validated. It decides each
instance outside an employee as soon as its own rubrics are read, and each employee (S21.G00.30
with everything under it) once the employee is read whole, since who receives an employee
depends on blocks that come after its identity (its affiliations, its pension scheme). Memory
holds one employee, never the file.

A share holds, for each entitled instance, its ancestors up to the envoi reduced to their
identifying rubrics, then the instance; each envoi of a share ends with S90 totals counted on
the share. An organism that is entitled to nothing of a file gets no share at all.

What the router refuses (its `anomalies`, blocking): a declaration of a nature nobody receives,
an identifier (an adhesion's S21.G00.15.005, an affiliation's S21.G00.70.012...) given twice in
its scope, so that a reference to it could name either, and a reference to an identifier that
is not there, whose data would reach nobody.
"""

from __future__ import annotations

import hashlib
import pickle
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from registry.dsn.entitlement import (
    ENVOI,
    INDIVIDUAL,
    Identification,
    OrganismRules,
    Required,
    RoutingRuleError,
    load_identification,
    load_rules,
    references,
)
from registry.dsn.reader import (
    Anomaly,
    BlockInstance,
    BlockListener,
    RubricLine,
    block_ancestors,
    walk,
)

__all__ = ["Router", "RoutingListener", "RoutingRuleError", "Share", "load_rules"]
_DECLARATION = "S20.G00.05"
# What the router keeps of what it refuses (it counts the rest): a file of bad lines must not
# cost memory in proportion.
MAX_REFUSALS = 1000
# The lines of one employee the router holds at most (an employee is decided once read whole):
# more is refused, a bound on the memory one file can take.
MAX_EMPLOYEE_LINES = 100_000


# Lines a share gathers before it encodes them and writes them out (one write per batch, not
# per instance: an employee is written as a few dozen instances to each of four to six shares).
_WRITE_LINES = 1024


@dataclass
class Share:
    """What one organism gets of one deposit, as it is written; its stream is opened with its
    first line (an organism entitled to nothing gets no stream at all). Lines are gathered and
    written by the batch: `flush` writes what is gathered (the router flushes every share at
    the end of the file, before `size` and `digest` are read)."""

    organism: str
    opener: Callable[[str], BinaryIO]
    out: BinaryIO | None = None
    lines: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    size: int = 0
    envoi_lines: int = 0
    envoi_declarations: int = 0
    emitted: set[int] = field(default_factory=set)  # id() of the instances already written
    pending: list[str] = field(default_factory=list)  # texts of one line or more
    pending_lines: int = 0

    @property
    def concerned(self) -> bool:
        """True when the organism is entitled to something of the file."""
        return self.lines > 0

    def write(self, texts: list[str]) -> None:
        """Appends rubric lines, each as `_text` wrote it."""
        if not texts:
            return
        self.pending.extend(texts)
        self._count(len(texts))

    def write_text(self, text: str, lines: int) -> None:
        """Appends `lines` rubric lines written as one text."""
        self.pending.append(text)
        self._count(lines)

    def _count(self, lines: int) -> None:
        self.lines += lines
        self.envoi_lines += lines
        self.pending_lines += lines
        if self.pending_lines >= _WRITE_LINES:
            self.flush()

    def flush(self) -> None:
        """Writes out the lines gathered."""
        if not self.pending:
            return
        encoded = "".join(self.pending).encode("iso-8859-1")
        self.pending.clear()
        self.pending_lines = 0
        if self.out is None:
            self.out = self.opener(self.organism)
        self.out.write(encoded)
        self.digest.update(encoded)
        self.size += len(encoded)


def _texts(instance: BlockInstance) -> list[str]:
    """An instance's lines as a share holds them."""
    return [f"{line.rubric},'{line.value}'\r\n" for line in instance.lines]


# Evaluates the conditions of `required` (none of them names an organism or refers).
_NOBODY = OrganismRules("", frozenset(), frozenset(), None, {})


def _chain(block: str) -> tuple[str, ...]:
    return (block, *(block_ancestors(block) or ()))


def _scope_block(referrer: str, target: str) -> str:
    """The nearest block both are under (or are): where an identifier is unique."""
    targets = _chain(target)
    return next((block for block in _chain(referrer) if block in targets), "")


def _ancestor(instance: BlockInstance, block: str) -> BlockInstance | None:
    node: BlockInstance | None = instance
    while node is not None and node.block != block:
        node = node.parent
    return node


def _inside_individual(instance: BlockInstance) -> bool:
    return instance.block == INDIVIDUAL or INDIVIDUAL in instance.ancestors


@dataclass(frozen=True, slots=True)
class _Reference:
    """A rubric of `block` that names the identifier `target` unique within `scope`."""

    rubric: str
    target: str
    scope: str


class RoutingListener(BlockListener):
    """Writes each organism's share as the file is read; `shares` are those of the organisms
    concerned once the file is read, `anomalies` what the router refuses (`unread`: what the
    reading could not read or place, which validation refuses too)."""

    def __init__(
        self,
        rules: dict[str, OrganismRules],
        identification: Identification,
        open_share: Callable[[str], BinaryIO],
    ) -> None:
        self.rules = rules
        self.identification = identification
        self.all_shares = {code: Share(code, open_share) for code in rules}
        self.anomalies: list[Anomaly] = []
        # What the reading itself could not read or place (validation reports it too).
        self.unread: list[Anomaly] = []
        self.refusals_not_kept = 0
        self.employee_lines = 0
        self.required: dict[str, list[Required]] = {}
        for required in identification.required:
            self.required.setdefault(required.block, []).append(required)
        self.nature = ""
        # id(instance) -> organisms entitled to it (instances outside employees, while open).
        self.decided: dict[int, frozenset[str]] = {}
        # id(scope instance) -> (organism, target rubric) -> identifiers it is entitled to.
        self.entitled_ids: dict[int, dict[tuple[str, str], set[str]]] = {}
        # id(scope instance) -> target rubric -> identifier given -> the organisms entitled to
        # the instance that gave it (None until decided).
        self.given_ids: dict[int, dict[str, dict[str, frozenset[str] | None]]] = {}
        self.employee: list[BlockInstance] | None = None
        # The organisms entitled to each instance of the employee decided last (by id()).
        self.last_entitled: dict[int, set[str]] = {}
        # Each organism's lookup of the identifiers it is entitled to (made once, not per call).
        self.lookups = {code: self._lookup(code) for code in rules}
        self.references: dict[str, list[_Reference]] = {}
        self.targets: dict[str, set[str]] = {}  # block -> its rubrics that are referred to
        self.scopes: dict[str, str] = {}  # target rubric -> its scope block
        for organism in rules.values():
            for rule in organism.blocks.values():
                for where in references(rule.where):
                    scope = _scope_block(rule.block, where.to[:10])
                    reference = _Reference(where.rubric, where.to, scope)
                    if reference not in self.references.setdefault(rule.block, []):
                        self.references[rule.block].append(reference)
                    self.targets.setdefault(where.to[:10], set()).add(where.to)
                    if self.scopes.setdefault(where.to, scope) != scope:
                        raise RoutingRuleError(f"{where.to} is referred to from two scopes")

    @property
    def shares(self) -> list[Share]:
        """The shares of the organisms concerned."""
        return [share for share in self.all_shares.values() if share.concerned]

    # The reading's events.

    def _keep(self, into: list[Anomaly], anomaly: Anomaly) -> None:
        if len(self.unread) + len(self.anomalies) < MAX_REFUSALS:
            into.append(anomaly)
        else:
            self.refusals_not_kept += 1

    def fault(self, fault: Anomaly) -> None:
        """A line the reading could not place: the file is not routed."""
        self._keep(self.unread, fault)

    def line(self, item: RubricLine) -> None:
        """A line that could not be read: the file is not routed. Counts an employee's lines."""
        if item.problem:
            problem = Anomaly(item.line, item.rubric, "NEODES-SYNTAX", True, item.problem)
            self._keep(self.unread, problem)
        if self.employee is not None:
            self.employee_lines += 1
            if self.employee_lines > MAX_EMPLOYEE_LINES:
                self._keep(self.anomalies, Anomaly(
                    item.line, item.rubric, "INTEROPS-ROUTING-EMPLOYEE-SIZE", True,
                    f"an employee holds more than {MAX_EMPLOYEE_LINES} lines",
                ))  # fmt: skip
                self.employee = None  # forgotten: the file is refused

    def opened(self, instance: BlockInstance) -> None:
        """An instance's parent has all its own rubrics: decide the parent (outside employees);
        gather an employee's instances."""
        if instance.block == INDIVIDUAL:
            self.employee = [instance]
            self.employee_lines = 0
        elif INDIVIDUAL in instance.ancestors:
            if self.employee is None:  # an employee too large, already refused
                return
            self.employee.append(instance)
            return
        if instance.parent is not None:
            self._decide(instance.parent)

    def closed(self, instance: BlockInstance) -> None:
        """Decides what is still undecided, writes the envoi's totals, forgets the instance."""
        if instance.block == INDIVIDUAL:
            if self.employee is not None:
                self._decide_employee(self.employee)
            self.employee = None
            return
        if _inside_individual(instance):
            return
        self._decide(instance)
        key = id(instance)
        if instance.block == ENVOI:
            for share in self.all_shares.values():
                if key in share.emitted:
                    self._totals(share)
        self._forget([instance])

    def refusals(self) -> int:
        """How many refusals so far (kept or only counted)."""
        return len(self.unread) + len(self.anomalies) + self.refusals_not_kept

    def end(self) -> None:
        """The file is read: every share written out."""
        for share in self.all_shares.values():
            share.flush()

    # Decisions.

    def _forget(self, instances: Iterable[BlockInstance]) -> None:
        for instance in instances:
            key = id(instance)
            self.decided.pop(key, None)
            self.entitled_ids.pop(key, None)
            self.given_ids.pop(key, None)
            for share in self.all_shares.values():
                share.emitted.discard(key)

    def _decide(self, instance: BlockInstance) -> None:
        key = id(instance)
        if key in self.decided or _inside_individual(instance):
            return
        if instance.block == _DECLARATION:
            self._declaration(instance)
        self._give_ids(instance)
        entitled = frozenset(
            code for code, rules in self.rules.items()
            if self._entitled(code, rules, instance)
        )  # fmt: skip
        self.decided[key] = entitled
        self._given_to(instance, entitled)
        for code in entitled:
            self._remember(code, instance)
            self._write(self.all_shares[code], self.rules[code], instance)

    def _decide_employee(self, employee: list[BlockInstance]) -> None:
        for instance in employee:
            self._give_ids(instance)
        entitled: dict[int, set[str]] = {id(instance): set() for instance in employee}
        targets = self.targets
        for code, rules in self.rules.items():
            if INDIVIDUAL not in rules.blocks or self.nature not in rules.natures:
                continue
            passed = self._passed(code, rules, employee)
            having = rules.having
            if having is not None and not any(
                instance.block in having and id(instance) in passed for instance in employee
            ):
                continue  # not this organism's employee: what it remembered dies with him
            for key in passed:
                entitled[key].add(code)
        self.last_entitled = entitled
        for instance in employee:
            if instance.block in targets:
                self._given_to(instance, frozenset(entitled[id(instance)]))
        texts: dict[int, list[str]] = {}  # each instance's lines, written to several shares
        for instance in employee:
            for code in sorted(entitled[id(instance)]):
                share = self.all_shares[code]
                self._write(share, self.rules[code], instance, texts)
        self._forget(employee)

    def _passed(self, code: str, rules: OrganismRules, employee: list[BlockInstance]) -> set[int]:
        """The employee's instances the organism is entitled to, the identifiers they give
        remembered."""
        passed: set[int] = set()
        targets = self.targets
        for instance in employee:
            if self._entitled(code, rules, instance, passed):
                passed.add(id(instance))
                if instance.block in targets:
                    self._remember(code, instance)
        return passed

    def _entitled(
        self,
        code: str,
        rules: OrganismRules,
        instance: BlockInstance,
        passed: Collection[int] = (),
    ) -> bool:
        """Whether the organism `code` is entitled to the instance: its block listed, the
        declaration's nature too, its parent passed when the parent's block is listed (found
        the organism's outside employees, or among `passed`, the employee's instances already
        found its), and its condition holds."""
        rule = rules.blocks.get(instance.block)
        if rule is None or self.nature not in rules.natures:
            return False
        parent = instance.parent
        if (
            parent is not None
            and parent.block in rules.blocks
            and id(parent) not in passed
            and code not in self.decided.get(id(parent), ())
        ):
            return False
        return rule.where is None or rules.holds(rule.where, instance, self.lookups[code])

    def _lookup(self, organism: str) -> Callable[[str, BlockInstance], Collection[str]]:
        def found(target: str, instance: BlockInstance) -> Collection[str]:
            scope = _ancestor(instance, self.scopes.get(target, ""))
            if scope is None:
                return ()
            return self.entitled_ids.get(id(scope), {}).get((organism, target), ())

        return found

    def _ids(self, instance: BlockInstance) -> Iterator[tuple[str, str, BlockInstance]]:
        """(target rubric, identifier, scope instance) of each identifier the instance gives."""
        for target in self.targets.get(instance.block, ()):
            value = instance.value(target)
            scope = _ancestor(instance, self.scopes[target])
            if value is not None and scope is not None:
                yield target, value, scope

    def _remember(self, organism: str, instance: BlockInstance) -> None:
        for target, value, scope in self._ids(instance):
            ids = self.entitled_ids.setdefault(id(scope), {})
            ids.setdefault((organism, target), set()).add(value)

    def _give_ids(self, instance: BlockInstance) -> None:
        """Notes the identifiers an instance gives; refuses its references to none given, and
        an instance without a rubric it needs to reach its organism."""
        self._check_required(instance)
        for target, value, scope in self._ids(instance):
            given = self.given_ids.setdefault(id(scope), {}).setdefault(target, {})
            given.setdefault(value, None)
        for reference in self.references.get(instance.block, ()):
            named = instance.value(reference.rubric)
            within = _ancestor(instance, reference.scope)
            if named is None or within is None:
                continue
            if named not in self.given_ids.get(id(within), {}).get(reference.target, {}):
                self._refuse(instance, reference.rubric, "INTEROPS-ROUTING-REFERENCE", (
                    f"{reference.rubric} refers to no {reference.target} given before it in "
                    f"its {reference.scope}: its data would reach nobody"
                ))  # fmt: skip

    def _given_to(self, instance: BlockInstance, organisms: frozenset[str]) -> None:
        """Refuses an identifier given twice in its scope by instances that go to different
        organisms: what refers to it could be either's."""
        for target, value, scope in self._ids(instance):
            given = self.given_ids[id(scope)][target]
            earlier = given.get(value)
            if earlier is not None and earlier != organisms:
                self._refuse(instance, target, "INTEROPS-ROUTING-ID", (
                    f"identifier {target} is given twice in the same {self.scopes[target]}, "
                    "for different organisms: what refers to it could be either's"
                ))  # fmt: skip
            given[value] = organisms

    def _declaration(self, instance: BlockInstance) -> None:
        self.nature = instance.value("S20.G00.05.001") or ""
        refused = self.identification.refused_natures.get(self.nature)
        if refused is None and not any(self.nature in r.natures for r in self.rules.values()):
            refused = "no organism receives it"
        if refused is not None:
            self._refuse(instance, "S20.G00.05.001", "INTEROPS-ROUTING-NATURE", (
                f"a declaration of nature {self.nature} is not routed: {refused}"
            ))  # fmt: skip

    def _refuse(self, instance: BlockInstance, rubric: str, rule: str, message: str) -> None:
        line = next((item.line for item in instance.lines if item.rubric == rubric), instance.line)
        self._keep(self.anomalies, Anomaly(line, rubric, rule, True, message))

    def _check_required(self, instance: BlockInstance) -> None:
        for required in self.required.get(instance.block, ()):
            if required.where is not None and not _NOBODY.holds(
                required.where, instance, lambda target, scope: ()
            ):
                continue
            for rubric in required.rubrics:
                if instance.value(rubric) is None:
                    self._refuse(instance, rubric, "INTEROPS-ROUTING-REQUIRED", (
                        f"{rubric} is missing: {required.why}; without it, what the block "
                        "carries would reach nobody"
                    ))  # fmt: skip

    # Writing.

    def _write(
        self,
        share: Share,
        rules: OrganismRules,
        instance: BlockInstance,
        texts: dict[int, list[str]] | None = None,
    ) -> None:
        """Writes an instance to a share, after those of its ancestors the share lacks (their
        identifying rubrics); `texts` holds the instances' lines as already written."""
        if texts is None:
            texts = {}
        path = self._lacking(share, instance.parent if instance.block != ENVOI else None)
        if path is None:
            return  # cannot be placed: an ancestor has nothing to identify it
        self._emit_path(share, path, texts)
        rule = rules.blocks[instance.block]
        self._emit(share, instance, rule.rubrics, texts)

    def _lacking(self, share: Share, node: BlockInstance | None) -> list[BlockInstance] | None:
        """`node` and its ancestors up to the envoi that the share lacks, nearest first; None
        when one of them has no identifying rubrics (what is under it cannot be placed)."""
        path: list[BlockInstance] = []
        identifying = self.identification.rubrics
        while node is not None and id(node) not in share.emitted:
            if node.block not in identifying:
                return None
            path.append(node)
            node = node.parent if node.block != ENVOI else None
        return path

    def _emit_path(
        self, share: Share, path: list[BlockInstance], texts: dict[int, list[str]]
    ) -> None:
        """Writes the ancestors `_lacking` found (their identifying rubrics), farthest first."""
        identifying = self.identification.rubrics
        for ancestor in reversed(path):
            self._emit(share, ancestor, identifying[ancestor.block], texts)

    @staticmethod
    def _emit(
        share: Share,
        instance: BlockInstance,
        allowed: frozenset[str] | None,
        texts: dict[int, list[str]],
    ) -> None:
        if instance.block == ENVOI:
            share.envoi_lines = 0
            share.envoi_declarations = 0
        elif instance.block == _DECLARATION:
            share.envoi_declarations += 1
        key = id(instance)
        written = texts.get(key)
        if written is None:
            written = texts[key] = _texts(instance)
        if allowed is None:
            share.write(written)
        else:
            share.write([
                text for line, text in zip(instance.lines, written, strict=True)
                if line.rubric in allowed
            ])  # fmt: skip
        share.emitted.add(key)

    @staticmethod
    def _totals(share: Share) -> None:
        share.write([
            f"S90.G00.90.001,'{share.envoi_lines + 2}'\r\n",
            f"S90.G00.90.002,'{max(share.envoi_declarations, 1)}'\r\n",
        ])  # fmt: skip


class Router:
    """Splits a DSN on its own (the pipeline routes within the one reading of a deposit):
    `open_share(organism)` gives the stream a share is written to, called for the organisms
    concerned only; `route` returns their shares."""

    def __init__(
        self, rules: Iterable[OrganismRules], identification: Identification | None = None
    ) -> None:
        self.rules = {r.organism: r for r in rules}
        self.identification = identification or load_identification()
        # Names these rules where routings of planned individuals are kept (on the plans, which
        # outlive a router, and a router sent to a worker process arrives as a copy):
        # registry/dsn/planned_routes.py. Also names the router a worker process keeps.
        self.memo_key = secrets.token_hex(8)
        self._pickled: bytes | None = None

    def __reduce__(self) -> tuple[Callable[[str, bytes], Router], tuple[str, bytes]]:
        """Pickled once, and unpickled once per process: a router goes with every deposit
        sent to a reading worker (server/dsn/reading_pool.py), whose process keeps it."""
        if self._pickled is None:
            self._pickled = pickle.dumps((list(self.rules.values()), self.identification))
        return _received, (self.memo_key, self._pickled)

    def listener(self, open_share: Callable[[str], BinaryIO]) -> RoutingListener:
        """A listener for one file's reading."""
        return RoutingListener(self.rules, self.identification, open_share)

    def route(
        self, stream: BinaryIO | Iterable[bytes], open_share: Callable[[str], BinaryIO]
    ) -> list[Share]:
        """Reads the file and writes each organism's share; returns those concerned. Raises
        ValueError when the router refuses the file (what it refuses: RoutingListener)."""
        listener = self.listener(open_share)
        walk(stream, listener)
        refused = sorted([*listener.unread, *listener.anomalies], key=lambda a: a.line)
        if refused:
            raise ValueError(f"line {refused[0].line}: {refused[0].message}")
        return listener.shares


# The routers a process received (a reading worker: by memo_key), the latest last.
_RECEIVED: dict[str, Router] = {}
_RECEIVED_AT_MOST = 8


def _received(memo_key: str, pickled: bytes) -> Router:
    router = _RECEIVED.get(memo_key)
    if router is None:
        rules, identification = pickle.loads(pickled)  # noqa: S301 (the node's own router)
        router = Router(rules, identification)
        router.memo_key, router._pickled = memo_key, pickled
        while len(_RECEIVED) >= _RECEIVED_AT_MOST:
            del _RECEIVED[next(iter(_RECEIVED))]
        _RECEIVED[memo_key] = router
    return router
