"""Opaque page tokens: where the next page starts, bound to the query that made them.

A token is base64url of a small JSON document holding the resume key and a digest of the query's
filters; a token that does not decode, or that was made by another query, is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from server.rpc.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 100
T = TypeVar("T")


def _fingerprint(query: tuple[object, ...]) -> str:
    return hashlib.sha256(repr(query).encode()).hexdigest()[:16]


def page_size(requested: int) -> int:
    """The page size to use: the requested one, or the default for 0."""
    return requested or DEFAULT_PAGE_SIZE


def encode(query: tuple[object, ...], resume_after: list[str]) -> str:
    """A token resuming `query` after the key `resume_after`."""
    document = json.dumps({"q": _fingerprint(query), "a": resume_after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def _storable_key(part: object) -> bool:
    """A resume key part as our listings make them: text of sane length, no NUL (a forged
    token must end INVALID_ARGUMENT, not in the database's refusal)."""
    return isinstance(part, str) and len(part) <= 256 and "\x00" not in part


def decode(token: str, query: tuple[object, ...], key_length: int) -> list[str] | None:
    """The resume key of a token for `query`; None for the empty token (first page)."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        resume_after = document["a"]
        valid = (
            document["q"] == _fingerprint(query)
            and isinstance(resume_after, list)
            and len(resume_after) == key_length
            and all(_storable_key(part) for part in resume_after)
        )
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        valid = False
    if not valid:
        raise InvalidArgument(
            "INVALID_PAGE_TOKEN",
            "page_token is not a token this query returned",
            violations=[FieldViolation("page_token", "not a token this query returned")],
        )
    return [str(part) for part in resume_after]


def cut(
    rows: Sequence[T], size: int, query: tuple[object, ...], resume_key: Callable[[T], list[str]]
) -> tuple[list[T], str]:
    """The page of `rows` (read with size + 1 to know whether more follow) and the token that
    resumes after its last row ("" on the last page)."""
    page = list(rows[:size])
    return page, encode(query, resume_key(page[-1])) if len(rows) > size else ""
