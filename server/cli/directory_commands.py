"""`interops directory ...` and `interops declarant add`: the operator's changes to the trust
directory and identities, made on the node's database (INTEROPS_DATABASE_URL)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable

from sqlalchemy import Engine

from registry.kernel.database import open_engine, upgrade
from registry.kernel.rights import REGISTRY_READ
from registry.trust.declarant_store import DeclarantStore
from registry.trust.directory_store import DirectoryError, DirectoryStore, KeyKind
from registry.trust.tls_pins import pin_of_certificate
from server.config import Settings
from server.token.trust import node_key
from token_suite.encryption_keys import public_of, read_encryption_key
from token_suite.errors import TokenError
from token_suite.keys import key_id_of, public_bytes, read_private_key


def _on_database(action: Callable[[Engine, argparse.Namespace], None]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        engine = open_engine(Settings.from_env().effective_database_url)
        try:
            upgrade(engine)
            action(engine, args)
        except (DirectoryError, TokenError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            engine.dispose()
        return 0

    return run


def _add_organism(engine: Engine, args: argparse.Namespace) -> None:
    DirectoryStore(engine).add_organism(args.code, args.name, args.kind, args.endpoint)
    print(f"organism {args.code} added")


def _add_key(engine: Engine, args: argparse.Namespace) -> None:
    kind = KeyKind(args.kind.upper())
    if kind == KeyKind.TLS:
        if not args.cert_file:
            raise ValueError("a TLS key is published from its certificate: give --cert-file PEM")
        public = pin_of_certificate(args.cert_file.read_bytes())
    elif args.key_file and kind == KeyKind.ENCRYPTION:
        public = public_of(read_encryption_key(args.key_file))
    elif args.key_file:
        public = public_bytes(read_private_key(args.key_file))
    elif args.public_key:
        public = bytes.fromhex(args.public_key)
    else:
        raise ValueError("give --public-key HEX or --key-file PEM")
    key_id = DirectoryStore(engine).add_key(args.organism, public, kind=kind)
    print(f"{kind.lower()} key {key_id} published")


def _retire_key(engine: Engine, args: argparse.Namespace) -> None:
    DirectoryStore(engine).retire_key(args.key_id)
    print(f"key {args.key_id} retired; it stays listed for what it signed before")


def _grant(engine: Engine, args: argparse.Namespace) -> None:
    DirectoryStore(engine).grant(args.organism, args.right, args.siren)
    print(f"{args.organism} may be granted {args.right} over {args.siren or 'everything'}")


def _show(engine: Engine, args: argparse.Namespace) -> None:
    snapshot = DirectoryStore(engine).snapshot(0)
    for organism in snapshot.organisms:
        print(f"{organism.code}  {organism.name}  {', '.join(organism.endpoints)}")
        keys = [*snapshot.keys, *snapshot.encryption_keys]
        for key in (k for k in keys if k.organism == organism.code):
            state = f"retired {key.valid_until}" if key.valid_until else "in use"
            print(f"    {key.key_id}  {state}")


def _root_key(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    key = node_key(settings.data_dir / "keys" / "root.pem")
    print(f"root key id: {key_id_of(public_bytes(key))}")
    print(f"public key:  {public_bytes(key).hex()}")
    return 0


def _add_declarant(engine: Engine, args: argparse.Namespace) -> None:
    password = os.environ.get("INTEROPS_PASSWORD") or getpass.getpass("new password: ")
    grants = [(REGISTRY_READ, siren) for siren in args.siren]
    declarant = DeclarantStore(engine).create(
        args.siret, args.last_name, args.first_name, password, grants
    )
    print(f"declarant {declarant} created")


# What server/cli/commands.py runs, by name (imported only when a command is run).
HANDLERS = {
    "add-organism": _on_database(_add_organism),
    "add-key": _on_database(_add_key),
    "retire-key": _on_database(_retire_key),
    "grant": _on_database(_grant),
    "show": _on_database(_show),
    "root-key": _root_key,
    "declarant-add": _on_database(_add_declarant),
}
