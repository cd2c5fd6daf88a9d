"""Generates the DSN norm tables, registry/dsn/norm_tables/, from the files in ../shared/norm/.

    python tools/generate_dsn_norm.py [NORM_DIR]

- P24V01.json from the official workbook dsn-datatypes-CT2024.xlsx: blocks with their parent
  and cardinality, rubrics with their data type (regex, lengths, allowed values), control rules.
- P25V01.json and P26V01.json: the same block tree and control rules (the later YAML files'
  cardinalities are not reliable), the rubrics and code lists those versions list; a rubric the
  workbook knows keeps its data type's regex and minimum length.
- V01R02.json: the lot envelope (S05, S06, S96, S95).

The generated files are committed; tests/dsn/test_dsn_reader.py checks them against the norm files
when those are present.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import openpyxl
import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "registry" / "dsn" / "norm_tables"
DEFAULT_NORM = ROOT.parent / "shared" / "norm"
WORKBOOK = "dsn-datatypes-CT2024.xlsx"
# The envoi's header and footer are no rows of the Blocks sheet; a declaration (S20.G00.05) has
# no parent there and belongs under the envoi.
ROOT_BLOCKS = {
    "S10.G00.00": {"name": "Envoi", "parent": None, "min": 1, "max": 1},
    "S20.G00.05": {"name": "Déclaration", "parent": "S10.G00.00", "min": 1, "max": None},
    "S90.G00.90": {"name": "Total de l'envoi", "parent": "S10.G00.00", "min": 1, "max": 1},
}
YAML_KINDS = {"X": "Alphanumeric", "N": "Numeric", "D": "Date"}


def _rows(workbook: Any, sheet: str) -> list[tuple[Any, ...]]:
    return [row for row in list(workbook[sheet].iter_rows(values_only=True))[1:] if row[0]]


def _clean(text: Any) -> str:
    return str(text or "").replace("_x000D_", "").strip()


def _values(text: Any) -> list[str] | None:
    if not text:
        return None
    return [item.split("=", 1)[0].strip() for item in str(text).split(";") if item.strip()]


def _workbook_tables(norm: Path) -> dict[str, Any]:
    workbook = openpyxl.load_workbook(norm / WORKBOOK, read_only=True)
    blocks = dict(ROOT_BLOCKS)
    for block_id, name, _, parent, low, high, *_ in _rows(workbook, "Blocks"):
        blocks[block_id] = {"name": _clean(name), "parent": parent or "S10.G00.00",
                            "min": int(low), "max": None if high == "*" else int(high)}  # fmt: skip
    types = {
        row[0]: {"kind": row[2] or "Alphanumeric", "regex": row[3] or None,
                 "min": int(row[4]) if row[4] is not None else 0,
                 "max": int(row[5]) if row[5] is not None else None, "values": _values(row[6])}
        for row in _rows(workbook, "Data Types")
    }  # fmt: skip
    rubrics = {}
    for block_id, number, name, _, type_id, *_ in _rows(workbook, "Fields"):
        rubric = f"{block_id}.{number}"
        rubrics[rubric] = {"block": block_id, "name": _clean(name), "type": type_id,
                           **types.get(type_id, {"kind": "Alphanumeric", "regex": None, "min": 0,
                                                 "max": None, "values": None})}  # fmt: skip
    rules: dict[str, dict[str, str]] = {}
    for name, _, message, *_ in _rows(workbook, "Messages"):
        rubric, _, rule = str(name).partition("/")
        rules.setdefault(rubric, {})[rule] = _clean(message)
    return {"blocks": blocks, "rubrics": rubrics, "rules": rules}


def _later_version(base: dict[str, Any], path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rubrics = {}
    for block_id, segment in data["segments"].items():
        for rubric, spec in segment["fields"].items():
            known = base["rubrics"].get(rubric)
            options = spec.get("options")
            rubrics[rubric] = {
                "block": block_id,
                "name": spec.get("label") or spec.get("name", ""),
                "type": known["type"] if known else f"yaml:{spec.get('type')}{spec.get('length')}",
                "kind": known["kind"] if known else YAML_KINDS.get(spec["type"], "Alphanumeric"),
                "regex": known["regex"] if known and not options else None,
                "min": known["min"] if known else 1,
                "max": spec.get("length") or (known["max"] if known else None),
                "values": [str(code) for code in options] if options else (
                    known["values"] if known else None),
            }  # fmt: skip
    return {"version": data["version"], "blocks": base["blocks"], "rubrics": rubrics,
            "rules": base["rules"]}  # fmt: skip


def _envelope(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    blocks = {
        "S05.G51.00": {"name": "En-tête de lot", "parent": None, "min": 1, "max": 1},
        "S06.G51.00": {"name": "En-tête de groupe", "parent": "S05.G51.00", "min": 1, "max": None},
        "S96.G51.00": {"name": "Fin de groupe", "parent": "S06.G51.00", "min": 1, "max": 1},
        "S95.G51.00": {"name": "Fin de lot", "parent": "S05.G51.00", "min": 1, "max": 1},
    }  # fmt: skip
    rubrics = {
        rubric: {"block": block_id, "name": spec.get("label", ""), "type": spec.get("type"),
                 "kind": YAML_KINDS.get(spec.get("type"), "Alphanumeric"), "regex": None,
                 "min": 1, "max": spec.get("length"), "values": None}
        for block_id, segment in data["segments"].items()
        for rubric, spec in segment["fields"].items()
    }  # fmt: skip
    return {"version": data["version"], "blocks": blocks, "rubrics": rubrics, "rules": {}}


def generate(norm: Path) -> dict[str, dict[str, Any]]:
    """Every table, by version."""
    base = {"version": "P24V01", **_workbook_tables(norm)}
    return {
        "P24V01": base,
        "P25V01": _later_version(base, norm / "norm-P25V01.yaml"),
        "P26V01": _later_version(base, norm / "norm-P26V01.yaml"),
        "V01R02": _envelope(norm / "norm-V01R02.yaml"),
    }


def main() -> None:
    """Writes registry/dsn/norm_tables/<version>.json."""
    norm = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_NORM
    OUT.mkdir(exist_ok=True)
    for version, tables in generate(norm).items():
        path = OUT / f"{version}.json"
        path.write_text(json.dumps(tables, ensure_ascii=False, indent=0, sort_keys=True) + "\n",
                        encoding="utf-8")  # fmt: skip
        print(f"{path.relative_to(ROOT)}: {len(tables['blocks'])} blocks, "
              f"{len(tables['rubrics'])} rubrics")  # fmt: skip


if __name__ == "__main__":
    main()
