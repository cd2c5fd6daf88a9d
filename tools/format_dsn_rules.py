"""Writes the DSN control rule files (registry/dsn/control_rules/*.json) in one layout: a list of
rules, each field of a rule on its own line, its value compact.

    python tools/format_dsn_rules.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent.parent / "registry" / "dsn" / "control_rules"


def layout(rules: list[dict[str, Any]]) -> str:
    """The file's text."""
    blocks = []
    for rule in rules:
        fields = [
            f"    {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
            for key, value in rule.items()
        ]
        blocks.append("  {\n" + ",\n".join(fields) + "\n  }")
    return "[\n" + ",\n".join(blocks) + "\n]\n"


def main() -> int:
    """Rewrites (or checks) every rule file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is not laid out")
    args = parser.parse_args()
    wrong = []
    for path in sorted(FOLDER.glob("*.json")):
        text = path.read_text("utf-8")
        wanted = layout(json.loads(text))
        if text != wanted:
            wrong.append(path.name)
            if not args.check:
                path.write_text(wanted, "utf-8")
    if args.check and wrong:
        print(f"not laid out: {', '.join(wrong)}; run python tools/format_dsn_rules.py",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
