"""Generates the Python code of the contracts into gen/: messages, gRPC stubs and mypy stubs,
and the contracts' comments (gen/interops/proto_comments.json), which the Python descriptors do
not carry, for the REST declination's OpenAPI document (server/web/openapi.py).

One command, `make generate` (or `python tools/generate_protos.py`), produces everything; CI runs
it again and fails when the committed code differs from what it produces.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
THIRD_PARTY = ROOT / "third_party" / "protos"
GEN = ROOT / "gen"
# Vendored files with no Python package for the google.protobuf runtime: generated here too.
THIRD_PARTY_GENERATED = ["buf/validate/validate.proto"]
COMMENTS = GEN / "interops" / "proto_comments.json"
# Field numbers of the descriptor messages, as SourceCodeInfo paths name them.
_FILE_MESSAGE, _FILE_SERVICE = 4, 6
_MESSAGE_FIELD, _MESSAGE_NESTED = 2, 3
_SERVICE_METHOD = 2


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


def _text(comment: str) -> str:
    """A comment as prose: its lines joined into paragraphs, a list item on its own line."""
    paragraphs = re.split(r"\n\s*\n", comment.strip())
    out = []
    for paragraph in paragraphs:
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        text = lines[0] if lines else ""
        for line in lines[1:]:
            text += ("\n" if re.match(r"[-*] |[0-9]+[.)] ", line) else " ") + line
        out.append(text)
    return "\n\n".join(p for p in out if p)


def _named(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """The full name and SourceCodeInfo path of each service, method, message and field."""

    def message(
        proto: descriptor_pb2.DescriptorProto, scope: str, path: tuple[int, ...]
    ) -> Iterator[tuple[str, tuple[int, ...]]]:
        name = f"{scope}.{proto.name}"
        yield name, path
        for index, field in enumerate(proto.field):
            yield f"{name}.{field.name}", (*path, _MESSAGE_FIELD, index)
        for index, nested in enumerate(proto.nested_type):
            yield from message(nested, name, (*path, _MESSAGE_NESTED, index))

    for index, proto in enumerate(file.message_type):
        yield from message(proto, file.package, (_FILE_MESSAGE, index))
    for index, service in enumerate(file.service):
        name = f"{file.package}.{service.name}"
        yield name, (_FILE_SERVICE, index)
        for number, method in enumerate(service.method):
            yield f"{name}.{method.name}", (_FILE_SERVICE, index, _SERVICE_METHOD, number)


def comments_of(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """The leading comment (else the trailing one) of every commented service, method, message
    and field of the files, as prose, by full name (a method or field after its parent's)."""
    found = {}
    for file in files:
        locations = {tuple(at.path): at for at in file.source_code_info.location}
        for name, path in _named(file):
            at = locations.get(path)
            text = _text(at.leading_comments or at.trailing_comments) if at else ""
            if text:
                found[name] = text
    return dict(sorted(found.items()))


def contract_files() -> list[str]:
    """Our .proto files, relative to protos/, in a stable order."""
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def comments_file(outputs: Sequence[str] = ()) -> bytes:
    """The content of gen/interops/proto_comments.json, from the contracts as they are now (one
    protoc run, which also writes the given outputs)."""
    with tempfile.TemporaryDirectory() as scratch:
        descriptor_set = Path(scratch) / "contracts.binpb"
        _protoc([*outputs, "--include_source_info", f"--descriptor_set_out={descriptor_set}",
                 *contract_files()])  # fmt: skip
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    text = json.dumps(comments_of(files), ensure_ascii=False, indent=1, sort_keys=True)
    return (text + "\n").encode("utf-8")


def main() -> None:
    """Regenerates gen/ from scratch, so that removed contracts leave nothing behind."""
    shutil.rmtree(GEN, ignore_errors=True)
    GEN.mkdir()
    ours = contract_files()
    comments = comments_file(
        [
            f"--python_out={GEN}",
            f"--grpc_python_out={GEN}",
            f"--mypy_out={GEN}",
            f"--mypy_grpc_out={GEN}",
        ]
    )
    _protoc([f"--python_out={GEN}", f"--mypy_out={GEN}", *THIRD_PARTY_GENERATED])
    for directory in (p for p in GEN.rglob("*") if p.is_dir()):
        (directory / "__init__.py").touch()
    (GEN / "interops" / "py.typed").touch()
    (GEN / "buf" / "py.typed").touch()
    COMMENTS.write_bytes(comments)
    print(f"generated {len(ours)} contract files into {GEN.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
