"""`interops directory ...` and `interops declarant add`: the operator's changes to the trust
directory and identities, made on the node's database (INTEROPS_DATABASE_URL)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from registry.kernel.database import open_engine, upgrade
from registry.kernel.rights import REGISTRY_READ
from registry.trust.declarant_store import DeclarantStore
from registry.trust.directory_store import DirectoryError, DirectoryStore, KeyKind
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
    if args.key_file and kind == KeyKind.ENCRYPTION:
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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `directory` and `declarant` to the CLI."""
    directory = commands.add_parser("directory", help="the trust directory (on the database)")
    sub = directory.add_subparsers(dest="directory_command", required=True)
    organism = sub.add_parser("add-organism", help="add an organism or site")
    organism.add_argument("code")
    organism.add_argument("--name", required=True)
    organism.add_argument("--kind", required=True, help="URSSAF, CNAV, ..., PORTAL, PARTNER_SITE")
    organism.add_argument("--endpoint", action="append", default=[])
    organism.set_defaults(handler=_on_database(_add_organism))
    key = sub.add_parser("add-key", help="publish a public key of an organism")
    key.add_argument("organism")
    key.add_argument("--kind", choices=("signing", "encryption"), default="signing",
                     help="signing (Ed25519, the default) or encryption (X25519: what the "
                     "organism's DSN shares are sealed to)")  # fmt: skip
    key.add_argument("--public-key", help="raw public key, hex")
    key.add_argument("--key-file", type=Path, help="the private key (PEM) whose public half "
                     "to publish")  # fmt: skip
    key.set_defaults(handler=_on_database(_add_key))
    retire = sub.add_parser("retire-key", help="stop a key signing; keep it listed")
    retire.add_argument("key_id")
    retire.set_defaults(handler=_on_database(_retire_key))
    grant = sub.add_parser("grant", help="let an organism be granted a right")
    grant.add_argument("organism")
    grant.add_argument("right")
    grant.add_argument("--siren", help="one company (default: everything)")
    grant.set_defaults(handler=_on_database(_grant))
    sub.add_parser("show", help="list organisms and keys").set_defaults(handler=_on_database(_show))
    sub.add_parser("root-key", help="the root key verifiers pin").set_defaults(handler=_root_key)
    declarant = commands.add_parser("declarant", help="portal declarants")
    declarant_sub = declarant.add_subparsers(dest="declarant_command", required=True)
    add = declarant_sub.add_parser("add", help="a declarant (password from $INTEROPS_PASSWORD "
                                   "or a prompt)")  # fmt: skip
    add.add_argument("siret")
    add.add_argument("--last-name", required=True)
    add.add_argument("--first-name", required=True)
    add.add_argument("--siren", action="append", default=[], help="a company it manages")
    add.set_defaults(handler=_on_database(_add_declarant))
