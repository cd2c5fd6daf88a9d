"""A benchmark's node in a process of its own (a core of its own): the benchmark module run
again with `--serve ...`, which prints its port(s) on its first line and serves until its
standard input closes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def child_node(module: str, *serve_args: str) -> Iterator[list[int]]:
    """Starts `python -m module --serve *serve_args`; yields the ports it printed, then stops
    it by closing its standard input."""
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--serve", *serve_args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None and server.stdin is not None
    try:
        yield [int(word) for word in server.stdout.readline().split()[1:]]
    finally:
        server.stdin.close()
        server.wait(timeout=30)
