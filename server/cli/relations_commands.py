"""`interops relations load` (history files of links and employments, in bulk) and
`interops relations rekey` (re-seal every NIR under the keyring's current key), on the node's
database and keyring."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO, TypeVar

from registry.kernel.database import open_engine, upgrade
from registry.kernel.nir_keyring import NirKeyring
from registry.relations.history import LoadReport, read_employments, read_links
from registry.relations.store import RelationsStore
from server.config import Settings

T = TypeVar("T")


def _store(settings: Settings) -> RelationsStore:
    engine = open_engine(settings.effective_database_url)
    upgrade(engine)
    return RelationsStore(engine, NirKeyring.load_or_create(settings.nir_keyring_path))


def _print_report(name: str, report: LoadReport, changed: int) -> None:
    print(f"{name}: {report.lines} lines, {changed} rows added or changed, "
          f"{len(report.bad)} refused")  # fmt: skip
    for number, reason in report.bad[:100]:
        print(f"  line {number}: {reason}")
    if len(report.bad) > 100:
        print(f"  ... and {len(report.bad) - 100} more")


def _load_file(
    name: str,
    path: str,
    read: Callable[[TextIO, LoadReport], Iterator[T]],
    record: Callable[[Iterable[T]], int],
) -> int:
    """Loads one history file and prints its report; returns how many lines were refused."""
    report = LoadReport()
    with Path(path).open(encoding="utf-8", newline="") as source:
        changed = record(read(source, report))
    _print_report(name, report, changed)
    return len(report.bad)


def _load(args: argparse.Namespace) -> int:
    if not args.links and not args.employments:
        raise ValueError("give --links FILE, --employments FILE or both")
    store = _store(Settings.from_env())
    refused = 0
    try:
        if args.links:
            refused += _load_file("links", args.links, read_links, store.record_links)
        if args.employments:
            refused += _load_file(
                "employments", args.employments, read_employments, store.record_employments
            )
    finally:
        store.engine.dispose()
    return 1 if refused else 0


def _rekey(args: argparse.Namespace) -> int:
    store = _store(Settings.from_env())
    try:
        done = store.rekey()
    finally:
        store.engine.dispose()
    print(f"{done} NIRs re-sealed under key {store.keyring.current.id}")
    return 0


# What server/cli/commands.py runs, by name (imported only when a command is run).
HANDLERS = {
    "load": _load,
    "rekey": _rekey,
}
