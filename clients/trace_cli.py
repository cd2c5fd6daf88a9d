"""`interops trace TRACE_ID` (or `--deposit ID`, `--siret`, `--chain`): an operator follows one
exchange across organisms (audit.read): the spans the node keeps of its trace, the node's and
those organisms sent, as a waterfall in the terminal, then the audit journal's records of the
same trace. Each line is printed as soon as it is ready."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from clients.text import utc_timestamp

if TYPE_CHECKING:  # imported when a command runs: `interops --help` loads neither
    from interops.audit.v1 import audit_pb2
    from interops.trace.v1 import trace_pb2

    from clients.client import Client

Handler = Callable[[argparse.Namespace], int]
BAR = "█"


def _nanos(span: trace_pb2.Span) -> tuple[int, int]:
    return span.start_time.ToNanoseconds(), span.end_time.ToNanoseconds()


def waterfall(spans: Sequence[trace_pb2.Span], width: int) -> list[str]:
    """The spans (in tree order) as lines of text `width` wide: who reported it, the span's
    name indented by its depth, a bar placed by its start and as long as its duration, and the
    duration in milliseconds."""
    from interops.trace.v1 import trace_pb2

    if not spans:
        return []
    start = min(_nanos(s)[0] for s in spans)
    total = max(max(_nanos(s)[1] for s in spans) - start, 1)
    who_width = min(max(len(s.reported_by) for s in spans), 16)
    label_width = max(20, min(52, width // 2 - who_width))
    bar_width = max(10, width - who_width - label_width - 17)
    lines = []
    for span in spans:
        begin, end = _nanos(span)
        offset = min(bar_width - 1, (begin - start) * bar_width // total)
        length = max(1, min(bar_width - offset, round((end - begin) * bar_width / total)))
        label = ("  " * span.depth + span.name)[:label_width]
        error = "!" if span.status == trace_pb2.SPAN_STATUS_ERROR else " "
        bar = " " * offset + BAR * length
        lines.append(f"{span.reported_by[:who_width]:<{who_width}} {label:<{label_width}} "
                     f"|{bar:<{bar_width}}|{error}{(end - begin) / 1e6:9.1f} ms")  # fmt: skip
    return lines


def _records(client: Client, trace_id: str) -> list[audit_pb2.AuditRecord]:
    from interops.audit.v1 import audit_pb2

    request = audit_pb2.ListRecordsRequest(trace_id=trace_id, page_size=500)
    return list(client.list_audit_records(request))


def show_trace(client: Client, trace_id: str, out: TextIO, width: int) -> None:
    """Prints one trace: its waterfall, then its journal records."""
    spans: list[trace_pb2.Span] = client.get_trace(trace_id)
    services = sorted({f"{s.reported_by}:{s.service}" for s in spans})
    print(f"trace {trace_id}: {len(spans)} spans ({', '.join(services) or 'none kept'})",
          file=out, flush=True)  # fmt: skip
    for line in waterfall(spans, width):
        print(line, file=out, flush=True)
    records = _records(client, trace_id)
    print(f"audit: {len(records)} records", file=out, flush=True)
    for record in records:
        who = ">".join(record.organisms) or "-"
        line = (f"  {utc_timestamp(record.at)}  {record.method:<22} {record.outcome:<12} "
                f"{record.subject or '-':<20} {who}  {record.resource}")  # fmt: skip
        print(line, file=out, flush=True)


def _trace(args: argparse.Namespace, client: Client) -> int:
    width = args.width or shutil.get_terminal_size((120, 24)).columns
    trace_ids = [args.trace_id] if args.trace_id else []
    if args.deposit or args.siret or args.chain:
        found = client.search_traces(
            deposit_id=args.deposit, siret=args.siret, chain_id=args.chain, max_traces=args.max
        )
        trace_ids += [t.trace_id for t in found if t.trace_id not in trace_ids]
    if not trace_ids:
        print("no trace found", flush=True)
        return 1
    for trace_id in trace_ids:
        show_trace(client, trace_id, args.trace_out or sys.stdout, width)
    return 0


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: Callable[..., Handler],
) -> None:
    """Adds `trace`."""
    trace = commands.add_parser(
        "trace", help="one exchange across organisms: its spans as a waterfall and its audit "
        "records (as an operator: audit.read)",
    )  # fmt: skip
    trace.add_argument("trace_id", nargs="?", default="", help="a W3C trace id (32 hex digits)")
    trace.add_argument("--deposit", default="", help="the traces of a deposit, by its id")
    trace.add_argument("--siret", default="", help="the traces of calls about an establishment")
    trace.add_argument("--chain", default="", help="the traces of a token chain, by its id")
    trace.add_argument("--max", type=int, default=5, help="at most this many traces found")
    trace.add_argument("--width", type=int, default=0, help="columns (default: the terminal's)")
    trace.set_defaults(handler=with_client(_trace), trace_out=None)
