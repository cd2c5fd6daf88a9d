"""Benchmark: DSN validation speed as a ratio of a bare line loop over the same file, and peak
memory validating a 100,000-employee DSN (about ten million lines). Target: peak under 300 MB.

The baseline is `for line in f: line.split(b",", 1)` over the same file in the same run. Each
measure runs in a child process of its own, so the peak resident memory (ru_maxrss) is the
validation's alone.

    python -m bench.dsn_validate [--employees 100000] [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from registry.dsn.synth import generate

_CHILD = """
import json, resource, sys, time
from registry.dsn.validation import validate
path, mode = sys.argv[1], sys.argv[2]
started = time.perf_counter()
lines = 0
with open(path, "rb") as stream:
    if mode == "bare":
        for line in stream:
            line.split(b",", 1)
            lines += 1
        kind = "-"
    else:
        report = validate(stream)
        lines, kind = report.lines, report.kind
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"lines": lines, "seconds": seconds, "peak_mb": peak, "kind": kind}))
"""


def _measure(path: Path, mode: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), mode],
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    """Runs the benchmark and prints its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--file", type=Path, help="validate this file instead of generating one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.file
        if path is None:
            path = Path(scratch) / "big.dsn"
            started = time.perf_counter()
            with path.open("wb") as out:
                out.writelines(generate(args.employees))
            print(f"generated {args.employees} employees, {path.stat().st_size / 1e6:.0f} MB "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        bare = _measure(path, "bare")
        checked = _measure(path, "validate")
    bare_rate = bare["lines"] / bare["seconds"]
    rate = checked["lines"] / checked["seconds"]
    print(f"bare line loop:  {bare_rate:>12,.0f} lines/s   peak {bare['peak_mb']:.0f} MB")
    done = f"{checked['lines']:,.0f} lines, {checked['seconds']:.1f} s, {checked['kind']}"
    print(f"validation:      {rate:>12,.0f} rubrics/s peak {checked['peak_mb']:.0f} MB ({done})")
    print(f"ratio validation / bare loop: {rate / bare_rate:.3f}")
    verdict = "met" if checked["peak_mb"] < 300 else "MISSED"
    print(f"peak memory {checked['peak_mb']:.0f} MB (target < 300 MB): {verdict}")


if __name__ == "__main__":
    main()
