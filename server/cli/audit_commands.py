"""`interops audit verify`: checks the audit journal offline, on the node's database, against
the node's root public key, and names the first record altered, removed, inserted or
reordered. (`interops audit list`, the query over gRPC, is added by the client.)"""

from __future__ import annotations

import argparse

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry.audit.chain import verify_journal
from registry.audit.store import AuditStore
from registry.kernel.database import open_engine
from server.config import Settings
from token_suite.keys import read_private_key


def _root_public_key(args: argparse.Namespace, settings: Settings) -> Ed25519PublicKey:
    if args.root_key:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(args.root_key))
    path = settings.data_dir / "keys" / "root.pem"
    if not path.exists():
        raise ValueError(f"no {path}: give the node's root public key with --root-key HEX")
    return read_private_key(path).public_key()


def _verify(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    root = _root_public_key(args, settings)
    engine = open_engine(settings.effective_database_url)
    try:
        store = AuditStore(engine)
        journals = store.journals()
        faults = 0
        for journal in journals:
            finding = verify_journal(
                store.all_records(journal), store.all_checkpoints(journal), root,
                store.sequence_numbers(journal),
            )  # fmt: skip
            if finding.ok:
                print(f"{journal}: ok, {finding.message}")
            else:
                faults += 1
                print(f"{journal}: FAULT at record {finding.seq} ({finding.kind}): "
                      f"{finding.message}")  # fmt: skip
    finally:
        engine.dispose()
    if not journals:
        print("the journal is empty")
    return 1 if faults else 0


# What server/cli/commands.py runs, by name (imported only when a command is run).
HANDLERS = {
    "verify": _verify,
}
