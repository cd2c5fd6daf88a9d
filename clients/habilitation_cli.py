"""`interops habilitation ...` for a company's administrators: accounts, list, grant, revoke,
import and export of bulk files, acts, and the mandates the company gives firms for its
establishments (mandate grant|end, mandates). Calls carry the administrator's chain (--token)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from clients.text import utc_milliseconds

if TYPE_CHECKING:  # the parsers are built without them; a handler imports what it calls
    from interops.habilitation.v1 import habilitation_pb2 as pb

    from clients.client import Client

Handler = Callable[[argparse.Namespace], int]


def _accounts(args: argparse.Namespace, client: Client) -> int:
    from interops.habilitation.v1 import habilitation_pb2 as pb

    for account in client.list_accounts():
        role = pb.Role.Name(account.role).removeprefix("ROLE_")
        status = pb.AccountStatus.Name(account.status).removeprefix("ACCOUNT_STATUS_")
        names = f"{account.first_name} {account.last_name}".strip() or "-"
        print(f"{account.id}\t{account.siret}\t{role}\t{status}\t{names}")
    return 0


def _list(args: argparse.Namespace, client: Client) -> int:
    for habilitation in client.list_habilitations(args.account):
        print(f"{habilitation.account_id}\t{habilitation.siret}\t{habilitation.service}")
    return 0


def _habilitation(args: argparse.Namespace) -> pb.Habilitation:
    from interops.habilitation.v1 import habilitation_pb2 as pb

    return pb.Habilitation(account_id=args.account, siret=args.siret, service=args.service.upper())


def _grant(args: argparse.Namespace, client: Client) -> int:
    from interops.habilitation.v1 import habilitation_pb2 as pb

    request = pb.GrantHabilitationRequest(habilitation=_habilitation(args))
    changed = client.habilitations.GrantHabilitation(request).changed
    print("granted" if changed else "already held")
    return 0


def _revoke(args: argparse.Namespace, client: Client) -> int:
    from interops.habilitation.v1 import habilitation_pb2 as pb

    request = pb.RevokeHabilitationRequest(habilitation=_habilitation(args))
    changed = client.habilitations.RevokeHabilitation(request).changed
    print("revoked" if changed else "not held")
    return 0


def _import(args: argparse.Namespace, client: Client) -> int:
    from interops.habilitation.v1 import habilitation_pb2 as pb
    from interops.operation.v1 import operation_pb2 as op

    path: Path = args.file
    operation = client.import_habilitations(path.read_bytes(), args.request_id)
    print(f"{operation.name}: queued ({operation.total_units} lines)", file=sys.stderr)
    if args.no_wait:
        print(operation.name)
        return 0
    final = client.wait_bulk_operation(operation.name, timeout=args.timeout)
    if final.state != op.OPERATION_STATE_SUCCEEDED:
        print(f"bulk file failed: {final.error.message}", file=sys.stderr)
        return 1
    result = pb.ImportHabilitationsResult()
    final.result.Unpack(result)
    print(f"{result.lines_read} lines read, {result.lines_changed} changed, "
          f"{result.lines_rejected} rejected")  # fmt: skip
    for rejected in result.rejected_lines:
        print(f"  line {rejected.line_number}: {rejected.reason}: {rejected.message}")
    for warning in result.warnings:
        print(f"  warning: {warning}")
    return 1 if result.lines_rejected else 0


def _export(args: argparse.Namespace, client: Client) -> int:
    content = client.export_habilitations()
    if args.out:
        Path(args.out).write_bytes(content)
    else:
        sys.stdout.write(content.decode())
    return 0


def _mandate(args: argparse.Namespace, client: Client) -> int:
    from interops.habilitation.v1 import habilitation_pb2 as pb

    mandate = pb.FirmMandate(client_siret=args.siret, firm_siren=args.firm)
    if args.mandate_command == "grant":
        done = client.grant_firm_mandate(pb.GrantFirmMandateRequest(mandate=mandate)).granted
        print("granted" if done else "already held")
    else:
        done = client.end_firm_mandate(pb.EndFirmMandateRequest(mandate=mandate)).ended
        print("ended" if done else "no mandate")
    return 0


def _mandates(args: argparse.Namespace, client: Client) -> int:
    from interops.habilitation.v1 import habilitation_pb2 as pb

    for listed in client.list_firm_mandates(pb.ListFirmMandatesRequest()).mandates:
        state = f"ended {utc_milliseconds(listed.ended_at)}" if listed.ended_at else "lasting"
        print(f"{listed.mandate.client_siret}\t{listed.mandate.firm_siren}\t"
              f"{utc_milliseconds(listed.granted_at)}\t{state}")  # fmt: skip
    return 0


def _acts(args: argparse.Namespace, client: Client) -> int:
    for act in client.list_admin_acts():
        print(f"{utc_milliseconds(act.at)}\t{act.author}\t{act.act}\t{act.target}\t{act.detail}")
    return 0


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: Callable[..., Handler],
) -> None:
    """Adds `habilitation accounts|list|grant|revoke|import|export|acts|mandate|mandates`."""
    habilitation = commands.add_parser(
        "habilitation", help="a company's accounts and habilitations (administrators)"
    )
    sub = habilitation.add_subparsers(dest="habilitation_command", required=True)
    sub.add_parser("accounts", help="the company's accounts: id, SIRET, role, status"
                   ).set_defaults(handler=with_client(_accounts))  # fmt: skip
    listing = sub.add_parser("list", help="habilitations: account, SIRET, service")
    listing.add_argument("--account", type=int, default=0, help="only this account's")
    listing.set_defaults(handler=with_client(_list))
    for name, handler, text in (("grant", _grant, "grant a service for an establishment"),
                                ("revoke", _revoke, "revoke a habilitation")):  # fmt: skip
        command = sub.add_parser(name, help=text)
        command.add_argument("account", type=int)
        command.add_argument("siret")
        command.add_argument("service", help="DSN, PASRAU, BONUS-MALUS, ATMP, DUCS")
        command.set_defaults(handler=with_client(handler))
    load = sub.add_parser("import", help="apply a bulk file (CSV); exit 1 if lines were refused")
    load.add_argument("file", type=Path)
    load.add_argument("--request-id", default="", help="retry key: the same id queues once")
    load.add_argument("--no-wait", action="store_true", help="print the operation and return")
    load.add_argument("--timeout", type=float, default=600.0)
    load.set_defaults(handler=with_client(_import))
    export = sub.add_parser("export", help="portfolios and habilitations as a bulk file")
    export.add_argument("--out", help="write to this file (default: standard output)")
    export.set_defaults(handler=with_client(_export))
    sub.add_parser("acts", help="the company's administrative acts, oldest first"
                   ).set_defaults(handler=with_client(_acts))  # fmt: skip
    mandate = sub.add_parser(
        "mandate", help="give a firm a mandate for an establishment, or end it"
    )
    mandate.add_argument("mandate_command", choices=("grant", "end"))
    mandate.add_argument("siret", help="an establishment of your company")
    mandate.add_argument("firm", help="the firm's SIREN")
    mandate.set_defaults(handler=with_client(_mandate))
    sub.add_parser("mandates", help="mandates given (for your establishments) and received"
                   ).set_defaults(handler=with_client(_mandates))  # fmt: skip
