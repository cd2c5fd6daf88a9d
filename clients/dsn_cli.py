"""`interops dsn ...`: validate and generate DSN files offline; deposit them and follow their
returns on a node; as an organism, lease deliveries and download (open) their shares."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from clients.text import print_message
from clients.token_cli import load_signer

if TYPE_CHECKING:  # the parsers are built without them; a handler imports what it calls
    from interops.dsn.v1 import dsn_pb2 as pb

    from clients.client import Client

Handler = Callable[[argparse.Namespace], int]
# Files larger than this show a progress bar on standard error while they are read.
PROGRESS_FROM_BYTES = 8 * 1024 * 1024
# The choices of `dsn generate`, as registry/dsn/synth.py and synth_scenario.py name them
# (tests/clients/test_cli_startup.py checks them against NATURES, BROKEN and the scenarios').
NATURES = ("monthly", "sick-leave", "return-to-work", "end-of-contract")
BROKEN = ("malformed-line", "unsupported-version", "unknown-rubric", "block-out-of-order",
          "missing-block", "too-long", "value-not-allowed", "bad-format", "bad-date",
          "emitter-siren-key", "establishment-siret-key", "forbidden-nir", "duplicate-nir",
          "nature-type", "period", "total-lines", "total-declarations")  # fmt: skip
SCENARIO_NATURES = ("01", "04", "05", "07", "08", "09")


def _lines_with_progress(stream: BinaryIO, size: int, label: str) -> Iterator[bytes]:
    from tqdm import tqdm

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
    from registry.dsn.validation import report_lines as validation_lines
    from registry.dsn.validation import validate

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


def _month(text: str) -> str:
    """--month: the declared month as the norm writes it (01MMYYYY), also taken as YYYY-MM."""
    if len(text) == 7 and text[4] == "-":
        text = f"01{text[5:]}{text[:4]}"
    if not (len(text) == 8 and text.isascii() and text.isdigit() and text.startswith("01")
            and 1 <= int(text[2:4]) <= 12 and int(text[4:]) >= 2000):  # fmt: skip
        raise argparse.ArgumentTypeError(
            f"{text!r} is no declared month: write 01MMYYYY (e.g. 01032026) or YYYY-MM"
        )
    return text


def _siret(text: str) -> str:
    """--siret / --emitter: a SIRET with its check digit."""
    from registry.rcd.identifiers import check_siret

    checked = check_siret(text)
    if not checked.ok:
        raise argparse.ArgumentTypeError(f"{text!r} is no SIRET: {checked.message}")
    return text


def _file(text: str) -> Path:
    """A DSN file to read: it must be a file (a directory made a gRPC error)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(
            f"{text}: no such file" if not path.exists() else f"{text}: not a file"
        )
    return path


def _generate(args: argparse.Namespace) -> int:
    from registry.dsn import synth
    from registry.dsn.synth import DEMO_COMPANY, company, generate
    from registry.dsn.synth_scenario import scenario_file

    if args.scenario:
        who = company(args.siret, args.emitter) if args.siret else DEMO_COMPANY
        scenario = scenario_file(args.scenario, employees=args.employees, seed=args.seed,
                                 declared=who, month=args.month, lot=args.lot,
                                 order=args.order)  # fmt: skip
        count = 0
        with args.out.open("wb") as out:
            for line in scenario.lines():  # streamed: no list of the lines
                out.write(line)
                count += 1
        print(f"{args.out}: {count} lines", file=sys.stderr)
        return 0
    if args.break_rule or args.keep_rule:
        return _rule_example(args)
    if args.broken:
        edit, _ = synth.BROKEN[args.broken]
        lines = edit(list(generate(args.employees)))
    else:
        declared = company(args.siret, args.emitter) if args.siret else None
        options = {"declared": declared} if declared else {}
        lines = list(generate(args.employees, month=args.month, nature=synth.NATURES[args.nature],
                              seed=args.seed, order=args.order, **options))  # fmt: skip
    with args.out.open("wb") as out:
        out.writelines(lines)
    print(f"{args.out}: {len(lines)} lines", file=sys.stderr)
    return 0


