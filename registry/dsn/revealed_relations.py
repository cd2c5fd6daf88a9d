"""The relations a DSN reveals, gathered while it is validated: the declarant's SIRET (S10.G00.01),
each declared establishment with the declaration's month (declared links), and each contract of
each employee (employments: establishment, NIR, start and end).

The collector takes each block instance as the reader closes it (children close before their
parents, whose own rubrics are already read), so it keeps no more than the relations themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from registry.dsn.controls import date_key
from registry.dsn.reader import BlockInstance, BlockListener


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
