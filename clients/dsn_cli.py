"""`interops dsn ...`: validate and generate DSN files offline; deposit them and follow their
returns on a node."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from registry.dsn_synth import BROKEN, NATURES, company, generate
from registry.dsn_validation import report_lines as validation_lines
from registry.dsn_validation import validate

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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `dsn validate` and `dsn generate`."""
    dsn = commands.add_parser("dsn", help="DSN files: validate, generate")
    sub = dsn.add_subparsers(dest="dsn_command", required=True)
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
