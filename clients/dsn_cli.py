"""`interops dsn ...`: validate and generate DSN files offline; deposit them and follow their
returns on a node."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from google.protobuf import json_format
from google.protobuf.message import Message
from interops.dsn.v1 import dsn_pb2 as pb
from tqdm import tqdm

from clients.client import Client
from registry.dsn.synth import BROKEN, NATURES, company, generate
from registry.dsn.validation import report_lines as validation_lines
from registry.dsn.validation import validate

Handler = Callable[[argparse.Namespace], int]
# Files larger than this show a progress bar on standard error while they are read.
PROGRESS_FROM_BYTES = 8 * 1024 * 1024


def _lines_with_progress(stream: BinaryIO, size: int, label: str) -> Iterator[bytes]:
    with tqdm(total=size, unit="B", unit_scale=True, desc=label, file=sys.stderr) as bar:
        pending = 0
        for line in stream:
            pending += len(line)
            if pending >= 1 << 20:
                bar.update(pending)
                pending = 0
            yield line
        bar.update(pending)


def _validate(args: argparse.Namespace) -> int:
    path: Path = args.file
    size = path.stat().st_size
    with path.open("rb") as stream:
        lines = stream if size < PROGRESS_FROM_BYTES or args.quiet else (
            _lines_with_progress(stream, size, path.name))  # fmt: skip
        report = validate(lines)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for line in validation_lines(report):
            print(line)
    return 0 if report.conformant else 1


def _generate(args: argparse.Namespace) -> int:
    if args.broken:
        edit, _ = BROKEN[args.broken]
        lines = edit(list(generate(args.employees)))
    else:
        declared = company(args.siret, args.emitter) if args.siret else None
        options = {"declared": declared} if declared else {}
        lines = list(generate(args.employees, month=args.month, nature=NATURES[args.nature],
                              seed=args.seed, order=args.order, **options))  # fmt: skip
    with args.out.open("wb") as out:
        out.writelines(lines)
    print(f"{args.out}: {len(lines)} lines", file=sys.stderr)
    return 0


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: Callable[..., Handler],
) -> None:
    """Adds `dsn validate` and `dsn generate` (offline) and the deposit commands."""
    dsn = commands.add_parser("dsn", help="DSN files: validate, generate, deposit, follow")
    sub = dsn.add_subparsers(dest="dsn_command", required=True)
    register_node_commands(sub, with_client)
    check = sub.add_parser("validate", help="check a DSN file against its norm; exit status 0 "
                           "when conformant (CCO), 1 otherwise (BAN)")  # fmt: skip
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="the report as JSON")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(handler=_validate)
    make = sub.add_parser("generate", help="a synthetic DSN file (valid, or --broken VARIANT)")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--employees", type=int, default=10)
    make.add_argument("--nature", choices=NATURES, default="monthly")
    make.add_argument("--month", default="01032026", help="the declared month, 01MMYYYY")
    make.add_argument("--siret", help="the declared establishment (default: a demo company)")
    make.add_argument("--emitter", help="the émetteur's SIRET (default: the declared one)")
    make.add_argument("--order", type=int, default=1, help="the declaration's order number")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--broken", choices=BROKEN, help="break the file this way")
    make.set_defaults(handler=_generate)


def _deposit_line(deposit: pb.Deposit) -> str:
    state = pb.DepositState.Name(deposit.state).removeprefix("DEPOSIT_STATE_")
    receipt = pb.Receipt.Name(deposit.receipt).removeprefix("RECEIPT_")
    parts = [deposit.id, receipt, state, deposit.nature, deposit.month, ",".join(deposit.sirets)]
    if deposit.rejection_code:
        parts.append(f"{deposit.rejection_code}: {deposit.rejection_message}")
    for delivery in deposit.deliveries:
        name = pb.DeliveryState.Name(delivery.state).removeprefix("DELIVERY_STATE_")
        parts.append(f"{delivery.organism}={name}")
    return "  ".join(part for part in parts if part)


def _print_message(message: Message) -> None:
    print(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2))


def _submit(args: argparse.Namespace, client: Client) -> int:
    path: Path = args.file
    size = path.stat().st_size
    with tqdm(total=size, unit="B", unit_scale=True, desc="deposit", file=sys.stderr,
              disable=size < PROGRESS_FROM_BYTES) as bar:  # fmt: skip

        def progress(sent: int, _total: int) -> None:
            bar.update(sent - bar.n)

        deposit = client.submit_deposit(path, request_id=args.request_id, on_progress=progress)
    print(_deposit_line(deposit))
    if args.wait and deposit.receipt == pb.RECEIPT_AEE:
        for seen in client.watch_deposit(deposit.id):
            print(_deposit_line(seen))
            deposit = seen
            if seen.state in (pb.DEPOSIT_STATE_ROUTED, pb.DEPOSIT_STATE_REJECTED):
                break
    return 0 if deposit.state != pb.DEPOSIT_STATE_REJECTED else 1


def _status(args: argparse.Namespace, client: Client) -> int:
    _print_message(client.get_deposit(args.id))
    return 0


def _list(args: argparse.Namespace, client: Client) -> int:
    for count, deposit in enumerate(client.list_deposits(), start=1):
        print(_deposit_line(deposit))
        if count >= args.limit:
            break
    return 0


def _watch(args: argparse.Namespace, client: Client) -> int:
    for deposit in client.watch_deposit(args.id):
        print(_deposit_line(deposit), flush=True)
    return 0


def _returns(args: argparse.Namespace, client: Client) -> int:
    found = (client.watch_returns(args.after, follow=True) if args.follow
             else client.list_returns(args.deposit))  # fmt: skip
    for item in found:
        if args.deposit and item.deposit_id != args.deposit:
            continue
        kind = pb.ReturnKind.Name(item.kind).removeprefix("RETURN_KIND_")
        status = pb.ReturnStatus.Name(item.status).removeprefix("RETURN_STATUS_")
        print(f"{item.position}  {item.deposit_id}  {kind} {item.code}  {item.organism or '-'}"
              f"  {status}  {len(item.content)} bytes  {len(item.pas_rates)} PAS rates",
              flush=True)  # fmt: skip
    return 0


def register_node_commands(
    dsn: argparse._SubParsersAction[argparse.ArgumentParser], with_client: Callable[..., Handler]
) -> None:
    """Adds the `dsn` commands that call a node (as a declarant: --token)."""
    submit = dsn.add_parser("submit", help="deposit a DSN file; prints the AEE or ARE")
    submit.add_argument("file", type=Path)
    submit.add_argument("--request-id", default="", help="retry key: the same id deposits once")
    submit.add_argument("--wait", action="store_true", help="follow it until routed or rejected")
    submit.set_defaults(handler=with_client(_submit))
    status = dsn.add_parser("status", help="one of your deposits, in full (JSON)")
    status.add_argument("id")
    status.set_defaults(handler=with_client(_status))
    listing = dsn.add_parser("list", help="your deposits, newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=with_client(_list))
    watch = dsn.add_parser("watch", help="follow a deposit until every organism acknowledged")
    watch.add_argument("id")
    watch.set_defaults(handler=with_client(_watch))
    returns = dsn.add_parser("returns", help="your returns: CCO/BAN and the organisms' CRMs")
    returns.add_argument("--deposit", default="", help="of one deposit only")
    returns.add_argument("--follow", action="store_true", help="keep streaming new returns")
    returns.add_argument("--after", type=int, default=0, help="with --follow: after a position")
    returns.set_defaults(handler=with_client(_returns))