def _rule_example(args: argparse.Namespace) -> int:
    """The file that breaks (or keeps) a control rule of the norm: its example in the data."""
    from registry.dsn.controls import all_rules
    from registry.dsn.synth_variants import apply

    name = args.break_rule or args.keep_rule
    rules = {f"{rule['rubric']}/{rule['id']}": rule for rule in all_rules() if "examples" in rule}
    rule = rules.get(name)
    if rule is None:
        print(f"no enforced rule {name!r}: name one as RUBRIC/ID, e.g. S21.G00.06.001/CSL-11 "
              "(the README's table lists them)", file=sys.stderr)  # fmt: skip
        return 2
    examples = rule["examples"]
    data = apply(examples.get("base", "monthly"), examples["break" if args.break_rule else "pass"])
    args.out.write_bytes(data)
    lines, verb = data.count(b"\n"), "breaking" if args.break_rule else "keeping"
    print(f"{args.out}: {lines} lines, {verb} {name}", file=sys.stderr)
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
    check.add_argument("file", type=_file)
    check.add_argument("--json", action="store_true", help="the report as JSON")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(handler=_validate)
    make = sub.add_parser("generate", help="a synthetic DSN file (valid, or --broken VARIANT)")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--employees", type=int, default=10)
    make.add_argument("--nature", choices=NATURES, default="monthly")
    make.add_argument("--month", default="01032026", type=_month,
                      help="the declared month, 01MMYYYY or YYYY-MM")  # fmt: skip
    make.add_argument("--siret", type=_siret,
                      help="the declared establishment (default: a demo company)")  # fmt: skip
    make.add_argument("--emitter", type=_siret,
                      help="the émetteur's SIRET (default: the declared one)")  # fmt: skip
    make.add_argument("--order", type=int, default=1, help="the declaration's order number")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--broken", choices=BROKEN, help="break the file this way")
    make.add_argument(
        "--break",
        dest="break_rule",
        metavar="RUBRIC/ID",
        help="the file that breaks this control rule of the norm (e.g. S21.G00.06.001/CSL-11)",
    )
    make.add_argument("--keep", dest="keep_rule", metavar="RUBRIC/ID", help="the closest file "
                      "that keeps it (conformant)")  # fmt: skip
    make.add_argument("--scenario", choices=SCENARIO_NATURES, help="a scenario declaration of "
                      "that nature code (two OCs, Agirc-Arrco and IRCANTEC employees, PAS, an "
                      "exit, a sick leave; registry/dsn/synth_scenario.py), streamed")  # fmt: skip
    make.add_argument("--lot", action="store_true", help="with --scenario: in a lot envelope")
    make.set_defaults(handler=_generate)


def _deposit_line(deposit: pb.Deposit) -> str:
    from interops.dsn.v1 import dsn_pb2 as pb

    state = pb.DepositState.Name(deposit.state).removeprefix("DEPOSIT_STATE_")
    receipt = pb.Receipt.Name(deposit.receipt).removeprefix("RECEIPT_")
    parts = [deposit.id, receipt, state, deposit.nature, deposit.month, ",".join(deposit.sirets)]
    if deposit.rejection_code:
        parts.append(f"{deposit.rejection_code}: {deposit.rejection_message}")
    for delivery in deposit.deliveries:
        name = pb.DeliveryState.Name(delivery.state).removeprefix("DELIVERY_STATE_")
        parts.append(f"{delivery.organism}={name}")
    return "  ".join(part for part in parts if part)


