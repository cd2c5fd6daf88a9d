"""`interops audit list`: an operator's query of the audit journal over gRPC."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from clients.text import utc_timestamp

if TYPE_CHECKING:
    from clients.client import Client

Handler = Callable[[argparse.Namespace], int]


def _list(args: argparse.Namespace, client: Client) -> int:
    from interops.audit.v1 import audit_pb2 as pb

    request = pb.ListRecordsRequest(trace_id=args.trace_id, chain_id=args.chain_id,
                                    siret=args.siret, organism=args.of_organism)  # fmt: skip
    for record in client.list_audit_records(request):
        who = ">".join(record.organisms) or "-"
        flags = f"  [{','.join(record.flags)}]" if record.flags else ""
        subject = record.subject or "-"
        print(f"{utc_timestamp(record.at)}  {record.trace_id}  {record.method:<22} "
              f"{record.outcome:<28} {subject:<20} {who}  {record.resource}{flags}")  # fmt: skip
    return 0


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: Callable[..., Handler],
) -> None:
    """Adds `audit list` (under the server's `audit` command when it is installed)."""
    audit = commands.choices.get("audit")
    if audit is None:
        audit = commands.add_parser("audit", help="the audit journal")
        sub = audit.add_subparsers(dest="audit_command", required=True)
    else:
        sub = audit.get_default("subcommands")
    listing = sub.add_parser("list", help="find exchanges (as an operator: audit.read)")
    listing.add_argument("--trace-id", default="")
    listing.add_argument("--chain-id", default="")
    listing.add_argument("--siret", default="")
    # Its own dest: the global --organism (who calls) must not be overwritten by the filter.
    listing.add_argument("--organism", dest="of_organism", default="",
                         help="records of exchanges this organism took part in")  # fmt: skip
    listing.set_defaults(handler=with_client(_list))
