"""A deposit's path (README, "A deposit's path"): from SubmitDeposit to the organism's
acknowledgement and CRM it crosses at most 8 files of the DSN room, each calling only files after
it, so that following a deposit never leads back to a file already read; the states it goes
through are one enum each, mapped one to one on the contract's."""

from __future__ import annotations

import ast
import importlib.util
from enum import StrEnum
from pathlib import Path

import pytest
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from interops.dsn.v1 import dsn_pb2 as pb

from registry.dsn.deposit_store import DeliveryState, DepositState, Receipt, ReturnKind

ROOT = Path(__file__).resolve().parents[2]
# The path's steps, in the order the README draws them.
STEPS = [
    "server.dsn.deposit_service",
    "registry.dsn.scan",
    "server.dsn.pipeline",
    "registry.dsn.validation",
    "registry.dsn.routing",
    "server.dsn.delivery_service",
    "registry.dsn.returns",
    "registry.dsn.deposit_store",
]
# The files the steps read with, each placed after every file that uses it: the worker processes
# that read deposits and the reading itself, what a validated file reveals (links, employments),
# who is entitled to what (the routing rules), validation's fast path, the DSN reader,
# cardinalities per nature, the norm's control rules and its norm tables, the store's tables.
HELPERS_AFTER = {
    "registry.dsn.revealed_relations": "server.dsn.pipeline",
    "server.dsn.reading_pool": "server.dsn.pipeline",
    "registry.dsn.deposit_reading": "server.dsn.reading_pool",
    "registry.dsn.planned_routes": "registry.dsn.validation",
    "registry.dsn.planned_walk": "registry.dsn.routing",
    "registry.dsn.entitlement": "registry.dsn.planned_walk",
    "registry.dsn.individual_segments": "registry.dsn.entitlement",
    "registry.dsn.reader": "registry.dsn.individual_segments",
    "registry.dsn.cardinalities": "registry.dsn.reader",
    "registry.dsn.controls": "registry.dsn.cardinalities",
    "registry.dsn.norm": "registry.dsn.controls",
    "registry.dsn.schema": "registry.dsn.deposit_store",
}


def _order() -> list[str]:
    order = list(STEPS)
    for helper, after in HELPERS_AFTER.items():
        order.insert(order.index(after) + 1, helper)
    return order


def _imports(module: str) -> set[str]:
    """The modules `module` imports anywhere in its text (top level or inside a function)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _room(directory: str) -> list[str]:
    return sorted(
        f"{directory.replace('/', '.')}.{path.stem}"
        for path in (ROOT / directory).glob("*.py")
        if path.stem != "__init__"
    )


def test_the_path_has_at_most_8_steps_and_every_import_points_forward() -> None:
    assert len(STEPS) <= 8
    order = _order()
    for position, module in enumerate(order):
        earlier = set(order[:position])
        assert not _imports(module) & earlier, f"{module} goes back to {_imports(module) & earlier}"
        assert module not in _imports(module)


def test_every_dsn_file_the_path_uses_is_on_it() -> None:
    order = set(_order())
    for module in order:
        used = {m for m in _imports(module) if m in _room("registry/dsn") + _room("server/dsn")}
        assert used <= order, f"{module} uses {used - order}, which the path does not show"


def test_the_dsn_rules_and_storage_depend_on_no_server_nor_client() -> None:
    for module in _room("registry/dsn"):
        outside = {m for m in _imports(module) if m.split(".")[0] in ("server", "clients")}
        assert not outside, f"{module} imports {outside}"


@pytest.mark.parametrize(
    ("states", "contract", "prefix"),
    [
        (DepositState, pb.DepositState, "DEPOSIT_STATE_"),
        (DeliveryState, pb.DeliveryState, "DELIVERY_STATE_"),
        (Receipt, pb.Receipt, "RECEIPT_"),
        (ReturnKind, pb.ReturnKind, "RETURN_KIND_"),
    ],
)
def test_each_state_enum_maps_one_to_one_on_the_contract(
    states: type[StrEnum], contract: EnumTypeWrapper, prefix: str
) -> None:
    mapped = {state.to_proto() for state in states}  # type: ignore[attr-defined]
    assert mapped == set(contract.values()) - {contract.Value(f"{prefix}UNSPECIFIED")}
    assert len(mapped) == len(states)
