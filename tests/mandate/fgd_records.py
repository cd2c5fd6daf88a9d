"""Records of the Banque de France's fixed-width bank reference file (FGD), for the tests."""

from __future__ import annotations

WIDTH = 320  # a record's width in the samples; the reader needs only up to the BIC


def record(fields: dict[int, str], kind: str) -> str:
    """A fixed-width record: `fields` by 1-based start position."""
    line = [" "] * WIDTH
    line[0] = kind
    for start, value in fields.items():
        line[start - 1 : start - 1 + len(value)] = value
    return "".join(line).rstrip() + "\r\n"


def counter(bank: str, code: str, name: str, bic: str = "", state: str = "1",
            taken_over_by: str = "") -> str:  # fmt: skip
    return record({2: bank, 7: code, 12: state, 13: name.ljust(40), 53: name[:20],
                   73: taken_over_by, 235: bic}, "3")  # fmt: skip


def institution(name: str, bic: str) -> str:
    return record({13: name, 238: bic}, "1")
