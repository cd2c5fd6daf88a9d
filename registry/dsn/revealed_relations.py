"""The relations a DSN reveals, gathered while it is validated: the declarant's SIRET (S10.G00.01),
each declared establishment with the declaration's month (declared links), and each contract of
each employee (employments: establishment, NIR, start and end).

The collector takes each block instance as the reader closes it (children close before their
parents, whose own rubrics are already read), so it keeps no more than the relations themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from registry.dsn.controls import date_key
from registry.dsn.individual_segments import Plan
from registry.dsn.reader import BlockInstance, BlockListener

if TYPE_CHECKING:
    from registry.dsn.planned_walk import PlannedIndividual


@dataclass(frozen=True, slots=True)
class Employment:
    """One contract: YYYYMMDD dates, `end` "" while it runs."""

    siret: str
    nir: str
    start: str
    end: str


@dataclass
class Relations:
    """What one file declares."""

    declarant_siret: str = ""
    # (declared SIRET, period YYYYMM)
    links: set[tuple[str, str]] = field(default_factory=set)
    employments: list[Employment] = field(default_factory=list)


def _ancestor(instance: BlockInstance, block: str) -> BlockInstance | None:
    parent = instance.parent
    while parent is not None and parent.block != block:
        parent = parent.parent
    return parent


def _siret(establishment: BlockInstance | None) -> str:
    if establishment is None or establishment.parent is None:
        return ""
    siren = establishment.parent.value("S21.G00.06.001") or ""
    nic = establishment.value("S21.G00.11.001") or ""
    return siren + nic if len(siren) == 9 and len(nic) == 5 else ""


# What the collector derives from a plan (Plan.derived): per contract of the individual, in the
# order they close, the value positions of its NIR, start and end (False: no end block).
_CONTRACTS = "relations.contracts"
_Contract = tuple[int | None, int | None, int | bool | None]


def _planned_contracts(plan: Plan) -> list[_Contract]:
    """The `closed` logic below, on the plan's instances (closing order, parents known)."""
    ends: dict[int, int | None] = {}  # instance -> position of its end date
    found: list[_Contract] = []
    for position, block in enumerate(plan.blocks):
        parents = plan.parents[position]
        if block == "S21.G00.62" and parents:
            ends[parents[0]] = plan.own[position].get("S21.G00.62.001")
        elif block == "S21.G00.40" and parents and plan.blocks[parents[0]] == "S21.G00.30":
            end = ends.pop(position) if position in ends else False
            found.append((plan.own[parents[0]].get("S21.G00.30.001"),
                          plan.own[position].get("S21.G00.40.001"), end))  # fmt: skip
    return found


class RelationCollector(BlockListener):
    """Listens to the file's reading (`walk`); `relations` holds what it found."""

    def __init__(self) -> None:
        self.relations = Relations()
        self._ends: dict[int, str] = {}

    def closed(self, instance: BlockInstance) -> None:
        """Takes a block instance the reader has just closed."""
        block = instance.block
        if block == "S21.G00.62":
            if instance.parent is not None:
                self._ends[id(instance.parent)] = date_key(instance.value("S21.G00.62.001")) or ""
        elif block == "S21.G00.40":
            self._contract(instance)
        elif block == "S21.G00.11":
            declaration = _ancestor(instance, "S20.G00.05")
            month = date_key(declaration.value("S20.G00.05.005") if declaration else None)
            siret = _siret(instance)
            if siret and month:
                self.relations.links.add((siret, month[:6]))
        elif block == "S10.G00.01":
            siren = instance.value("S10.G00.01.001") or ""
            nic = instance.value("S10.G00.01.002") or ""
            self.relations.declarant_siret = siren + nic

    def individual(self, individual: PlannedIndividual) -> None:
        """Takes a clean individual whole (registry/dsn/planned_walk.py): its contracts, where
        its plan says their rubrics are."""
        plan, values = individual.plan, individual.values
        contracts = plan.derived.get(_CONTRACTS)
        if contracts is None:
            contracts = plan.derived[_CONTRACTS] = _planned_contracts(plan)
        if not contracts:
            return
        siret = _siret(individual.establishment)
        for nir_at, start_at, end_at in contracts:
            nir = "" if nir_at is None else values[nir_at]
            start = date_key(None if start_at is None else values[start_at])
            end = "" if end_at is False else date_key(None if end_at is None else values[end_at])
            if nir and start and siret:
                self.relations.employments.append(Employment(siret, nir, start, end or ""))

    def _contract(self, contract: BlockInstance) -> None:
        end = self._ends.pop(id(contract), "")
        individual = contract.parent
        if individual is None or individual.block != "S21.G00.30":
            return
        nir = individual.value("S21.G00.30.001") or ""
        start = date_key(contract.value("S21.G00.40.001"))
        siret = _siret(individual.parent)
        if nir and start and siret:
            self.relations.employments.append(Employment(siret, nir, start, end))