def _submit(args: argparse.Namespace, client: Client) -> int:
    from interops.dsn.v1 import dsn_pb2 as pb
    from tqdm import tqdm

    path: Path = args.file
    size = path.stat().st_size
    with tqdm(total=size, unit="B", unit_scale=True, desc="deposit", file=sys.stderr,
              disable=size < PROGRESS_FROM_BYTES) as bar:  # fmt: skip

        def progress(sent: int, _total: int) -> None:
            bar.update(sent - bar.n)

        deposit = client.submit_deposit(path, request_id=args.request_id, on_progress=progress)
    print(_deposit_line(deposit), flush=True)
    if args.wait and deposit.receipt == pb.RECEIPT_AEE:
        for seen in client.watch_deposit(deposit.id):
            print(_deposit_line(seen), flush=True)
            deposit = seen
            if seen.state in (pb.DEPOSIT_STATE_ROUTED, pb.DEPOSIT_STATE_REJECTED):
                break
    return 0 if deposit.state != pb.DEPOSIT_STATE_REJECTED else 1


def _status(args: argparse.Namespace, client: Client) -> int:
    print_message(client.get_deposit(args.id))
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
    from interops.dsn.v1 import dsn_pb2 as pb

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


def encryption_key_of(args: argparse.Namespace) -> bytes:
    """The organism's raw X25519 private key that opens its shares: --encryption-key (or
    $INTEROPS_ENCRYPTION_KEY_FILE), else the file beside its signing key (--key URSSAF.pem:
    URSSAF.x25519.pem)."""
    from token_suite.encryption_keys import beside, read_encryption_key

    path = args.encryption_key or (beside(args.key) if args.key else None)
    if path is None:
        raise ValueError("give --encryption-key FILE (or --key, beside which it is kept)")
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such key file: give the organism's encryption key with "
                         "--encryption-key or $INTEROPS_ENCRYPTION_KEY_FILE (by default the "
                         "file beside --key: URSSAF.pem, URSSAF.x25519.pem)")  # fmt: skip
    return read_encryption_key(Path(path))


def write_share(path: Path, share: bytes) -> None:
    """Writes an opened share (it names employees) readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(share)


def _deliveries(args: argparse.Namespace, client: Client) -> int:
    leased = client.fetch_deliveries(max_deliveries=args.max, lease_seconds=args.lease_seconds)
    for delivery in leased:
        sealed_for = delivery.sealed_for_key_id or "-"
        print(f"{delivery.id}  {delivery.nature}  {delivery.size} bytes  "
              f"sha256 {delivery.sha256.hex()}  sealed for {sealed_for}")  # fmt: skip
    return 0


def _download(args: argparse.Namespace, client: Client) -> int:
    from interops.dsn.v1 import dsn_pb2 as pb

    share = client.download_share(args.id, encryption_key_of(args))
    digest = hashlib.sha256(share).digest()
    write_share(args.out, share)
    print(f"{args.out}: {len(share)} bytes, sha256 {digest.hex()}")
    if args.acknowledge:
        signer = load_signer(args.organism, args.key)
        done = client.acknowledge_delivery(pb.Delivery(id=args.id), signer, digest)
        state = pb.DeliveryState.Name(done.state).removeprefix("DELIVERY_STATE_")
        print(f"{done.id}: {state}, receipt by {done.receipt_key_id}")
    return 0


def register_node_commands(
    dsn: argparse._SubParsersAction[argparse.ArgumentParser], with_client: Callable[..., Handler]
) -> None:
    """Adds the `dsn` commands that call a node (as a declarant: --token)."""
    submit = dsn.add_parser("submit", help="deposit a DSN file; prints the AEE or ARE")
    submit.add_argument("file", type=_file)
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
    deliveries = dsn.add_parser("deliveries", help="as an organism (--organism/--key): lease "
                                "your pending deliveries and list them")  # fmt: skip
    deliveries.add_argument("--max", type=int, default=20, help="at most this many")
    deliveries.add_argument("--lease-seconds", type=int, default=0)
    deliveries.set_defaults(handler=with_client(_deliveries))
    download = dsn.add_parser("download", help="as an organism: download one of your "
                              "deliveries and open it with your encryption key")  # fmt: skip
    download.add_argument("id", help="the delivery id, <deposit>.<organism>")
    download.add_argument("--out", type=Path, required=True, help="the plaintext share (0600)")
    download.add_argument("--acknowledge", action="store_true", help="then acknowledge it with "
                          "a receipt signed by --key over what was received")  # fmt: skip
    download.set_defaults(handler=with_client(_download))
