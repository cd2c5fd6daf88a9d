"""Generates the Python code of the contracts into gen/: messages, gRPC stubs and mypy stubs.

One command, `make generate` (or `python tools/generate_protos.py`), produces everything; CI runs
it again and fails when the committed code differs from what it produces.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
THIRD_PARTY = ROOT / "third_party" / "protos"
GEN = ROOT / "gen"
# Vendored files with no Python package for the google.protobuf runtime: generated here too.
THIRD_PARTY_GENERATED = ["buf/validate/validate.proto"]


def _protoc(args: list[str]) -> None:
    well_known = str(resources.files("grpc_tools") / "_proto")
    # mypy-protobuf's plugins sit beside this interpreter, which need not be on PATH.
    bin_dir = Path(sys.executable).parent
    plugins = [
        f"--plugin=protoc-gen-{name}={bin_dir / f'protoc-gen-{name}'}"
        for name in ("mypy", "mypy_grpc")
    ]
    argv = [
        "grpc_tools.protoc",
        *plugins,
        f"-I{PROTOS}",
        f"-I{THIRD_PARTY}",
        f"-I{well_known}",
        *args,
    ]
    if protoc.main(argv) != 0:
        sys.exit(f"protoc failed: {' '.join(args[-3:])}")


def main() -> None:
    """Regenerates gen/ from scratch, so that removed contracts leave nothing behind."""
    shutil.rmtree(GEN, ignore_errors=True)
    GEN.mkdir()
    ours = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    _protoc(
        [
            f"--python_out={GEN}",
            f"--grpc_python_out={GEN}",
            f"--mypy_out={GEN}",
            f"--mypy_grpc_out={GEN}",
            *ours,
        ]
    )
    _protoc([f"--python_out={GEN}", f"--mypy_out={GEN}", *THIRD_PARTY_GENERATED])
    for directory in (p for p in GEN.rglob("*") if p.is_dir()):
        (directory / "__init__.py").touch()
    (GEN / "interops" / "py.typed").touch()
    (GEN / "buf" / "py.typed").touch()
    print(f"generated {len(ours)} contract files into {GEN.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
