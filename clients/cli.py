"""The `interops` command line.

Client commands (`interops registry ...`) call a running node over gRPC; `serve` and `db` come
from the server package through the "interops.commands" entry point.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from clients.address import DEFAULT_ADDRESS, address_problem
from clients.audit_cli import register as register_audit_commands
from clients.dsn_cli import register as register_dsn_commands
from clients.habilitation_cli import register as register_habilitation_commands
from clients.mandate_cli import register as register_mandate_commands
from clients.nomenclature_cli import register as register_nomenclature_commands
from clients.partner_demo import register as register_partner_demo
from clients.sample_organism import register as register_organism_commands
from clients.text import print_message
from clients.tls import add_options as add_tls_options
from clients.tls import channel_credentials
from clients.token_cli import load_signer, prover_of, read_token
from clients.token_cli import register as register_token_commands
from clients.trace_cli import register as register_trace_commands

if TYPE_CHECKING:  # the parsers are built without them; a handler imports what it calls
    from interops.operation.v1 import operation_pb2 as op
    from opentelemetry.sdk.trace import TracerProvider

    from clients.client import Client
    from clients.credentials import CallCredentials

# What the CLI's own chains are for when it issues them with an organism's key.
CLIENT_AUDIENCE = (
    "interops.registry.v1.RegistryService",
    "interops.operation.v1.OperationService",
    "interops.dsn.v1.DepositService",
    "interops.dsn.v1.DeliveryService",
    "interops.audit.v1.AuditService",
    "interops.trace.v1.TraceService",
    "interops.notify.v1.NotificationService",
    "interops.nomenclature.v1.NomenclatureService",
    "interops.habilitation.v1.HabilitationService",
    "interops.mandate.v1.MandateService",
)
Handler = Callable[[argparse.Namespace], int]

# --kind of `registry import`: the StockKind value each names (checked against the enum by
# tests/clients/test_cli_startup.py).
KINDS = {
    "auto": "STOCK_KIND_UNSPECIFIED",
    "companies": "STOCK_KIND_COMPANIES",
    "establishments": "STOCK_KIND_ESTABLISHMENTS",
}


def _credentials(args: argparse.Namespace) -> CallCredentials | None:
    from clients.token_credentials import ChainCredentials, OrganismCredentials

    if args.token:  # every call proves with the key the chain names
        return ChainCredentials(read_token(args.token), prover_of(args))
    if args.organism and args.key:
        return OrganismCredentials(args.address, load_signer(args.organism, args.key),
                                   CLIENT_AUDIENCE, tls=channel_credentials(args))  # fmt: skip
    if args.organism or args.key:  # half of it would call without any credentials
        raise ValueError(
            "--organism and --key go together (or $INTEROPS_ORGANISM and $INTEROPS_KEY_FILE): "
            "the organism's name and its private key (PEM)"
        )
    return None


def _client(args: argparse.Namespace) -> Client:
    from clients.client import Client

    if problem := address_problem(args.address):
        raise ValueError(f"--address {args.address!r} {problem}: give the node's gRPC address "
                         "with --address or $INTEROPS_GRPC_ADDRESS")  # fmt: skip
    # A command that proves who it is in its own request (token issue: a password, or an
    # organism's signed request) calls without the global credentials, which would add a second
    # proof (BAD_PROOF) or another signer (WRONG_SIGNER).
    credentials = None if getattr(args, "anonymous", False) else _credentials(args)
    return Client(args.address, credentials=credentials, tls=channel_credentials(args),
                  tracer_provider=_TRACING[0])  # fmt: skip


# The command line's tracer provider, when INTEROPS_TRACING_EXPORTER asks for one.
_TRACING: list[TracerProvider | None] = [None]


def _with_client(handler: Callable[[argparse.Namespace, Client], int]) -> Handler:
    def run(args: argparse.Namespace) -> int:
        with _client(args) as client:
            return handler(args, client)

    return run


def _registry_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        identifier = args.identifier.strip()
        if len(identifier) == 9:
            print_message(client.get_company(identifier))
        else:
            print_message(client.get_establishment(identifier))
    return 0


def _registry_validate(args: argparse.Namespace) -> int:
    from interops.registry.v1 import registry_pb2 as pb

    with _client(args) as client:
        answer = client.validate_siret(args.siret)
    verdict = "valid" if answer.valid else pb.SiretProblem.Name(answer.problem)
    print(f"{args.siret}: {verdict} ({answer.message})")
    return 0 if answer.valid else 1


def _registry_import(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"error: no file {path}", file=sys.stderr)
        return 2
    from interops.registry.v1 import registry_pb2 as pb
    from tqdm import tqdm

    with _client(args) as client:
        with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="upload") as bar:

            def uploaded(sent: int, _total: int) -> None:
                bar.update(sent - bar.n)

            operation = client.import_stock(
                path,
                kind=pb.StockKind.Value(KINDS[args.kind]),
                request_id=args.request_id,
                on_progress=uploaded,
            )
        with tqdm(total=operation.total_units, unit="B", unit_scale=True, desc="import") as bar:
            final = operation
            for final in client.watch_operation(operation.name):
                bar.update(final.done_units - bar.n)
    return _report_import(final)


def _report_import(operation: op.Operation) -> int:
    from interops.operation.v1 import operation_pb2 as op
    from interops.registry.v1 import registry_pb2 as pb

    if operation.state != op.OPERATION_STATE_SUCCEEDED:
        print(f"import failed: {operation.error.message}", file=sys.stderr)
        return 1
    result = pb.ImportStockResult()
    operation.result.Unpack(result)
    print(
        f"{pb.StockKind.Name(result.kind)}: {result.lines_read} lines read, "
        f"{result.lines_applied} applied ({result.lines_changed} changed), "
        f"{result.lines_rejected} rejected"
    )
    for rejected in result.rejected_lines[:20]:
        print(f"  line {rejected.line_number}: {rejected.reason}")
    if result.lines_rejected > 20:
        print(f"  ... and {result.lines_rejected - 20} more")
    return 0


def _add_registry(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    registry = commands.add_parser("registry", help="the RCD: companies and establishments")
    sub = registry.add_subparsers(dest="registry_command", required=True)
    get = sub.add_parser("get", help="show a company (SIREN) or an establishment (SIRET)")
    get.add_argument("identifier", help="a SIREN (9 digits) or a SIRET (14 digits)")
    get.set_defaults(handler=_registry_get)
    validate = sub.add_parser("validate", help="check a SIRET; exit status 0 when valid")
    validate.add_argument("siret")
    validate.set_defaults(handler=_registry_validate)
    load = sub.add_parser("import", help="import an INSEE Sirene stock file (CSV)")
    load.add_argument("file", type=Path)
    load.add_argument("--kind", choices=KINDS, default="auto")
    load.add_argument("--request-id", default="", help="retry key: the same id imports once")
    load.set_defaults(handler=_registry_import)


def parser() -> argparse.ArgumentParser:
    """The whole command line, server commands included when installed."""
    root = argparse.ArgumentParser(prog="interops", description="InterOPS backbone")
    root.add_argument(
        "--address",
        default=os.environ.get("INTEROPS_GRPC_ADDRESS", DEFAULT_ADDRESS),
        help="the node's gRPC address (default: $INTEROPS_GRPC_ADDRESS or %(default)s)",
    )
    add_tls_options(root)
    root.add_argument(
        "--organism",
        default=os.environ.get("INTEROPS_ORGANISM", ""),
        help="call as this organism (with --key): $INTEROPS_ORGANISM",
    )
    root.add_argument(
        "--key",
        type=Path,
        default=os.environ.get("INTEROPS_KEY_FILE") or None,
        help="the organism's private key (PEM): $INTEROPS_KEY_FILE",
    )
    root.add_argument(
        "--encryption-key",
        type=Path,
        default=os.environ.get("INTEROPS_ENCRYPTION_KEY_FILE") or None,
        help="the organism's X25519 private key (PEM) that opens its DSN shares: "
        "$INTEROPS_ENCRYPTION_KEY_FILE, else the file beside --key (URSSAF.pem: "
        "URSSAF.x25519.pem)",
    )
    root.add_argument(
        "--token",
        default=os.environ.get("INTEROPS_TOKEN", ""),
        help="a token chain to call with (base64url or @FILE): $INTEROPS_TOKEN",
    )
    root.add_argument(
        "--holder-key",
        type=Path,
        default=os.environ.get("INTEROPS_HOLDER_KEY") or None,
        help="the holder key a declarant's chain names (PEM; made by token issue "
        "--declarant): $INTEROPS_HOLDER_KEY",
    )
    commands = root.add_subparsers(dest="command", required=True)
    for entry in entry_points(group="interops.commands"):
        entry.load()(commands)
    _add_registry(commands)
    register_token_commands(commands, _with_client)
    register_dsn_commands(commands, _with_client)
    register_organism_commands(commands, _with_client)
    register_audit_commands(commands, _with_client)
    register_nomenclature_commands(commands, _with_client)
    register_habilitation_commands(commands, _with_client)
    register_mandate_commands(commands, _with_client)
    register_partner_demo(commands, _with_client)
    register_trace_commands(commands, _with_client)
    return root


# What to do, said after the node's reason when the command line can tell.
_HINTS = {
    "TOKEN_MISSING": "call with --token CHAIN (and --holder-key FILE), or as an organism with "
    "--organism CODE --key FILE",
    "PROOF_REQUIRED": "give the key the chain names: --holder-key FILE, or --organism CODE "
    "--key FILE",
    "MALFORMED": "a chain is the base64url text `interops token issue` prints, or @FILE holding it",
}


def _tracing_asked() -> bool:
    """INTEROPS_TRACING_EXPORTER names an exporter: only then is OpenTelemetry loaded."""
    return os.environ.get("INTEROPS_TRACING_EXPORTER", "none").lower() != "none"


def _os_error(error: OSError) -> str:
    """A file's failure as `FILE: what` (not Python's "[Errno 2] ...")."""
    if error.filename is None or not error.strerror:
        return str(error)
    return f"{error.filename}: {error.strerror.lower()}"


def _told(error: Exception, address: str) -> tuple[str, int] | None:
    """What the command line says of a failure, and its exit status; None for a fault of the
    program itself (then Python's traceback is what to report)."""
    from clients.errors import InteropsError, Unavailable
    from token_suite.errors import TokenError

    if isinstance(error, Unavailable):
        # gRPC's "failed to connect to all addresses; last error: UNKNOWN: ipv4:...: Connection
        # refused": the last words are the reason.
        why = error.message.rpartition(": ")[2] if "last error: " in error.message else (
            error.message)  # fmt: skip
        return (f"cannot reach the node at {address}: {why}\n  is it running? give its "
                "address with --address or $INTEROPS_GRPC_ADDRESS"), 2  # fmt: skip
    if isinstance(error, InteropsError):
        hint = _HINTS.get(error.reason)
        return (f"{error}\n  {hint}" if hint else str(error)), 1
    if isinstance(error, TokenError):
        return str(error), 1
    if isinstance(error, OSError):
        return _os_error(error), 2
    if isinstance(error, ValueError):
        return str(error), 2
    return None


def _quit_now(signum: int, frame: object) -> None:
    """Ctrl-C: ends at once with 130, wherever the signal lands. Raised as KeyboardInterrupt
    inside one of gRPC's callbacks, it could be swallowed there, and a followed stream went on
    (seen under load: the command then ran until killed)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(130)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGINT)
    # Not if ignored, nor another's handler, nor for the node (it drains its calls on Ctrl-C).
    if previous is signal.default_int_handler and args.command != "serve":
        signal.signal(signal.SIGINT, _quit_now)
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(args: argparse.Namespace) -> int:
    if args.command != "serve" and _tracing_asked():  # the node traces itself
        from clients.tracing import provider_from_env

        _TRACING[0] = provider_from_env(f"interops-{args.command}")
    try:
        status: int = args.handler(args)
    except BrokenPipeError:  # `| head` stopped reading: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    except KeyboardInterrupt:  # Ctrl-C ends a --follow or a watch: no traceback
        return 130  # 128 + SIGINT
    except Exception as error:
        told = _told(error, args.address)
        if told is None:
            raise
        print(f"error: {told[0]}", file=sys.stderr)
        return told[1]
    finally:
        if _TRACING[0] is not None:
            _TRACING[0].shutdown()  # sends the spans still batched
    return status


if __name__ == "__main__":
    sys.exit(main())
