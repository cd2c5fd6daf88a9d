"""`interops creditor add CODE --identifier ICS` and `interops creditor list`: the creditor
organisms of SEPA mandates and their SEPA identifier (ICS, checked), on the node's database."""

from __future__ import annotations

import argparse
import sys

from registry.kernel.database import open_engine, upgrade
from registry.mandate.store import MandateRefused, MandateStore
from server.config import Settings


def _store() -> MandateStore:
    engine = open_engine(Settings.from_env().effective_database_url)
    upgrade(engine)
    # Registering creditors opens no IBAN: the store needs no data key for it.
    return MandateStore(engine, bytes(32))


def _add(args: argparse.Namespace) -> int:
    store = _store()
    try:
        creditor = store.register_creditor(
            args.code, args.identifier, args.name or "", (args.address or "").replace("|", "\n")
        )
    except MandateRefused as refused:
        print(f"error: {refused.reason}: {refused}", file=sys.stderr)
        return 1
    finally:
        store.engine.dispose()
    print(f"{creditor.code} is a creditor, SEPA identifier {creditor.identifier}")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store()
    try:
        for creditor in store.creditors():
            print(f"{creditor.code}  {creditor.identifier}  {creditor.name}")
    finally:
        store.engine.dispose()
    return 0


HANDLERS = {"add": _add, "list": _list}
