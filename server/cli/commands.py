"""The server side of the `interops` command line: the parsers of `serve`, `db`, `directory`,
`declarant`, `audit verify`, `relations`, `letters` and `creditor`.

The CLI in clients/ finds `register` through the "interops.commands" entry point, so that the
client package never imports the server. A command's handler is imported only when that command
runs (each module's HANDLERS), so that `interops --help` loads neither the node nor its database
layer.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from registry.letters.states import TRACKED, LetterState

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]


def _lazy(module: str, name: str) -> Handler:
    """The handler `name` of server/cli/<module>.py, imported when the command runs."""

    def run(args: argparse.Namespace) -> int:
        handler: Handler = importlib.import_module(f"server.cli.{module}").HANDLERS[name]
        return handler(args)

    return run


def register(commands: Commands) -> None:
    """Adds the server side's commands to the CLI."""
    serve = commands.add_parser("serve", help="run the backbone node (gRPC)")
    serve.add_argument(
        "--demo-data", action="store_true", help="load a small synthetic registry if it is empty"
    )
    serve.set_defaults(handler=_lazy("serve_command", "serve"))
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser(
        "upgrade", help="migrate the schema to the newest revision"
    ).set_defaults(handler=_lazy("serve_command", "db-upgrade"))
    _directory(commands)
    _audit(commands)
    _relations(commands)
    _letters(commands)
    _creditors(commands)


def _creditors(commands: Commands) -> None:
    """Adds `creditor add` and `creditor list`: creditors of SEPA mandates, with their ICS."""
    creditor = commands.add_parser("creditor", help="creditors of SEPA mandates (on the database)")
    sub = creditor.add_subparsers(dest="creditor_command", required=True)
    add = sub.add_parser("add", help="register an organism as a creditor, with its SEPA "
                         "identifier (ICS, checked)")  # fmt: skip
    add.add_argument("code", help="the organism's code in the directory")
    add.add_argument("--identifier", required=True, help="its SEPA creditor identifier (ICS)")
    add.add_argument("--name", help="the name printed on mandates (default: the code)")
    add.add_argument("--address", help="its postal address printed on mandates, lines split by |")
    add.set_defaults(handler=_lazy("mandate_commands", "add"))
    sub.add_parser("list", help="the creditors").set_defaults(
        handler=_lazy("mandate_commands", "list")
    )


def _audit(commands: Commands) -> None:
    """Adds `audit verify`; the `audit` parser's subcommands are its default `subcommands`."""
    audit = commands.add_parser("audit", help="the audit journal")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    audit.set_defaults(subcommands=sub)
    verify = sub.add_parser("verify", help="check the journal offline (exit 1 on a fault)")
    verify.add_argument("--root-key", help="the node's root public key, hex (default: read "
                        "from the data directory)")  # fmt: skip
    verify.set_defaults(handler=_lazy("audit_commands", "verify"))


