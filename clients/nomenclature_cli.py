"""`interops nomenclature publish / get / diff`: versioned reference tables.

A version to publish is a UTF-8 text file, one `code;label` a line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parsers are built without them; a handler imports what it calls
    from interops.nomenclature.v1 import nomenclature_pb2 as pb

    from clients.client import Client

Handler = Callable[[argparse.Namespace], int]


def read_codes(path: Path) -> list[pb.Code]:
    """The codes of a `code;label` file; a malformed line is a ValueError naming it."""
    from interops.nomenclature.v1 import nomenclature_pb2 as pb

    codes = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        code, separator, label = line.partition(";")
        if not separator or not code.strip():
            raise ValueError(f"{path.name}, line {number}: expected code;label")
        codes.append(pb.Code(code=code.strip(), label=label.strip()))
    return codes


def _publish(args: argparse.Namespace, client: Client) -> int:
    from interops.nomenclature.v1 import nomenclature_pb2 as pb

    request = pb.PublishVersionRequest(table=args.table, codes=read_codes(args.file))
    answer = client.nomenclature.PublishVersion(request)
    print(f"{args.table} version {answer.version} published; {answer.notified} companies notified")
    print(answer.note)
    return 0


def _get(args: argparse.Namespace, client: Client) -> int:
    from interops.nomenclature.v1 import nomenclature_pb2 as pb

    table = client.nomenclature.GetTable(
        pb.GetTableRequest(table=args.table, version=args.version)
    ).table
    print(f"# {table.table} version {table.version}", file=sys.stderr)
    for code in table.codes:
        print(f"{code.code};{code.label}")
    return 0


def _diff(args: argparse.Namespace, client: Client) -> int:
    from interops.nomenclature.v1 import nomenclature_pb2 as pb

    request = pb.DiffRequest(table=args.table, from_version=args.old, to_version=args.new)
    print(client.nomenclature.Diff(request).note)
    return 0


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_client: Callable[..., Handler],
) -> None:
    """Adds `nomenclature publish`, `get` and `diff`."""
    nomenclature = commands.add_parser("nomenclature", help="versioned reference tables")
    sub = nomenclature.add_subparsers(dest="nomenclature_command", required=True)
    publish = sub.add_parser("publish", help="publish a new version from a code;label file")
    publish.add_argument("table")
    publish.add_argument("file", type=Path)
    publish.set_defaults(handler=with_client(_publish))
    get = sub.add_parser("get", help="a table (code;label lines) at a version or the current")
    get.add_argument("table")
    get.add_argument("--version", type=int, default=0)
    get.set_defaults(handler=with_client(_get))
    diff = sub.add_parser("diff", help="what changed between two versions")
    diff.add_argument("table")
    diff.add_argument("old", type=int)
    diff.add_argument("new", type=int)
    diff.set_defaults(handler=with_client(_diff))
