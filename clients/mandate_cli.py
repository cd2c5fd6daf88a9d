"""`interops mandate ...`: SEPA mandates. A company's declarant habilitated for payment
(mandate.manage) enters, acknowledges, uses, prints, revokes and lists its mandates; a creditor
organism (mandate.read) reads its own (`mandate creditor-get`, `creditor-list`) and extracts
them into a CSV file (`mandate extract`)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from clients.text import print_message

if TYPE_CHECKING:  # the parsers are built without them; a handler imports what it calls
    from clients.client import Client

Handler = Callable[[argparse.Namespace], int]
STATES = ("pending", "acknowledged", "revoked")


def _state(name: str | None) -> int:
    from interops.mandate.v1 import mandate_pb2 as pb

    return pb.MandateState.Value(f"MANDATE_STATE_{name.upper()}") if name else 0


def read_iban(given: str | None, stdin: TextIO | None = None) -> str:
    """The IBAN: `given` (--iban, which every user of the machine sees in `ps`), else, for "-"
    or none, the first line of standard input, or a prompt that does not echo on a terminal."""
    if given and given != "-":
        return given
    source = stdin or sys.stdin
    if source.isatty():
        return getpass.getpass("IBAN: ").strip()
    return source.readline().strip()


def _create(args: argparse.Namespace, client: Client) -> int:
    from interops.mandate.v1 import mandate_pb2 as pb

    mandate = client.create_mandate(
        args.debtor, args.creditor, read_iban(args.iban), args.bic, args.signed_on,
        scheme=pb.Scheme.Value(f"SCHEME_{args.scheme.upper()}"), reference=args.reference or "",
        request_id=args.request_id or "",
    )  # fmt: skip
    print_message(mandate)
    return 0


def _act(name: str) -> Callable[[argparse.Namespace, Client], int]:
    def run(args: argparse.Namespace, client: Client) -> int:
        print_message(getattr(client, name)(args.creditor, args.reference))
        return 0

    return run


def _use(args: argparse.Namespace, client: Client) -> int:
    print_message(client.use_mandate(args.creditor, args.reference, args.declaration))
    return 0


def _list(args: argparse.Namespace, client: Client) -> int:
    for mandate in client.search_mandates(
        args.debtor,
        creditor=args.creditor or "",
        state=_state(args.state),  # type: ignore[arg-type]
    ):
        print(_line(mandate))
    return 0


def _line(mandate: object) -> str:
    from interops.mandate.v1 import mandate_pb2 as pb

    assert isinstance(mandate, pb.Mandate)
    state = pb.MandateState.Name(mandate.state).removeprefix("MANDATE_STATE_")
    scheme = pb.Scheme.Name(mandate.scheme).removeprefix("SCHEME_")
    return f"{mandate.creditor} {mandate.reference} {mandate.debtor} {scheme} {state}"


def _print(args: argparse.Namespace, client: Client) -> int:
    args.out.write_bytes(client.print_mandate(args.creditor, args.reference))
    print(f"{args.out}: mandate {args.reference} of {args.creditor}")
    return 0


def _creditor_get(args: argparse.Namespace, client: Client) -> int:
    print_message(client.get_creditor_mandate(args.reference))
    return 0


def _creditor_list(args: argparse.Namespace, client: Client) -> int:
    for mandate in client.search_creditor_mandates(
        debtor=args.debtor or "",
        state=_state(args.state),  # type: ignore[arg-type]
    ):
        print(_line(mandate))
    return 0


def _extract(args: argparse.Namespace, client: Client) -> int:
    from interops.mandate.v1 import mandate_pb2 as pb
    from interops.operation.v1 import operation_pb2 as op

    started = client.extract_mandates(args.request_id or "")
    done = client.wait_extraction(started.name, timeout=args.timeout)
    if done.state != op.OPERATION_STATE_SUCCEEDED:
        print(f"error: {started.name} failed: {done.error.message}", file=sys.stderr)
        return 1
    with args.out.open("wb") as out:
        for chunk in client.download_extraction(started.name):
            out.write(chunk)
    result = pb.ExtractMandatesResult()
    done.result.Unpack(result)
    print(f"{args.out}: {result.mandates} mandates of {result.creditor} ({started.name})")
    return 0


def _key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("creditor", help="the creditor organism's code (URSSAF...)")
    parser.add_argument("reference", help="the unique mandate reference (RUM)")


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: Callable[..., Handler],
) -> None:
    """Adds `mandate create / acknowledge / revoke / use / get / list / print` (a company's
    side) and `mandate creditor-get / creditor-list / extract` (a creditor's side)."""
    mandate = commands.add_parser("mandate", help="SEPA direct debit mandates")
    sub = mandate.add_subparsers(dest="mandate_command", required=True)
    create = sub.add_parser("create", help="enter a mandate (pending until acknowledged)")
    create.add_argument("debtor", help="SIREN or SIRET of the debtor")
    create.add_argument("--creditor", required=True)
    create.add_argument(
        "--iban",
        help="the IBAN; absent or '-': read from standard input, or asked without echo (a value "
        "given here shows in `ps` to every user of the machine)",
    )
    create.add_argument("--bic", required=True)
    create.add_argument("--signed-on", required=True, help="YYYY-MM-DD")
    create.add_argument("--scheme", choices=("core", "b2b"), default="core")
    create.add_argument("--reference", help="the RUM (default: the backbone makes one)")
    create.add_argument("--request-id")
    create.set_defaults(handler=with_client(_create))
    for name, call, text in (
        ("acknowledge", "acknowledge_mandate", "acknowledge a signed mandate"),
        ("revoke", "revoke_mandate", "revoke an acknowledged mandate"),
        ("get", "get_mandate", "one mandate, as JSON"),
    ):
        parser = sub.add_parser(name, help=text)
        _key(parser)
        parser.set_defaults(handler=with_client(_act(call)))
    use = sub.add_parser("use", help="record that a mandate pays a declaration of its creditor")
    _key(use)
    use.add_argument("declaration")
    use.set_defaults(handler=with_client(_use))
    listing = sub.add_parser("list", help="a debtor's mandates: creditor reference debtor "
                             "scheme state")  # fmt: skip
    listing.add_argument("debtor", help="SIREN (its establishments' too) or SIRET")
    listing.add_argument("--creditor")
    listing.add_argument("--state", choices=STATES)
    listing.set_defaults(handler=with_client(_list))
    printing = sub.add_parser("print", help="the mandate as a PDF to sign")
    _key(printing)
    printing.add_argument("--out", type=Path, required=True)
    printing.set_defaults(handler=with_client(_print))
    creditor_get = sub.add_parser("creditor-get", help="one of the calling creditor's mandates")
    creditor_get.add_argument("reference")
    creditor_get.set_defaults(handler=with_client(_creditor_get))
    creditor_list = sub.add_parser("creditor-list", help="the calling creditor's mandates")
    creditor_list.add_argument("--debtor")
    creditor_list.add_argument("--state", choices=STATES)
    creditor_list.set_defaults(handler=with_client(_creditor_list))
    extract = sub.add_parser("extract", help="extract the calling creditor's mandates to a CSV "
                             "file (a long-running operation)")  # fmt: skip
    extract.add_argument("--out", type=Path, required=True)
    extract.add_argument("--request-id")
    extract.add_argument("--timeout", type=float, default=3600.0)
    extract.set_defaults(handler=with_client(_extract))