def _directory(commands: Commands) -> None:
    """Adds `directory` and `declarant` to the CLI."""
    directory = commands.add_parser("directory", help="the trust directory (on the database)")
    sub = directory.add_subparsers(dest="directory_command", required=True)
    organism = sub.add_parser("add-organism", help="add an organism or site")
    organism.add_argument("code")
    organism.add_argument("--name", required=True)
    organism.add_argument("--kind", required=True, help="URSSAF, CNAV, ..., PORTAL, PARTNER_SITE")
    organism.add_argument("--endpoint", action="append", default=[])
    organism.set_defaults(handler=_lazy("directory_commands", "add-organism"))
    key = sub.add_parser("add-key", help="publish a public key of an organism")
    key.add_argument("organism")
    key.add_argument("--kind", choices=("signing", "encryption", "tls"), default="signing",
                     help="signing (Ed25519, the default), encryption (X25519: what the "
                     "organism's DSN shares are sealed to) or tls (the key of a client "
                     "certificate its systems present in mutual TLS: --cert-file)")  # fmt: skip
    key.add_argument("--cert-file", type=Path, help="with --kind tls: the client certificate "
                     "(PEM) whose public key to publish")  # fmt: skip
    key.add_argument("--public-key", help="raw public key, hex")
    key.add_argument("--key-file", type=Path, help="the private key (PEM) whose public half "
                     "to publish")  # fmt: skip
    key.set_defaults(handler=_lazy("directory_commands", "add-key"))
    retire = sub.add_parser("retire-key", help="stop a key signing; keep it listed")
    retire.add_argument("key_id")
    retire.set_defaults(handler=_lazy("directory_commands", "retire-key"))
    grant = sub.add_parser("grant", help="let an organism be granted a right")
    grant.add_argument("organism")
    grant.add_argument("right")
    grant.add_argument("--siren", help="one company (default: everything)")
    grant.set_defaults(handler=_lazy("directory_commands", "grant"))
    sub.add_parser("show", help="list organisms and keys").set_defaults(
        handler=_lazy("directory_commands", "show")
    )
    sub.add_parser("root-key", help="the root key verifiers pin").set_defaults(
        handler=_lazy("directory_commands", "root-key")
    )
    declarant = commands.add_parser("declarant", help="portal declarants")
    declarant_sub = declarant.add_subparsers(dest="declarant_command", required=True)
    add = declarant_sub.add_parser("add", help="a declarant (password from $INTEROPS_PASSWORD "
                                   "or a prompt)")  # fmt: skip
    add.add_argument("siret")
    add.add_argument("--last-name", required=True)
    add.add_argument("--first-name", required=True)
    add.add_argument("--siren", action="append", default=[], help="a company it manages")
    add.set_defaults(handler=_lazy("directory_commands", "declarant-add"))


def _letters(commands: Commands) -> None:
    """Adds `letters batch`, `letters list` and `letters track`."""
    letters = commands.add_parser("letters", help="the mail room's postal letters")
    sub = letters.add_subparsers(dest="letters_command", required=True)
    batch = sub.add_parser("batch", help="print every pending letter: DIR/<batch>/*.pdf and "
                           "batch.csv (they hold secrets: mode 0600)")  # fmt: skip
    batch.add_argument("--out", required=True, help="the mail room's directory")
    batch.add_argument("--limit", type=int, help="at most this many letters, the oldest")
    batch.add_argument("--again", metavar="BATCH",
                       help="write a batch's files again (its letters not yet SENT)")  # fmt: skip
    batch.set_defaults(handler=_lazy("letter_commands", "batch"))
    listing = sub.add_parser("list", help="letters by id (never their address nor text)")
    listing.add_argument("--state", choices=[state.value for state in LetterState])
    listing.add_argument("--siret")
    listing.add_argument("--limit", type=int, default=1000)
    listing.set_defaults(handler=_lazy("letter_commands", "list"))
    track = sub.add_parser("track", help="record what the post did with a printed letter")
    track.add_argument("id", type=int)
    track.add_argument("--state", required=True, choices=[state.value for state in TRACKED])
    track.add_argument("--tracking", default="", help="the post's tracking number")
    track.set_defaults(handler=_lazy("letter_commands", "track"))


def _relations(commands: Commands) -> None:
    """Adds `relations load` and `relations rekey`."""
    relations = commands.add_parser("relations", help="declared links and employments")
    sub = relations.add_subparsers(dest="relations_command", required=True)
    load = sub.add_parser("load", help="load history files (CSV; exit 1 if lines were refused)")
    load.add_argument("--links", help="declarant_siret,declared_siret,first_period,last_period")
    load.add_argument("--employments", help="siret,nir,contract_start,contract_end")
    load.set_defaults(handler=_lazy("relations_commands", "load"))
    sub.add_parser(
        "rekey", help="re-seal every NIR under the keyring's current (last) key"
    ).set_defaults(handler=_lazy("relations_commands", "rekey"))
