"""A DSN read back grouped by employee, for tests that hold a file (a generated one, a routed
share) against what it should say: the blocks outside any employee by block id, and each
employee (S21.G00.30) with the blocks under it, itself included, in file order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from registry.dsn.reader import BlockInstance, read_blocks

EMPLOYEE = "S21.G00.30"


@dataclass
class Employee:
    """One S21.G00.30 of the file and the blocks under it, by block id."""

    nir: str = ""
    blocks: dict[str, list[BlockInstance]] = field(default_factory=lambda: defaultdict(list))

    def values(self, rubric: str) -> list[str]:
        """The values of a rubric in this employee's blocks, in file order."""
        return [v for b in self.blocks[rubric[:10]] if (v := b.value(rubric)) is not None]


def read_by_employee(
    stream: BinaryIO | Iterable[bytes],
) -> tuple[dict[str, list[BlockInstance]], list[Employee]]:
    """The blocks outside employees (by block id) and the employees, in file order."""
    outside: dict[str, list[BlockInstance]] = defaultdict(list)
    employees: list[Employee] = []
    pending: dict[int, Employee] = {}
    for instance in read_blocks(stream):
        owner = instance
        while owner.parent is not None and owner.block != EMPLOYEE:
            owner = owner.parent
        if owner.block != EMPLOYEE:
            outside[instance.block].append(instance)
            continue
        employee = pending.setdefault(id(owner), Employee())
        employee.blocks[instance.block].append(instance)
        if instance is owner:  # an employee closes after the blocks under it
            employee.nir = instance.value("S21.G00.30.001") or ""
            employees.append(pending.pop(id(owner)))
    return outside, employees
